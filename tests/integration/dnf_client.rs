//! The real `dnf` (Debian's dnf 4.14), run with a private configuration and installroot: an
//! independent RPM client for tests of published yum/dnf repositories.
//!
//! [`DnfClient`] lives in its own temporary directory: its `dnf.conf` (passed with
//! `--config`, so the host's `/etc/dnf` is never read), its repository directory
//! (`--setopt=reposdir=`, holding only the `.repo` file the test gives: no system repos), its
//! copies of the OpenPGP keys, a private `HOME` (so no `~/.rpmmacros` is read) and the
//! installroot (`--installroot`), under which dnf keeps its cache, logs, history and the rpm
//! database. Every call passes `--releasever`, `--noplugins` and `--refresh`, so each run
//! revalidates `repomd.xml` (a second run after the repository changed sees the change; the
//! metadata files it already holds are reused by checksum). Signature checks are on:
//! `gpgcheck=1` (every package's header signature) and `repo_gpgcheck=1` (the detached
//! `repodata/repomd.xml.asc`), `skip_if_unavailable=0`, no proxy from the environment.
//!
//! Any line of dnf's output that signals a problem ("Error", "Warning", "Curl error",
//! "Failed to download metadata", a checksum mismatch, a bad or missing signature, ...) fails
//! the call even when dnf exits 0, with dnf's full output in the [`DnfFailure`].
//!
//! What dnf needs here (seen with this harness): nothing in the installroot beforehand: dnf
//! creates the rpm database (Debian's rpm keeps it at `~/.rpmdb`, so under the installroot at
//! `$HOME/.rpmdb`), imports the `gpgkey=` keys into it and into a GnuPG home per repository in
//! its cache (for `repo_gpgcheck`; that import starts a `gpg-agent`, stopped on drop). A real
//! install needs root: dnf refuses `install` (even `--downloadonly`) to other users, and rpm
//! chroots into the installroot. The fixtures have no scriptlets, so no shell is needed in
//! the installroot; a package with scriptlets would need one. Debian's dnf reads gzip and
//! zstd metadata alike, and binary or armored `gpgkey` files.
//!
//! ```ignore
//! let dnf = DnfClient::new(&url, &[&key_asc]);
//! dnf.makecache().expect("dnf makecache");
//! let tx = dnf.install(&["acc-tool"]).expect("install acc-tool");
//! assert_eq!(tx.installed_names(), ["acc-data", "acc-hello", "acc-lib", "acc-tool"]);
//! ```
//!
//! The published `.repo` file of a repository can be used as it is:
//! [`DnfClient::from_repo_url`] / [`DnfClient::from_repo_text`].

#![allow(dead_code)]

use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use tempfile::TempDir;

pub use crate::apt_client::require_tool;

mod text;
pub use text::{NEVRA_QF, check_repo_file, names, nevras, problem_lines, repomd_locations};

/// The `$releasever` every call passes (the seed's example tree is Fedora 39).
pub const RELEASEVER: &str = "39";

/// The repository id of a client made by [`DnfClient::new`].
pub const REPO_ID: &str = "harness";

/// A failed (or warning) dnf run.
#[derive(Clone)]
pub struct DnfFailure {
    /// The command line, as run.
    pub command: String,
    /// The exit status (`None`: killed by a signal, or not started).
    pub status: Option<i32>,
    /// Every line of output that signals a problem, in order.
    pub problems: Vec<String>,
    /// Everything dnf printed: stdout, then stderr.
    pub output: String,
}

impl fmt::Display for DnfFailure {
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
impl fmt::Debug for DnfFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for DnfFailure {}

/// What one `install` (or download-only install) did.
#[derive(Debug, Clone)]
pub struct Transaction {
    /// The NEVRA (`name-[epoch:]version-release.arch`) of every package file this call
    /// downloaded, sorted (read from the files' headers).
    pub downloaded: Vec<String>,
    /// The downloaded files, in dnf's cache (removed by the next install or download), sorted.
    pub files: Vec<PathBuf>,
    /// The NEVRA of every package this call installed (new in the installroot's rpm
    /// database), sorted; empty for a download-only run.
    pub installed: Vec<String>,
    /// dnf's full output.
    pub output: String,
}

impl Transaction {
    /// The names of the installed packages, sorted.
    pub fn installed_names(&self) -> Vec<String> {
        names(&self.installed)
    }

    /// The names of the downloaded packages, sorted.
    pub fn downloaded_names(&self) -> Vec<String> {
        names(&self.downloaded)
    }
}

/// A private dnf client: its own configuration, repo file, keys, cache and installroot, all
/// in one temporary directory removed on drop.
pub struct DnfClient {
    dir: TempDir,
    repo_ids: Vec<String>,
}

impl DnfClient {
    /// A client with one repository, id [`REPO_ID`]: `baseurl=base_url` (the directory
    /// holding `repodata/`), `gpgkey=` every key of `gpgkeys` (armored or binary public key
    /// files, copied into the client's directory, so the caller's files may go away; list the
    /// key signing `repomd.xml` and the key(s) signing the packages), `gpgcheck=1`,
    /// `repo_gpgcheck=1`, `metadata_expire=0`.
    ///
    /// Panics when the client cannot be set up, or when `dnf` is not installed
    /// (`scripts/test` installs it).
    pub fn new(base_url: &str, gpgkeys: &[&Path]) -> Self {
        assert!(
            !gpgkeys.is_empty(),
            "a dnf client needs at least one gpgkey"
        );
        let client = Self::empty();
        let mut urls = Vec::new();
        for (n, key) in gpgkeys.iter().enumerate() {
            let bytes =
                fs::read(key).unwrap_or_else(|e| panic!("read gpgkey {}: {e}", key.display()));
            let ext = if bytes.starts_with(b"-----BEGIN PGP") {
                "asc"
            } else {
                "gpg"
            };
            let copy = client.root().join(format!("keys/key-{}.{ext}", n + 1));
            fs::write(&copy, bytes).expect("copy the gpgkey");
            urls.push(format!("file://{}", copy.display()));
        }
        let text = format!(
            "[{REPO_ID}]\nname=dnf test harness\nbaseurl={}/\nenabled=1\ngpgcheck=1\n\
             repo_gpgcheck=1\ngpgkey={}\nmetadata_expire=0\nskip_if_unavailable=0\n",
            base_url.trim_end_matches('/'),
            urls.join(" ")
        );
        client.with_repo_text(&text)
    }

    /// A client of the repositories a published `.repo` file describes, written as it is
    /// (byte for byte: the cache, logs and rpm database are placed by the client's
    /// `dnf.conf`, so nothing in the file needs rewriting). Panics unless every section has
    /// a `baseurl`, a `gpgkey`, `gpgcheck=1` and `repo_gpgcheck=1` (see [`check_repo_file`]).
    pub fn from_repo_text(text: &str) -> Self {
        Self::empty().with_repo_text(text)
    }

    /// [`DnfClient::from_repo_text`] with the `.repo` file fetched from `url` (with `curl`,
    /// independent of our code).
    pub fn from_repo_url(url: &str) -> Self {
        Self::from_repo_text(&fetch_text(url))
    }

    fn empty() -> Self {
        require_tool("dnf", "dnf");
        require_tool("rpm", "rpm");
        // Short path: the GnuPG home dnf makes in its cache holds gpg-agent's socket, and
        // socket paths are limited to about 100 bytes.
        let dir = tempfile::Builder::new()
            .prefix("dnf-")
            .tempdir_in("/tmp")
            .expect("temporary directory for the dnf client");
        for sub in ["keys", "repos.d", "vars", "home", "root"] {
            fs::create_dir_all(dir.path().join(sub))
                .unwrap_or_else(|e| panic!("create {sub}: {e}"));
        }
        fs::write(dir.path().join("dnf.conf"), config_text(dir.path()))
            .expect("write the dnf configuration");
        DnfClient {
            dir,
            repo_ids: Vec::new(),
        }
    }

    fn with_repo_text(mut self, text: &str) -> Self {
        self.repo_ids = check_repo_file(text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
        fs::write(self.repo_file(), text).expect("write the .repo file");
        self
    }

    /// The client's directory (every path it uses is under it).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The `--config` file.
    pub fn config_path(&self) -> PathBuf {
        self.root().join("dnf.conf")
    }

    /// The `.repo` file (the only file in the client's reposdir).
    pub fn repo_file(&self) -> PathBuf {
        self.root().join("repos.d/harness.repo")
    }

    /// The repository ids of the `.repo` file, in order.
    pub fn repo_ids(&self) -> &[String] {
        &self.repo_ids
    }

    /// The `--installroot`.
    pub fn installroot(&self) -> PathBuf {
        self.root().join("root")
    }

    /// dnf's cache: `<repoid>-<hash>/repodata` (metadata), `.../packages` (downloads),
    /// `.../pubring` (the GnuPG home checking `repomd.xml.asc`).
    pub fn cache_dir(&self) -> PathBuf {
        self.installroot().join("var/cache/dnf")
    }

    /// A `Command` for `program` (`dnf`, `rpm`, `rpmkeys`) with this client's environment:
    /// private `HOME`, C locale, no proxy from the environment, no stdin.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("HOME", self.root().join("home"))
            .env("LC_ALL", "C.UTF-8")
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY")
            .env_remove("all_proxy")
            .env_remove("ALL_PROXY")
            .env_remove("GNUPGHOME")
            .stdin(Stdio::null());
        cmd
    }

    /// The options every dnf call gets, before the command.
    fn dnf_args(&self) -> Vec<String> {
        vec![
            "--config".into(),
            self.config_path().display().to_string(),
            "--installroot".into(),
            self.installroot().display().to_string(),
            format!(
                "--setopt=reposdir={}",
                self.root().join("repos.d").display()
            ),
            "--releasever".into(),
            RELEASEVER.into(),
            "--noplugins".into(),
            "--refresh".into(),
            "--assumeyes".into(),
        ]
    }

    /// `dnf makecache`: fetches (and checks) `repomd.xml`, its signature and the metadata it
    /// lists. Ok with dnf's output.
    pub fn makecache(&self) -> Result<String, DnfFailure> {
        self.dnf(&["makecache"]).map(|out| output_text(&out))
    }

    /// `dnf makecache` that must fail; returns the failure's text. Panics when it succeeds.
    pub fn makecache_expect_failure(&self) -> String {
        match self.makecache() {
            Ok(out) => panic!("dnf makecache succeeded but should have failed:\n{out}"),
            Err(failure) => failure.to_string(),
        }
    }

    /// `dnf install -y PACKAGES` for real into the installroot, with dnf's resolver: every
    /// package it downloaded and installed, dependencies included. Needs root.
    pub fn install(&self, packages: &[&str]) -> Result<Transaction, DnfFailure> {
        self.transaction(packages, false)
    }

    /// [`DnfClient::install`] that must fail (a tampered or unsigned package); returns the
    /// failure's text. Panics when the install succeeds.
    pub fn install_expect_failure(&self, packages: &[&str]) -> String {
        match self.install(packages) {
            Ok(tx) => panic!("install of {packages:?} succeeded but should have failed: {tx:?}"),
            Err(failure) => failure.to_string(),
        }
    }

    /// `dnf install --downloadonly -y PACKAGES`: resolves, downloads and checks the
    /// packages' signatures (dnf does that before it would install), installs nothing.
    pub fn download(&self, packages: &[&str]) -> Result<Transaction, DnfFailure> {
        self.transaction(packages, true)
    }

    fn transaction(
        &self,
        packages: &[&str],
        download_only: bool,
    ) -> Result<Transaction, DnfFailure> {
        assert!(
            owner_uid(self.root()) == 0,
            "dnf installs (even --downloadonly) only as root; run these tests as root (CI does)"
        );
        for rpm in self.cached_rpms() {
            fs::remove_file(&rpm).unwrap_or_else(|e| panic!("remove {}: {e}", rpm.display()));
        }
        let before = self.installed();
        let mut args = vec!["install"];
        if download_only {
            args.push("--downloadonly");
        }
        args.extend_from_slice(packages);
        let out = self.dnf(&args)?;
        let files = self.cached_rpms();
        let downloaded = if files.is_empty() {
            Vec::new()
        } else {
            let mut cmd = self.command("rpm");
            cmd.args(["-q", "--nosignature", "--nodigest", "-p", "--qf", NEVRA_QF]);
            cmd.args(&files);
            let mut list = nevras(&checked_stdout(cmd, "rpm -qp"));
            list.sort();
            list
        };
        let installed = self
            .installed()
            .into_iter()
            .filter(|n| !before.contains(n))
            .collect();
        Ok(Transaction {
            downloaded,
            files,
            installed,
            output: output_text(&out),
        })
    }

    /// `dnf repoquery -q ARGS`: its stdout, one entry a line (e.g. `["--requires",
    /// "acc-tool"]`).
    pub fn repoquery_raw(&self, args: &[&str]) -> Result<Vec<String>, DnfFailure> {
        let mut all = vec!["repoquery", "-q"];
        all.extend_from_slice(args);
        let out = self.dnf(&all)?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// The NEVRA of every available package matching `specs` (all packages when empty),
    /// sorted: `dnf repoquery --available`.
    pub fn repoquery(&self, specs: &[&str]) -> Result<Vec<String>, DnfFailure> {
        let qf = "%{name} %{epoch} %{version} %{release} %{arch}";
        let mut args = vec!["--available", "--queryformat", qf];
        args.extend_from_slice(specs);
        let lines = self.repoquery_raw(&args)?;
        let mut list = nevras(&lines.join("\n"));
        list.sort();
        list.dedup();
        Ok(list)
    }

    /// The NEVRA of every package in the installroot's rpm database (imported `gpg-pubkey`
    /// entries left out), sorted.
    pub fn installed(&self) -> Vec<String> {
        let mut cmd = self.command("rpm");
        cmd.arg("--root").arg(self.installroot());
        cmd.args(["-qa", "--qf", NEVRA_QF]);
        let mut list: Vec<String> = nevras(&checked_stdout(cmd, "rpm -qa"))
            .into_iter()
            .filter(|n| !n.starts_with("gpg-pubkey-"))
            .collect();
        list.sort();
        list
    }

    /// `rpmkeys -K` of a package file against the keys dnf imported into the installroot's
    /// rpm database (after an install or download). Ok with rpm's report when the digests and
    /// the signature are good, Err with it otherwise (a missing signature included).
    pub fn checksig(&self, rpm: &Path) -> Result<String, String> {
        let out = self
            .command("rpmkeys")
            .arg("--root")
            .arg(self.installroot())
            .arg("-Kv")
            .arg(rpm)
            .output()
            .expect("run rpmkeys");
        let text = output_text(&out);
        let signed = text.contains("Signature, key ID") && text.contains(": OK");
        if out.status.success() && signed && !text.contains("NOKEY") && !text.contains("BAD") {
            Ok(text)
        } else {
            Err(text)
        }
    }

    /// Runs `dnf [private options] ARGS`; a non-zero exit or any problem line is a failure.
    /// Prints the call's wall time to stderr (shown with `--nocapture`).
    pub fn dnf(&self, args: &[&str]) -> Result<Output, DnfFailure> {
        let all: Vec<String> = self
            .dnf_args()
            .into_iter()
            .chain(args.iter().map(|a| a.to_string()))
            .collect();
        let command = format!("dnf {}", all.join(" "));
        let started = Instant::now();
        let result = self.command("dnf").args(&all).output();
        eprintln!(
            "dnf harness: `dnf {}` took {:.2} s",
            args.join(" "),
            started.elapsed().as_secs_f64()
        );
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                return Err(DnfFailure {
                    command,
                    status: None,
                    problems: vec![format!("could not run dnf: {e}")],
                    output: String::new(),
                });
            }
        };
        let output = output_text(&out);
        let problems = problem_lines(&output);
        if out.status.success() && problems.is_empty() {
            Ok(out)
        } else {
            Err(DnfFailure {
                command,
                status: out.status.code(),
                problems,
                output,
            })
        }
    }

    /// The `.rpm` files in dnf's cache, sorted.
    pub fn cached_rpms(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = files_under(&self.cache_dir())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
            .collect();
        out.sort();
        out
    }
}

impl Drop for DnfClient {
    fn drop(&mut self) {
        // dnf imports the repo keys into a GnuPG home in its cache, which starts an agent.
        for dir in dirs_named(&self.cache_dir(), "pubring") {
            let _ = Command::new("gpgconf")
                .arg("--homedir")
                .arg(&dir)
                .args(["--kill", "gpg-agent"])
                .stdin(Stdio::null())
                .output();
        }
    }
}

/// The private configuration: cache, logs and history under the installroot (dnf prefixes
/// these paths with it), repos only from the client's reposdir, every check on.
fn config_text(dir: &Path) -> String {
    format!(
        "# dnf test harness: private configuration; nothing on the host is read or written.\n\
         [main]\n\
         cachedir=/var/cache/dnf\n\
         logdir=/var/log/dnf\n\
         persistdir=/var/lib/dnf\n\
         reposdir={repos}\n\
         varsdir={vars}\n\
         plugins=0\n\
         gpgcheck=1\n\
         repo_gpgcheck=1\n\
         localpkg_gpgcheck=1\n\
         skip_if_unavailable=0\n\
         metadata_expire=0\n\
         keepcache=1\n\
         install_weak_deps=0\n\
         best=1\n\
         fastestmirror=0\n\
         countme=0\n\
         timeout=20\n\
         retries=0\n",
        repos = dir.join("repos.d").display(),
        vars = dir.join("vars").display(),
    )
}

/// The metadata file of `kind` (`primary`, `filelists`, `other`, ...) of the repository in
/// the local directory `repo_dir` (the one holding `repodata/`), as its `repomd.xml` names it:
/// for tests that tamper with a published file.
pub fn metadata_file(repo_dir: &Path, kind: &str) -> PathBuf {
    let repomd = repo_dir.join("repodata/repomd.xml");
    let text =
        fs::read_to_string(&repomd).unwrap_or_else(|e| panic!("read {}: {e}", repomd.display()));
    let (_, href) = repomd_locations(&text)
        .into_iter()
        .find(|(k, _)| k == kind)
        .unwrap_or_else(|| panic!("{} lists no {kind} metadata:\n{text}", repomd.display()));
    repo_dir.join(href)
}

/// `curl -fsS URL` as text; panics with curl's message on failure.
fn fetch_text(url: &str) -> String {
    require_tool("curl", "curl");
    let out = Command::new("curl")
        .args(["-fsS", "--noproxy", "*", "--max-time", "20", url])
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{url} is not UTF-8: {e}"))
}

/// Runs `cmd`; its stdout (panics with its output on failure).
fn checked_stdout(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {what}: {e}"));
    assert!(out.status.success(), "{what}: {}", output_text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The uid owning `path` (for a directory we just made: our own).
fn owner_uid(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .uid()
}

/// Every file under `dir` (none when it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    out
}

/// Every directory called `name` under `dir`.
fn dirs_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if entry.file_name() == name {
                    out.push(entry.path());
                } else {
                    stack.push(entry.path());
                }
            }
        }
    }
    out
}
