//! The HTTP side of `verify`: small files read whole under a cap, entry
//! files streamed through a hash (never whole in memory), `HEAD` for sizes
//! only, a few requests at a time, one retry for network and server errors.

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use md5::Md5;
use reqwest::{StatusCode, Url};
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};

use super::VerifyError;
use super::report::Report;
use crate::formats::apk::{ApkLimits, read_package};

/// The largest index or metadata file read into memory (`APKINDEX.tar.gz`,
/// `InRelease`, `Packages`, `repomd.xml`, `primary.xml.gz`), as stored.
pub const MAX_INDEX_BYTES: u64 = 256 << 20;

/// The largest entry file streamed when the index gives no size.
const MAX_UNSIZED_BYTES: u64 = 16 << 30;

/// How the fetcher works.
#[derive(Debug, Clone, Copy)]
pub struct FetchOptions {
    /// Requests in flight at once.
    pub jobs: usize,
    /// Download and hash entry files (`false`: `HEAD` and sizes only).
    pub download: bool,
}

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchFailure {
    /// The server could not be reached or the transfer broke.
    Network(String),
    /// The server answered with an error other than "not found".
    Status(u16),
    /// The file is larger than the cap.
    TooBig(u64),
}

impl std::fmt::Display for FetchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchFailure::Network(e) => write!(f, "{e}"),
            FetchFailure::Status(s) => write!(f, "the server answered HTTP {s}"),
            FetchFailure::TooBig(max) => write!(f, "larger than {max} bytes (the limit)"),
        }
    }
}

/// A digest an index gives for a file, lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// SHA-256.
    Sha256(String),
    /// SHA-512.
    Sha512(String),
    /// SHA-1.
    Sha1(String),
    /// MD5.
    Md5(String),
}

impl Expected {
    fn name(&self) -> &'static str {
        match self {
            Expected::Sha256(_) => "SHA-256",
            Expected::Sha512(_) => "SHA-512",
            Expected::Sha1(_) => "SHA-1",
            Expected::Md5(_) => "MD5",
        }
    }

    fn hex(&self) -> &str {
        match self {
            Expected::Sha256(h) | Expected::Sha512(h) | Expected::Sha1(h) | Expected::Md5(h) => h,
        }
    }
}

enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
    Sha1(Sha1),
    Md5(Md5),
}

impl Hasher {
    fn new(expected: &Expected) -> Self {
        match expected {
            Expected::Sha256(_) => Hasher::Sha256(Sha256::new()),
            Expected::Sha512(_) => Hasher::Sha512(Sha512::new()),
            Expected::Sha1(_) => Hasher::Sha1(Sha1::new()),
            Expected::Md5(_) => Hasher::Md5(Md5::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Md5(h) => h.update(data),
        }
    }

    fn hex(self) -> String {
        match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
            Hasher::Sha1(h) => hex::encode(h.finalize()),
            Hasher::Md5(h) => hex::encode(h.finalize()),
        }
    }
}

/// One file an index names, and what it must be.
#[derive(Debug, Clone)]
pub struct FileCheck {
    /// Where it is.
    pub url: Url,
    /// Its size, if the index gives one.
    pub size: Option<u64>,
    /// Its digest, if the index gives one.
    pub digest: Option<Expected>,
    /// apk's `C:` (`Q1…`): the file is read as an `.apk` by the project's
    /// reader and its identity compared (downloads only).
    pub apk_checksum: Option<String>,
    /// Whether it is a package (counted in [`Report::packages`]).
    pub package: bool,
}

/// The result of one [`FileCheck`].
#[derive(Debug, Default)]
struct Outcome {
    problems: Vec<String>,
    unchecked: Option<String>,
    bytes: u64,
}

/// An HTTP client for one `verify` run.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    options: FetchOptions,
}

impl Fetcher {
    /// A fetcher with its own client.
    pub fn new(options: &FetchOptions) -> Result<Self, VerifyError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("packages-verify/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| VerifyError::Fetch(format!("cannot make an HTTP client: {e}")))?;
        Ok(Self {
            client,
            options: *options,
        })
    }

    /// Whether entry files are downloaded and hashed.
    pub fn downloads(&self) -> bool {
        self.options.download
    }

    /// Reads a whole file of at most `max` bytes. `Ok(None)`: it is not
    /// there (404, 410, or 403 as S3 answers for a missing key).
    pub async fn get(&self, url: &Url, max: u64) -> Result<Option<Bytes>, FetchFailure> {
        match self.get_once(url, max).await {
            Err(FetchFailure::Network(_) | FetchFailure::Status(500..=599)) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                self.get_once(url, max).await
            }
            other => other,
        }
    }

    async fn get_once(&self, url: &Url, max: u64) -> Result<Option<Bytes>, FetchFailure> {
        let response = self.client.get(url.clone()).send().await.map_err(network)?;
        if is_missing(response.status()) {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(FetchFailure::Status(response.status().as_u16()));
        }
        if response.content_length().is_some_and(|l| l > max) {
            return Err(FetchFailure::TooBig(max));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(network)?;
            if body.len() as u64 + chunk.len() as u64 > max {
                return Err(FetchFailure::TooBig(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(Bytes::from(body)))
    }

    /// Whether a file is there (`HEAD`).
    pub async fn exists(&self, url: &Url) -> Result<bool, FetchFailure> {
        let response = self
            .client
            .head(url.clone())
            .send()
            .await
            .map_err(network)?;
        if is_missing(response.status()) {
            return Ok(false);
        }
        if !response.status().is_success() {
            return Err(FetchFailure::Status(response.status().as_u16()));
        }
        Ok(true)
    }

    /// Checks every file, a few at a time, and records the findings in
    /// `report` (sorted by URL).
    pub async fn check_files(&self, checks: Vec<FileCheck>, report: &mut Report) {
        let mut results: Vec<(FileCheck, Outcome)> = futures::stream::iter(checks)
            .map(|check| async move {
                let mut outcome = self.check_once(&check).await;
                if outcome.unchecked.is_some() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    outcome = self.check_once(&check).await;
                }
                (check, outcome)
            })
            .buffer_unordered(self.options.jobs.max(1))
            .collect()
            .await;
        results.sort_by(|a, b| a.0.url.as_str().cmp(b.0.url.as_str()));
        for (check, outcome) in results {
            report.files += 1;
            if check.package {
                report.packages += 1;
            }
            report.bytes += outcome.bytes;
            for problem in outcome.problems {
                report.problem(check.url.as_str(), problem);
            }
            if let Some(why) = outcome.unchecked {
                report.unchecked(check.url.as_str(), why);
            }
        }
    }

    async fn check_once(&self, check: &FileCheck) -> Outcome {
        if self.options.download {
            self.download(check).await
        } else {
            self.head(check).await
        }
    }

    async fn head(&self, check: &FileCheck) -> Outcome {
        let mut outcome = Outcome::default();
        let response = match self.client.head(check.url.clone()).send().await {
            Ok(r) => r,
            Err(e) => {
                outcome.unchecked = Some(network(e).to_string());
                return outcome;
            }
        };
        let status = response.status();
        if is_missing(status) {
            outcome.problems.push(missing(status));
        } else if !status.is_success() {
            outcome.unchecked = Some(FetchFailure::Status(status.as_u16()).to_string());
        } else if let Some(size) = check.size {
            match content_length(&response) {
                Some(served) if served != size => outcome.problems.push(format!(
                    "the index gives {size} bytes, the server has {served} bytes"
                )),
                Some(_) => {}
                None => {
                    outcome.unchecked =
                        Some("HEAD gave no Content-Length: its size is not checked".to_owned())
                }
            }
        }
        outcome
    }

    async fn download(&self, check: &FileCheck) -> Outcome {
        let mut outcome = Outcome::default();
        let response = match self.client.get(check.url.clone()).send().await {
            Ok(r) => r,
            Err(e) => {
                outcome.unchecked = Some(network(e).to_string());
                return outcome;
            }
        };
        let status = response.status();
        if is_missing(status) {
            outcome.problems.push(missing(status));
            return outcome;
        }
        if !status.is_success() {
            outcome.unchecked = Some(FetchFailure::Status(status.as_u16()).to_string());
            return outcome;
        }
        // Past the size the index gives, the file is wrong: stop reading there.
        let cap = check
            .size
            .map_or(MAX_UNSIZED_BYTES, |s| s.saturating_add(1));
        let mut hasher = check.digest.as_ref().map(Hasher::new);
        let (tx, apk) = match &check.apk_checksum {
            Some(_) => {
                let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
                let task = tokio::task::spawn_blocking(move || {
                    let reader = std::io::BufReader::new(ChannelReader {
                        rx,
                        current: Bytes::new(),
                    });
                    read_package(reader, &ApkLimits::default())
                });
                (Some(tx), Some(task))
            }
            None => (None, None),
        };
        let mut tx = tx;
        let mut stream = response.bytes_stream();
        let mut total: u64 = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    outcome.unchecked = Some(network(e).to_string());
                    return outcome;
                }
            };
            total += chunk.len() as u64;
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            if let Some(sender) = &tx {
                // The reader stops early on a broken package: keep hashing.
                if sender.send(chunk).await.is_err() {
                    tx = None;
                }
            }
            if total >= cap {
                break;
            }
        }
        drop(tx);
        outcome.bytes = total;
        match check.size {
            Some(size) if total > size => outcome
                .problems
                .push(format!("the index gives {size} bytes, the file is larger")),
            Some(size) if total != size => outcome.problems.push(format!(
                "the index gives {size} bytes, the file is {total} bytes"
            )),
            _ => {}
        }
        if let (Some(expected), Some(h)) = (&check.digest, hasher) {
            let got = h.hex();
            if !got.eq_ignore_ascii_case(expected.hex()) {
                outcome.problems.push(format!(
                    "{} mismatch: the index gives {}, the file has {got}",
                    expected.name(),
                    expected.hex()
                ));
            }
        }
        if let (Some(expected), Some(task)) = (&check.apk_checksum, apk) {
            match task.await {
                Ok(Ok(package)) if package.record.checksum != *expected => {
                    outcome.problems.push(format!(
                        "checksum (C:) mismatch: the index gives {expected}, the package is {}",
                        package.record.checksum
                    ))
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => outcome.problems.push(format!("apk would refuse it: {e}")),
                Err(e) => outcome.unchecked = Some(format!("the package reader failed: {e}")),
            }
        }
        outcome
    }
}

/// Feeds chunks received from the download to a blocking reader.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

fn is_missing(status: StatusCode) -> bool {
    matches!(status.as_u16(), 403 | 404 | 410)
}

fn missing(status: StatusCode) -> String {
    if status == StatusCode::FORBIDDEN {
        "missing (HTTP 403: not there, or not readable)".to_owned()
    } else {
        format!("missing (HTTP {})", status.as_u16())
    }
}

fn content_length(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(reqwest::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn network(e: reqwest::Error) -> FetchFailure {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    FetchFailure::Network(message)
}

/// A URL `relative` to the folder `base` (which ends with `/`), refusing
/// anything that leaves the server (`http://…`, `//host`).
pub fn join(base: &Url, relative: &str) -> Option<Url> {
    if relative.contains("://") || relative.starts_with("//") {
        return None;
    }
    let url = base.join(relative).ok()?;
    (url.host_str() == base.host_str() && url.port() == base.port()).then_some(url)
}

/// `url` with a trailing `/` on its path (a folder).
pub fn folder(url: &Url) -> Url {
    let mut url = url.clone();
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.set_query(None);
    url.set_fragment(None);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_stay_on_the_server() {
        let base = Url::parse("http://h:8080/acme/alpine/v3.20/main/x86_64/").unwrap();
        assert_eq!(
            join(&base, "../aarch64/a-1.apk").unwrap().as_str(),
            "http://h:8080/acme/alpine/v3.20/main/aarch64/a-1.apk"
        );
        assert!(join(&base, "http://evil/x").is_none());
        assert!(join(&base, "//evil/x").is_none());
        assert_eq!(
            folder(&Url::parse("http://h/a/b?x=1").unwrap()).as_str(),
            "http://h/a/b/"
        );
    }

    #[test]
    fn the_channel_reader_reads_every_chunk() {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let reader = std::thread::spawn(move || {
            let mut r = ChannelReader {
                rx,
                current: Bytes::new(),
            };
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            out
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            for part in [&b"ab"[..], b"", b"cde"] {
                tx.send(Bytes::copy_from_slice(part)).await.unwrap();
            }
        });
        drop(tx);
        assert_eq!(reader.join().unwrap(), b"abcde");
    }
}
