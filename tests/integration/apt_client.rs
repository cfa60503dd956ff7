//! The real `apt-get`, run with a private configuration: an independent Debian client for
//! tests of published apt repositories.
//!
//! [`AptClient`] lives in its own temporary directory. Its `APT_CONFIG` file points every
//! `Dir::*` setting there (sources, trusted keys, lists, dpkg status, archives, logs), so no
//! host state is read or written: the host's `/etc/apt`, keyrings, lists and dpkg database are
//! never used. Signature checking stays on (a deb822 source with `Signed-By:`, no
//! `[trusted=yes]`, no `AllowInsecureRepositories`), and any `W:` or `E:` line apt prints is
//! treated as a failure, since apt reports a bad signature on an already known repository as a
//! warning with exit status 0. Apt retries nothing (`Acquire::Retries "0"`), so one
//! "Hash Sum mismatch" is enough to fail.
//!
//! What apt 2.6 does that a publisher must match (seen with this harness): with
//! `Acquire-By-Hash: yes` it fetches `by-hash/<strongest hash the Release lists>/<hex>` (SHA512
//! when the Release has a SHA512 section, so list MD5Sum + SHA256 only, as Debian does, or
//! publish `by-hash/SHA512` too); it revalidates `InRelease` with `If-Modified-Since`; a
//! `Release` whose `Suite` and `Codename` both differ from the requested suite gives a
//! "Conflicting distribution" warning (fatal here).
//!
//! ```ignore
//! let apt = AptClient::new(&url, "stable", &["main"], &key_asc);
//! apt.update().expect("apt-get update");
//! let debs = apt.download(&["jq"]).expect("download jq");
//! ```
//!
//! Also here: [`gpgv_verify`] (Debian's `gpgv` on an `InRelease` or a `Release.gpg`),
//! [`StaticHttp`] (a plain HTTP server over a directory, independent of our code) and
//! [`tamper_packages`] / [`flip_byte`] for tamper tests.

#![allow(dead_code)]

use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tempfile::TempDir;

mod tamper;
pub use tamper::{flip_byte, overwrite, tamper_packages};

/// The dpkg status stanza every new client starts with: Debian's real packages depend on
/// `libc6`, which no test repository carries, so the client counts it as installed (the
/// version of Debian 12's). More with [`AptClient::assume_installed`].
const LIBC6: (&str, &str, &str) = ("libc6", "2.36-9+deb12u14", "amd64");

/// A failed (or warning) `apt-get` / `apt-cache` run.
#[derive(Clone)]
pub struct AptFailure {
    /// The command line, as run.
    pub command: String,
    /// The exit status (`None`: killed by a signal, or not started).
    pub status: Option<i32>,
    /// Every `W:` and `E:` line of stdout and stderr, in order.
    pub problems: Vec<String>,
    /// Everything apt printed: stdout, then stderr.
    pub output: String,
}

impl fmt::Display for AptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "`{}` failed (exit status {:?})",
            self.command, self.status
        )?;
        for line in &self.problems {
            writeln!(f, "  {line}")?;
        }
        write!(f, "--- full output:\n{}", self.output)
    }
}

// `unwrap()` / `expect()` print Debug: make that the readable form.
impl fmt::Debug for AptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for AptFailure {}

/// A private apt client: its own configuration, sources, keys, lists, status and archives,
/// all in one temporary directory removed on drop.
pub struct AptClient {
    dir: TempDir,
    config: PathBuf,
    sources: usize,
}

impl AptClient {
    /// A client with one deb822 source: `Types: deb`, `URIs: base_url`, `Suites: suite`,
    /// `Components: components`, `Signed-By: signed_by` (an armored `.asc` or binary `.gpg`
    /// public key; copied into the client's directory, so the caller's file may go away).
    ///
    /// `base_url` is the distro's root, the directory holding `dists/` and `pool/`
    /// (e.g. `http://127.0.0.1:PORT/org/debian`). The architecture is `amd64`; the dpkg
    /// status holds only `libc6` (see [`AptClient::assume_installed`]). Panics when the client
    /// cannot be set up, or when `apt-get` is not installed (`scripts/test` installs it).
    pub fn new(base_url: &str, suite: &str, components: &[&str], signed_by: &Path) -> Self {
        require_tool("apt-get", "apt");
        let dir = tempfile::Builder::new()
            .prefix("apt-client-")
            .tempdir()
            .expect("temporary directory for the apt client");
        let root = dir.path().to_path_buf();
        for sub in [
            "etc/apt/sources.list.d",
            "etc/apt/trusted.gpg.d",
            "etc/apt/preferences.d",
            "etc/apt/apt.conf.d",
            "etc/apt/keyrings",
            "var/lib/apt/lists/partial",
            "var/lib/dpkg",
            "var/cache/apt/archives/partial",
            "var/log/apt",
        ] {
            fs::create_dir_all(root.join(sub)).unwrap_or_else(|e| panic!("create {sub}: {e}"));
        }
        let config = root.join("apt.conf");
        fs::write(&config, config_text(&root)).expect("write the apt configuration");
        let mut client = AptClient {
            dir,
            config,
            sources: 0,
        };
        fs::write(client.status_file(), "").expect("write the dpkg status file");
        client.assume_installed(LIBC6.0, LIBC6.1, LIBC6.2);
        client.add_source(base_url, suite, components, signed_by);
        client
    }

    /// Adds one more deb822 source (its own `.sources` file and key copy), e.g. a suite alias
    /// next to its codename.
    pub fn add_source(
        &mut self,
        base_url: &str,
        suite: &str,
        components: &[&str],
        signed_by: &Path,
    ) {
        self.sources += 1;
        let n = self.sources;
        let bytes = fs::read(signed_by)
            .unwrap_or_else(|e| panic!("read signed-by key {}: {e}", signed_by.display()));
        // apt tells the two kinds apart by the file name: `.asc` armored, `.gpg` binary.
        let ext = if is_armored(&bytes) { "asc" } else { "gpg" };
        let key = self
            .root()
            .join(format!("etc/apt/keyrings/source-{n}.{ext}"));
        fs::write(&key, &bytes).expect("copy the signed-by key");
        let text = format!(
            "Types: deb\nURIs: {}\nSuites: {suite}\nComponents: {}\nSigned-By: {}\n",
            base_url.trim_end_matches('/'),
            components.join(" "),
            key.display()
        );
        let path = self
            .root()
            .join(format!("etc/apt/sources.list.d/source-{n}.sources"));
        fs::write(&path, text).expect("write the .sources file");
    }

    /// Adds a stanza to the client's dpkg status: `package` counts as installed at `version`
    /// for `arch`, so dependencies on it are satisfied without downloading it.
    pub fn assume_installed(&self, package: &str, version: &str, arch: &str) {
        let stanza = format!(
            "Package: {package}\nStatus: install ok installed\nPriority: optional\n\
             Section: libs\nInstalled-Size: 1\nMaintainer: apt test harness <test@example.invalid>\n\
             Architecture: {arch}\nMulti-Arch: same\nVersion: {version}\n\
             Description: stand-in installed by the apt test harness\n\n"
        );
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(self.status_file())
            .expect("open the dpkg status file");
        file.write_all(stanza.as_bytes())
            .expect("append to the dpkg status file");
    }

    /// The client's root directory (every path it uses is under it).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The `APT_CONFIG` file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Where `apt-get update` stores the indexes it fetched.
    pub fn lists_dir(&self) -> PathBuf {
        self.root().join("var/lib/apt/lists")
    }

    /// Where downloads land.
    pub fn archives_dir(&self) -> PathBuf {
        self.root().join("var/cache/apt/archives")
    }

    /// The client's dpkg status file.
    pub fn status_file(&self) -> PathBuf {
        self.root().join("var/lib/dpkg/status")
    }

    /// A `Command` for an apt tool (`apt-get`, `apt-cache`, ...) under this client's
    /// configuration, C locale, no proxy from the environment.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("APT_CONFIG", &self.config)
            .env("LC_ALL", "C")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .stdin(Stdio::null());
        cmd
    }

    /// `apt-get update`: ok when it exits 0 and prints no `W:` or `E:` line.
    pub fn update(&self) -> Result<Output, AptFailure> {
        self.run("apt-get", &["-q", "update", "--error-on=any"])
    }

    /// `apt-get update` that must fail; returns the failure's text (problems and output).
    /// Panics when the update succeeds.
    pub fn update_expect_failure(&self) -> String {
        match self.update() {
            Ok(out) => panic!(
                "apt-get update succeeded but should have failed:\n{}",
                output_text(&out)
            ),
            Err(failure) => failure.to_string(),
        }
    }

    /// `apt-get install --download-only -y --no-install-recommends PACKAGES` with the real
    /// resolver. Empties the archives directory first, so the result is exactly what this call
    /// downloaded: the `.deb` files, sorted by path (dependencies included).
    pub fn download(&self, packages: &[&str]) -> Result<Vec<PathBuf>, AptFailure> {
        for deb in self.archived_debs() {
            fs::remove_file(&deb).unwrap_or_else(|e| panic!("remove {}: {e}", deb.display()));
        }
        let mut args = vec![
            "-q",
            "install",
            "--download-only",
            "-y",
            "--no-install-recommends",
        ];
        args.extend_from_slice(packages);
        self.run("apt-get", &args)?;
        Ok(self.archived_debs())
    }

    /// [`AptClient::download`] that must fail (e.g. a tampered pool file: "Hash Sum
    /// mismatch"); returns the failure's text. Panics when the download succeeds.
    pub fn download_expect_failure(&self, packages: &[&str]) -> String {
        match self.download(packages) {
            Ok(debs) => {
                panic!("download of {packages:?} succeeded but should have failed: {debs:?}")
            }
            Err(failure) => failure.to_string(),
        }
    }

    /// `apt-cache policy PACKAGE`: its stdout.
    pub fn policy(&self, package: &str) -> Result<String, AptFailure> {
        let out = self.run("apt-cache", &["policy", package])?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The `Candidate:` version from `apt-cache policy PACKAGE` (`None` when apt has none).
    pub fn candidate(&self, package: &str) -> Result<Option<String>, AptFailure> {
        let policy = self.policy(package)?;
        Ok(policy
            .lines()
            .find_map(|l| l.trim().strip_prefix("Candidate:"))
            .map(|v| v.trim().to_string())
            .filter(|v| v != "(none)"))
    }

    /// `apt-cache show PACKAGE`: its stdout (one stanza per known version).
    pub fn show(&self, package: &str) -> Result<String, AptFailure> {
        let out = self.run("apt-cache", &["show", package])?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The `.deb` files now in the archives directory, sorted.
    pub fn archived_debs(&self) -> Vec<PathBuf> {
        let mut debs: Vec<PathBuf> = fs::read_dir(self.archives_dir())
            .expect("read the archives directory")
            .map(|e| e.expect("archives entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "deb"))
            .collect();
        debs.sort();
        debs
    }

    /// Runs an apt tool; a non-zero exit or any `W:`/`E:` line is a failure.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<Output, AptFailure> {
        let command = format!(
            "APT_CONFIG={} {program} {}",
            self.config.display(),
            args.join(" ")
        );
        let out = match self.command(program).args(args).output() {
            Ok(out) => out,
            Err(e) => {
                return Err(AptFailure {
                    command,
                    status: None,
                    problems: vec![format!("E: could not run {program}: {e}")],
                    output: String::new(),
                });
            }
        };
        let output = output_text(&out);
        let problems: Vec<String> = output
            .lines()
            .filter(|l| l.starts_with("W:") || l.starts_with("E:"))
            .map(str::to_string)
            .collect();
        if out.status.success() && problems.is_empty() {
            Ok(out)
        } else {
            Err(AptFailure {
                command,
                status: out.status.code(),
                problems,
                output,
            })
        }
    }
}

/// The private configuration: every directory apt reads or writes under `root`.
fn config_text(root: &Path) -> String {
    let r = root.display();
    let mut text = format!(
        "// apt test harness: private configuration, nothing on the host is read or written.\n\
         Dir \"{r}/\";\n\
         Dir::Etc \"{r}/etc/apt/\";\n\
         Dir::Etc::main \"{r}/etc/apt/apt.conf\";\n\
         Dir::Etc::parts \"{r}/etc/apt/apt.conf.d/\";\n\
         Dir::Etc::sourcelist \"{r}/etc/apt/sources.list\";\n\
         Dir::Etc::sourceparts \"{r}/etc/apt/sources.list.d/\";\n\
         Dir::Etc::trusted \"{r}/etc/apt/trusted.gpg\";\n\
         Dir::Etc::trustedparts \"{r}/etc/apt/trusted.gpg.d/\";\n\
         Dir::Etc::preferences \"{r}/etc/apt/preferences\";\n\
         Dir::Etc::preferencesparts \"{r}/etc/apt/preferences.d/\";\n\
         Dir::State \"{r}/var/lib/apt/\";\n\
         Dir::State::lists \"{r}/var/lib/apt/lists/\";\n\
         Dir::State::status \"{r}/var/lib/dpkg/status\";\n\
         Dir::State::extended_states \"{r}/var/lib/apt/extended_states\";\n\
         Dir::Cache \"{r}/var/cache/apt/\";\n\
         Dir::Cache::archives \"{r}/var/cache/apt/archives/\";\n\
         Dir::Log \"{r}/var/log/apt/\";\n\
         APT::Architecture \"amd64\";\n\
         APT::Architectures {{ \"amd64\"; }};\n\
         Acquire::Languages \"none\";\n\
         Acquire::Retries \"0\";\n\
         Acquire::http::Proxy \"DIRECT\";\n\
         Acquire::http::Timeout \"20\";\n\
         APT::Install-Recommends \"false\";\n\
         APT::Install-Suggests \"false\";\n\
         APT::Get::Assume-Yes \"true\";\n\
         Debug::NoLocking \"true\";\n"
    );
    // As root, apt drops to the `_apt` user to download, which cannot enter a private temp
    // directory: stay root (a normal user has no sandbox to drop into).
    if owner_uid(root) == 0 {
        text.push_str("APT::Sandbox::User \"root\";\n");
    }
    text
}

/// The uid owning `path` (for a directory we just made: our own).
fn owner_uid(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .uid()
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Panics with a clear message when `program` is not installed: these tests fail, never
/// skip, without the Debian tools.
pub fn require_tool(program: &str, debian_package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()));
    assert!(
        found,
        "`{program}` is not installed (Debian package {debian_package}); scripts/test installs it"
    );
}

fn is_armored(bytes: &[u8]) -> bool {
    bytes.starts_with(b"-----BEGIN PGP")
}

/// The binary form of an OpenPGP key file: armored input is decoded (headers and the `=`
/// checksum line skipped), binary input returned as it is.
pub fn dearmor(bytes: &[u8]) -> Vec<u8> {
    if !is_armored(bytes) {
        return bytes.to_vec();
    }
    let text = String::from_utf8_lossy(bytes);
    let body: String = text
        .lines()
        .skip(1)
        .skip_while(|l| !l.trim().is_empty())
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .filter(|l| !l.starts_with('='))
        .map(str::trim)
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("armored key: base64 body")
}

/// Debian's `gpgv` with `key` (armored or binary) as the only keyring: a clearsigned file
/// (`InRelease`, `data: None`) or a detached signature over `data` (`Release.gpg` +
/// `Release`). Ok with gpgv's report when the signature is good, Err with it otherwise.
pub fn gpgv_verify(key: &Path, signed: &Path, data: Option<&Path>) -> Result<String, String> {
    require_tool("gpgv", "gpgv");
    let dir = tempfile::tempdir().expect("temporary directory for gpgv");
    let keyring = dir.path().join("keyring.gpg");
    let bytes = fs::read(key).unwrap_or_else(|e| panic!("read key {}: {e}", key.display()));
    fs::write(&keyring, dearmor(&bytes)).expect("write the keyring");
    let mut cmd = Command::new("gpgv");
    cmd.env("LC_ALL", "C")
        .arg("--homedir")
        .arg(dir.path())
        .arg("--keyring")
        .arg(&keyring)
        .arg(signed);
    if let Some(data) = data {
        cmd.arg(data);
    }
    let out = cmd.output().expect("run gpgv");
    let text = output_text(&out);
    if out.status.success() && text.contains("Good signature") {
        Ok(text)
    } else {
        Err(text)
    }
}

// ---- a static HTTP server, independent of our code ----------------------------------------

/// `python3 -m http.server` over a directory, on a free loopback port; stopped on drop.
pub struct StaticHttp {
    child: Child,
    port: u16,
}

impl StaticHttp {
    /// Serves `dir` (a file `dir/a/b` is `http://127.0.0.1:PORT/a/b`; `%2b` in a URL is `+`).
    pub fn start(dir: &Path) -> Self {
        require_tool("python3", "python3");
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        let stdout = child.stdout.take().expect("server stdout");
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let mut line = String::new();
        let port = BufReader::new(stdout)
            .read_line(&mut line)
            .ok()
            .and_then(|_| line.split(" port ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse::<u16>().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("python3 -m http.server did not report its port: {line:?}");
        };
        let server = StaticHttp { child, port };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "http.server not listening on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for StaticHttp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
