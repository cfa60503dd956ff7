//! A real `packages serve` process for the attacks, a raw HTTP/1.1 client
//! (attacks need bytes no client library sends), and the `/health/ready`
//! watcher that runs beside each attack.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `packages serve` on a fresh local store with org `acme`, as a child process.
pub(super) struct Server {
    child: Child,
    pub(super) address: String,
    pub(super) admin: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn packages(store: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_packages"));
    command
        .env_remove("PACKAGES_STORAGE")
        .env_remove("PACKAGES_SERVER")
        .env_remove("PACKAGES_TOKEN")
        .arg("--storage")
        .arg(store);
    command
}

fn run_ok(command: &mut Command) -> String {
    let out = command.output().expect("run packages");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Server {
    /// Starts a server with `args` after `serve`; `open_files` lowers its
    /// open-file limit (`ulimit -n`) first.
    pub(super) async fn start(args: &[&str], open_files: Option<u32>) -> Self {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        Self::start_with(open_files, |_| args).await
    }

    /// [`Server::start`], calling `prepare` with the test's directory (the
    /// store is its `store/`) just before the server starts; `prepare`
    /// returns the arguments after `serve`.
    pub(super) async fn start_with(
        open_files: Option<u32>,
        prepare: impl FnOnce(&std::path::Path) -> Vec<String>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = dir.path().join("store");
        run_ok(packages(&store).args(["org", "create", "acme"]));
        // The repository the floods and stalls upload to (uploads to an unknown one are 404).
        run_ok(packages(&store).args([
            "repo",
            "create",
            "--org",
            "acme",
            "--version",
            "edge",
            "--repo",
            "main",
        ]));
        let admin = run_ok(packages(&store).args(["admin", "init"]))
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned();
        assert!(admin.starts_with("pkgs_"), "{admin}");
        let args = prepare(dir.path());
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let mut serve = packages(&store);
        serve
            .args(["serve", "--listen", &address, "--gc-interval-secs", "0"])
            .args(args);
        let mut command = match open_files {
            Some(limit) => {
                // `exec` keeps the pid: the child is the server itself.
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(serve.get_program())
                    .args(serve.get_args());
                for (name, value) in serve.get_envs() {
                    match value {
                        Some(value) => shell.env(name, value),
                        None => shell.env_remove(name),
                    };
                }
                shell
            }
            None => serve,
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
            .spawn()
            .expect("spawn packages serve");
        let server = Server {
            child,
            address,
            admin,
            _dir: dir,
        };
        let started = Instant::now();
        loop {
            if let Ok(reply) = request(&server.address, "GET", "/health/ping", &[], b"").await {
                if reply.status == 200 {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server did not start: {}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Warm up the readiness path (first store access) before measuring it.
        let ready = request(&server.address, "GET", "/health/ready", &[], b"")
            .await
            .expect("/health/ready");
        assert_eq!(ready.status, 200);
        server
    }

    /// The test's directory (the store is its `store/`).
    pub(super) fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// `packages --storage <the store> ARGS`, run to success: its stdout.
    pub(super) fn cli(&self, args: &[&str]) -> String {
        run_ok(packages(&self.dir().join("store")).args(args))
    }

    pub(super) fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("serve.log")).unwrap_or_default()
    }

    /// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
    pub(super) fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/<pid>/status of the server");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in the server's status"))
    }

    /// Open file descriptors of the server.
    pub(super) fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    pub(super) fn assert_running(&mut self) {
        let exited = self.child.try_wait().expect("try_wait");
        assert!(exited.is_none(), "the server exited: {}", self.log());
    }
}

/// A response, read whole.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
}

impl Reply {
    pub(super) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Reads one response (status line, headers, a `Content-Length` body).
pub(super) async fn read_reply(stream: &mut TcpStream) -> std::io::Result<Reply> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Reply { status, body })
}

pub(super) fn request_bytes(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// One request on a fresh connection.
pub(super) async fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(address).await?;
    stream
        .write_all(&request_bytes(method, path, headers, body))
        .await?;
    read_reply(&mut stream).await
}

/// `GET /health/ready` on a fresh connection, blocking: the status.
fn ready_blocking(address: &str) -> std::io::Result<u16> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(&request_bytes(
        "GET",
        "/health/ready",
        &[("Connection", "close")],
        b"",
    ))?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    let status = String::from_utf8_lossy(&reply)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(status)
}

/// Asks `/health/ready` every 20 ms on a fresh connection until stopped,
/// from a thread of its own (so the attacking tasks do not delay it);
/// returns how long each answer took.
pub(super) fn watch_ready(
    address: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Duration>> {
    std::thread::spawn(move || {
        let mut took = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let started = Instant::now();
            let status = ready_blocking(&address);
            let elapsed = started.elapsed();
            match status {
                Ok(status) => assert_eq!(status, 200, "/health/ready after {elapsed:?}"),
                Err(e) => panic!("/health/ready failed after {elapsed:?}: {e}"),
            }
            took.push(elapsed);
            std::thread::sleep(Duration::from_millis(20));
        }
        took
    })
}

/// Stops the watcher and checks its answers: each within 100 ms. The test
/// machines are shared (load averages of 15 per core were seen while these
/// tests ran), where a process may wait for a core longer than that whatever
/// it does; so one answer in ten may take up to a second, never longer.
pub(super) async fn stop_watch(
    stop: &AtomicBool,
    watcher: std::thread::JoinHandle<Vec<Duration>>,
    what: &str,
) {
    stop.store(true, Ordering::SeqCst);
    let mut took = tokio::task::spawn_blocking(move || watcher.join())
        .await
        .expect("join")
        .expect("the readiness watcher");
    took.sort();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    assert!(!took.is_empty(), "{what}: /health/ready was never asked");
    let slowest = took[took.len() - 1];
    let p90 = took[took.len() * 9 / 10];
    let median = took[took.len() / 2];
    eprintln!(
        "{what}: /health/ready answered {} times: median {median:?}, 90th percentile {p90:?}, slowest {slowest:?} (load average {})",
        took.len(),
        load.split_whitespace().next().unwrap_or("?")
    );
    assert!(
        p90 < Duration::from_millis(100),
        "{what}: /health/ready took {p90:?} (90th percentile)"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "{what}: /health/ready took {slowest:?}"
    );
}
