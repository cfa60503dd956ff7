//! Hostile clients against a real `packages serve` process (issue 8): many
//! text fields, half-sent headers, stalled bodies and made-up methods must
//! leave the server's memory and `/metrics` bounded and `/health/ready`
//! answering within 100 ms; tokens must not mint tokens beyond themselves.
//!
//! The server runs as a child process so that its `VmRSS` (from
//! `/proc/<pid>/status`) counts only the server. The token cases run in
//! process through the whole router (`tokens_and_names`).

mod server;
mod tokens_and_names;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use server::{Reply, Server, read_reply, request, request_bytes, stop_watch, watch_ready};

const BOUNDARY: &str = "hostileboundary1234";
const UPLOAD: &str = "/api/v1/orgs/acme/distros/alpine/versions/edge/repos/main/packages";

// ---- many text fields ------------------------------------------------------------

/// Sends a multipart body declared as `declared` bytes made of `arch` fields
/// as fast as the server takes it; returns the answer and the bytes sent.
async fn flood_fields(address: String, token: String, declared: u64) -> (Reply, u64) {
    // A small send buffer: what the client has queued in its own kernel is
    // not what the server read, and filling megabytes of it per flood only
    // loads the (shared) test machine.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_send_buffer_size(64 << 10).expect("SO_SNDBUF");
    let stream = socket
        .connect(address.parse().expect("an address"))
        .await
        .expect("connect");
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST {UPLOAD} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {declared}\r\n\r\n"
    );
    let field =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"arch\"\r\n\r\nx86_64\r\n");
    let chunk = field.repeat((64 << 10) / field.len()).into_bytes();
    let sent = Arc::new(AtomicU64::new(0));
    let writer = {
        let sent = sent.clone();
        tokio::spawn(async move {
            if write.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            while sent.load(Ordering::SeqCst) + (chunk.len() as u64) < declared {
                if write.write_all(&chunk).await.is_err() {
                    return;
                }
                sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
        })
    };
    let mut stream_reader = ReadHalfReader(&mut read);
    let reply = stream_reader.reply().await.expect("an answer to the flood");
    writer.abort();
    (reply, sent.load(Ordering::SeqCst))
}

/// [`read_reply`] for the read half of a split stream.
struct ReadHalfReader<'a>(&'a mut tokio::net::tcp::OwnedReadHalf);

impl ReadHalfReader<'_> {
    async fn reply(&mut self) -> std::io::Result<Reply> {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = self.0.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buffer.extend_from_slice(&chunk[..n]);
            if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..i]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:")?.trim().parse().ok())
                    .unwrap_or(0);
                if buffer.len() >= i + 4 + length {
                    break;
                }
            }
        }
        let i = buffer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        let status = String::from_utf8_lossy(&buffer[..i])
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok(Reply {
            status,
            body: buffer[i + 4..].to_vec(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_text_fields_are_refused_without_buffering() {
    let mut server = Server::start(&[], None).await;
    let before = server.status_kib("VmRSS");
    let peak_before = server.status_kib("VmHWM");
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_ready(server.address.clone(), stop.clone());
    // Four at once, each declaring 300 MB of `arch` fields (the issue's
    // attack), 50 times over.
    let floods: Vec<_> = (0..4)
        .map(|_| {
            let address = server.address.clone();
            let token = server.admin.clone();
            tokio::spawn(async move {
                let mut most_sent = 0;
                for _ in 0..50 {
                    let (reply, sent) =
                        flood_fields(address.clone(), token.clone(), 300_000_000).await;
                    assert_eq!(
                        reply.status,
                        413,
                        "{}",
                        String::from_utf8_lossy(&reply.body)
                    );
                    let body = reply.json();
                    assert_eq!(body["code"], json!(413), "{body}");
                    assert!(
                        body["message"].as_str().unwrap().contains("64 text fields"),
                        "{body}"
                    );
                    most_sent = most_sent.max(sent);
                }
                most_sent
            })
        })
        .collect();
    for flood in floods {
        let most_sent = flood.await.expect("flood task");
        eprintln!("a flood sent at most {most_sent} bytes before its answer");
        assert!(
            most_sent < 64 << 20,
            "the server read {most_sent} bytes before answering"
        );
    }
    stop_watch(&stop, watcher, "200 floods of 300 MB of text fields").await;
    let after = server.status_kib("VmRSS");
    let peak_after = server.status_kib("VmHWM");
    eprintln!(
        "text-field flood: server VmRSS {before} → {after} KiB, VmHWM {peak_before} → {peak_after} KiB"
    );
    assert!(
        after.saturating_sub(before) < 32 << 10,
        "RSS grew from {before} to {after} KiB"
    );
    assert!(
        peak_after.saturating_sub(peak_before) < 32 << 10,
        "peak RSS grew from {peak_before} to {peak_after} KiB"
    );
    server.assert_running();
}

// ---- half-sent headers -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_sent_headers_neither_exhaust_nor_block_the_server() {
    // An open-file limit of 256 caps the server at 128 connections (256 less 128 kept for files).
    let mut server = Server::start(&["--header-timeout-secs", "3"], Some(256)).await;
    let before = server.status_kib("VmRSS");
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_ready(server.address.clone(), stop.clone());
    let mut held = Vec::new();
    for i in 0..300 {
        let mut stream = TcpStream::connect(&server.address).await.expect("connect");
        stream
            .write_all(format!("GET /acme/{i} HTTP/1.1\r\nHost: test\r\nX-Slow: ").as_bytes())
            .await
            .expect("half a header");
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds = server.open_fds();
    eprintln!("300 half-sent headers: the server has {fds} open files");
    assert!(fds <= 200, "the server holds {fds} files");
    // Requests sent whole still go through, on new connections and at once.
    for _ in 0..20 {
        let reply = request(&server.address, "GET", "/health/ping", &[], b"")
            .await
            .expect("ping during the attack");
        assert_eq!(reply.status, 200);
    }
    // The header timeout closes what is left of the half-sent headers.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut closed = 0;
    for stream in &mut held {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(50), stream.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    stop_watch(&stop, watcher, "300 half-sent headers").await;
    assert_eq!(closed, held.len(), "every half-sent header was closed");
    let after = server.status_kib("VmRSS");
    eprintln!("half-sent headers: server VmRSS {before} → {after} KiB");
    assert!(after.saturating_sub(before) < 32 << 10);
    server.assert_running();
}

// ---- stalled bodies --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_body_times_out_with_408() {
    let mut server = Server::start(&["--body-read-timeout-secs", "1"], None).await;
    let mut stream = TcpStream::connect(&server.address).await.expect("connect");
    let part = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"package\"; filename=\"a-1-r0.apk\"\r\n\r\nsome bytes"
    );
    let head = format!(
        "POST {UPLOAD} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: 100000\r\n\r\n{part}",
        server.admin
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    let started = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(10), read_reply(&mut stream))
        .await
        .expect("an answer within 10 s")
        .expect("a reply");
    eprintln!("a stalled body was answered after {:?}", started.elapsed());
    assert_eq!(
        reply.status,
        408,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.json()["code"], json!(408));
    assert!(started.elapsed() < Duration::from_secs(5));
    server.assert_running();
}

// ---- made-up methods -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn made_up_methods_do_not_grow_metrics() {
    let mut server = Server::start(&[], None).await;
    let metrics_before = request(&server.address, "GET", "/metrics", &[], b"")
        .await
        .expect("metrics")
        .body
        .len();
    let before = server.status_kib("VmRSS");
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_ready(server.address.clone(), stop.clone());
    let clients: Vec<_> = (0..8)
        .map(|client| {
            let address = server.address.clone();
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(&address).await.expect("connect");
                for i in 0..625 {
                    let method = format!("X{client}M{i}ETHOD");
                    let path = match i % 3 {
                        0 => format!("/api/v1/made-up-{i}"),
                        1 => format!("/acme/alpine/edge/main/x86_64/{i}.apk"),
                        _ => "/api/v1/orgs".to_owned(),
                    };
                    stream
                        .write_all(&request_bytes(&method, &path, &[], b""))
                        .await
                        .expect("send");
                    let reply = read_reply(&mut stream).await.expect("reply");
                    assert!(
                        (400..500).contains(&reply.status),
                        "{method} {path}: {}",
                        reply.status
                    );
                }
            })
        })
        .collect();
    for client in clients {
        client.await.expect("client");
    }
    stop_watch(&stop, watcher, "5,000 made-up methods").await;
    let metrics = request(&server.address, "GET", "/metrics", &[], b"")
        .await
        .expect("metrics");
    let text = String::from_utf8_lossy(&metrics.body);
    let after = server.status_kib("VmRSS");
    eprintln!(
        "5,000 made-up methods: /metrics {metrics_before} → {} bytes, server VmRSS {before} → {after} KiB",
        metrics.body.len()
    );
    assert!(!text.contains("METHOD"), "a made-up method became a label");
    assert!(text.contains("method=\"other\""), "{text}");
    assert!(
        metrics.body.len() < metrics_before + (16 << 10),
        "/metrics grew from {metrics_before} to {} bytes",
        metrics.body.len()
    );
    assert!(after.saturating_sub(before) < 16 << 10);
    server.assert_running();
}

// ---- crash leftovers -------------------------------------------------------------

/// Writes `path` and dates it `age` back.
fn leftover(path: &std::path::Path, age: Duration) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, b"partial").unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - age)
        .unwrap();
}

#[tokio::test]
async fn crash_leftovers_are_cleaned_at_start_up_and_by_gc() {
    let old = Duration::from_secs(3 * 3600);
    let recent = Duration::from_secs(60);
    let mut server = Server::start_with(None, |dir| {
        let uploads = dir.join("uploads");
        leftover(&uploads.join("packages-upload-crashed"), old);
        leftover(&uploads.join("packages-upload-in-flight"), recent);
        leftover(&uploads.join("not-ours"), old);
        leftover(&dir.join("store/.packages-tmp/.tmpcrashed"), old);
        leftover(&dir.join("store/.packages-tmp/.tmpwriting"), recent);
        vec!["--upload-dir".to_owned(), uploads.display().to_string()]
    })
    .await;
    let uploads = server.dir().join("uploads");
    let tmp = server.dir().join("store/.packages-tmp");
    assert!(!uploads.join("packages-upload-crashed").exists());
    assert!(uploads.join("packages-upload-in-flight").exists());
    assert!(uploads.join("not-ours").exists());
    assert!(!tmp.join(".tmpcrashed").exists());
    assert!(tmp.join(".tmpwriting").exists());
    server.assert_running();
    // `packages gc` cleans the store's staged writes too.
    leftover(&tmp.join(".tmpcrashed-later"), old);
    server.cli(&["gc"]);
    assert!(!tmp.join(".tmpcrashed-later").exists());
    assert!(tmp.join(".tmpwriting").exists());
}
