//! Builds valid (or deliberately broken) `.apk` files in memory, for tests and benchmarks.
//!
//! A built package has the real v2 layout, as abuild makes it: a signature
//! member (a dummy `.SIGN.RSA.dummy.rsa.pub` entry; apk checks packages
//! against the index's `C:`, not their own signature), a control member with
//! `.PKGINFO` (`datahash` = SHA-256 of the stored data member), both tars cut,
//! and a data member whose regular files carry `APK-TOOLS.checksum.SHA1`.
//! Output is deterministic: same builder, same bytes.
//!
//! ```
//! use packages::formats::apk::{ApkLimits, builder::ApkBuilder, read_package};
//!
//! let apk = ApkBuilder::new("hello", "1.0-r0", "x86_64")
//!     .description("says hello")
//!     .depend("so:libc.musl-x86_64.so.1")
//!     .file("usr/bin/hello", b"#!/bin/sh\necho hello\n")
//!     .build();
//! let package = read_package(apk.as_slice(), &ApkLimits::default()).unwrap();
//! assert_eq!(package.record.name, "hello");
//! ```

use super::gzip;
use super::ustar::{self, HeaderSpec};
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

/// A deliberate defect, for testing that readers refuse bad packages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Breakage {
    /// `.PKGINFO` `datahash` does not match the data member.
    WrongDatahash,
    /// The first regular file's `APK-TOOLS.checksum.SHA1` is wrong.
    BadFileChecksum,
    /// Regular files have no `APK-TOOLS.checksum.SHA1` pax header.
    MissingFileChecksum,
    /// An extra data file named `../x`.
    DotDotPath,
    /// An extra data file named `/x`.
    AbsolutePath,
    /// `.PKGINFO` lacks this key (`pkgname`, `pkgver`, `arch`, `size`, `datahash`, ...).
    MissingField(&'static str),
    /// `pkgdesc` is this many bytes long (a line far over any sane limit).
    HugePkginfoLine(usize),
    /// `.PKGINFO` holds a line that is not UTF-8.
    NonUtf8Pkginfo,
    /// A 4th gzip member follows the data member.
    ExtraMember,
    /// Bytes that are not gzip follow the data member.
    TrailingGarbage,
    /// The control tar keeps its end-of-archive blocks (not cut).
    UncutControl,
    /// The control member holds a file that is not a dot-file.
    ControlNonDotFile,
    /// The control member has no `.PKGINFO`.
    NoPkginfo,
    /// The data member is stored as an uncompressed tar instead of gzip.
    DataNotGzip,
    /// A symlink `etc-link -> /etc`, then a file `etc-link/passwd` written
    /// through it (no directory entry for `etc-link`).
    ThroughSymlink,
    /// A character device `dev-null`.
    CharDevice,
    /// A block device `dev-sda`.
    BlockDevice,
    /// A FIFO `fifo`.
    Fifo,
    /// A file `no-dir/file` without a directory entry for `no-dir`.
    MissingParentDir,
    /// A hard link `dangling` to `not-in-package`.
    DanglingHardLink,
    /// `.PKGINFO` `size = 18446744073709551615` (2^64 - 1).
    HugeInstalledSize,
}

#[derive(Debug, Clone)]
enum DataEntry {
    File {
        path: String,
        data: Vec<u8>,
        mode: u32,
    },
    Dir {
        path: String,
    },
    Symlink {
        path: String,
        target: String,
    },
    HardLink {
        path: String,
        target: String,
    },
}

/// Builds one `.apk` in memory. Every setter consumes and returns the builder.
#[derive(Debug, Clone)]
pub struct ApkBuilder {
    name: String,
    version: String,
    arch: String,
    description: String,
    url: String,
    license: String,
    origin: Option<String>,
    maintainer: String,
    build_time: u64,
    commit: String,
    provider_priority: Option<u64>,
    depends: Vec<String>,
    provides: Vec<String>,
    install_if: Vec<String>,
    installed_size: Option<u64>,
    entries: Vec<DataEntry>,
    scripts: Vec<(String, Vec<u8>)>,
    extra_pkginfo: Vec<String>,
    breakages: Vec<Breakage>,
}

impl ApkBuilder {
    /// A package with no files, license `MIT` and build time 1700000000.
    pub fn new(name: &str, version: &str, arch: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            arch: arch.to_owned(),
            description: format!("{name} test package"),
            url: String::new(),
            license: "MIT".to_owned(),
            origin: None,
            maintainer: String::new(),
            build_time: 1_700_000_000,
            commit: String::new(),
            provider_priority: None,
            depends: Vec::new(),
            provides: Vec::new(),
            install_if: Vec::new(),
            installed_size: None,
            entries: Vec::new(),
            scripts: Vec::new(),
            extra_pkginfo: Vec::new(),
            breakages: Vec::new(),
        }
    }

    /// The file name apk requests: `<name>-<version>.apk`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.apk", self.name, self.version)
    }

    /// Sets `pkgdesc`.
    pub fn description(mut self, text: &str) -> Self {
        self.description = text.to_owned();
        self
    }

    /// Sets `url`.
    pub fn url(mut self, url: &str) -> Self {
        self.url = url.to_owned();
        self
    }

    /// Sets `license`.
    pub fn license(mut self, license: &str) -> Self {
        self.license = license.to_owned();
        self
    }

    /// Sets `origin` (default: the package name).
    pub fn origin(mut self, origin: &str) -> Self {
        self.origin = Some(origin.to_owned());
        self
    }

    /// Sets `maintainer`.
    pub fn maintainer(mut self, maintainer: &str) -> Self {
        self.maintainer = maintainer.to_owned();
        self
    }

    /// Sets `builddate` (Unix seconds); also the mtime of every tar entry.
    pub fn build_time(mut self, unix_seconds: u64) -> Self {
        self.build_time = unix_seconds;
        self
    }

    /// Sets `commit`.
    pub fn commit(mut self, commit: &str) -> Self {
        self.commit = commit.to_owned();
        self
    }

    /// Sets `provider_priority`.
    pub fn provider_priority(mut self, priority: u64) -> Self {
        self.provider_priority = Some(priority);
        self
    }

    /// Adds one `depend` (`name`, `name>=1.0`, `so:libc.musl-x86_64.so.1`, `!conflict`).
    pub fn depend(mut self, atom: &str) -> Self {
        self.depends.push(atom.to_owned());
        self
    }

    /// Adds several `depend` lines.
    pub fn depends<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, atoms: I) -> Self {
        self.depends
            .extend(atoms.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Adds one `provides` (`cmd:hello=1.0-r0`).
    pub fn provide(mut self, atom: &str) -> Self {
        self.provides.push(atom.to_owned());
        self
    }

    /// Adds several `provides` lines.
    pub fn provides<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, atoms: I) -> Self {
        self.provides
            .extend(atoms.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Adds one `install_if`.
    pub fn install_if(mut self, atom: &str) -> Self {
        self.install_if.push(atom.to_owned());
        self
    }

    /// Sets `size` (installed size). Default: the sum of the file sizes, at
    /// least 1 when there are files (apk 2 skips downloading size-0 packages).
    pub fn installed_size(mut self, bytes: u64) -> Self {
        self.installed_size = Some(bytes);
        self
    }

    /// Adds a regular file (mode 0644). The path is written as given, without
    /// checks; parent directories get entries of their own when the path is safe.
    pub fn file(self, path: &str, data: &[u8]) -> Self {
        self.file_with_mode(path, data, 0o644)
    }

    /// Adds a regular file with a mode (`0o755` for programs).
    pub fn file_with_mode(mut self, path: &str, data: &[u8], mode: u32) -> Self {
        self.entries.push(DataEntry::File {
            path: path.to_owned(),
            data: data.to_vec(),
            mode,
        });
        self
    }

    /// Adds a directory.
    pub fn dir(mut self, path: &str) -> Self {
        self.entries.push(DataEntry::Dir {
            path: path.to_owned(),
        });
        self
    }

    /// Adds a symbolic link `path` → `target`.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.entries.push(DataEntry::Symlink {
            path: path.to_owned(),
            target: target.to_owned(),
        });
        self
    }

    /// Adds a hard link `path` to the earlier entry `target`.
    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        self.entries.push(DataEntry::HardLink {
            path: path.to_owned(),
            target: target.to_owned(),
        });
        self
    }

    /// Adds a control script such as `.post-install`.
    pub fn script(mut self, name: &str, body: &[u8]) -> Self {
        self.scripts.push((name.to_owned(), body.to_vec()));
        self
    }

    /// Appends a raw line to `.PKGINFO` (before `datahash`).
    pub fn pkginfo_line(mut self, line: &str) -> Self {
        self.extra_pkginfo.push(line.to_owned());
        self
    }

    /// Makes the package defective in the given way; several can be combined.
    pub fn break_with(mut self, breakage: Breakage) -> Self {
        self.breakages.push(breakage);
        self
    }

    fn broken(&self, breakage: &Breakage) -> bool {
        self.breakages.contains(breakage)
    }

    /// Builds the `.apk` bytes.
    pub fn build(&self) -> Vec<u8> {
        let data_member = self.data_member();
        let control_member = self.control_member(&data_member);

        let mut signature_tar = Vec::new();
        ustar::append_entry(
            &mut signature_tar,
            &HeaderSpec::file(b".SIGN.RSA.dummy.rsa.pub", 256, 0o644),
            &[0x5a; 256],
            &[],
        );
        let mut apk = gzip(&signature_tar);
        apk.extend_from_slice(&control_member);
        apk.extend_from_slice(&data_member);
        if self.broken(&Breakage::ExtraMember) {
            apk.extend_from_slice(&gzip(&[0u8; 1024]));
        }
        if self.broken(&Breakage::TrailingGarbage) {
            apk.extend_from_slice(b"trailing garbage");
        }
        apk
    }

    fn data_member(&self) -> Vec<u8> {
        let mut entries = self.entries.clone();
        if self.broken(&Breakage::DotDotPath) {
            entries.push(DataEntry::File {
                path: "../x".to_owned(),
                data: b"x".to_vec(),
                mode: 0o644,
            });
        }
        if self.broken(&Breakage::AbsolutePath) {
            entries.push(DataEntry::File {
                path: "/x".to_owned(),
                data: b"x".to_vec(),
                mode: 0o644,
            });
        }

        let mut tar = Vec::new();
        let mut dirs_written: Vec<String> = Vec::new();
        let mut first_file = true;
        let mtime = self.build_time;
        for entry in &entries {
            let path = match entry {
                DataEntry::File { path, .. }
                | DataEntry::Dir { path }
                | DataEntry::Symlink { path, .. }
                | DataEntry::HardLink { path, .. } => path,
            };
            // Parent directories first, as abuild's sorted tar has them.
            if !path.starts_with('/') && !path.split('/').any(|c| c == "..") {
                let parts: Vec<&str> = path.split('/').collect();
                for depth in 1..parts.len() {
                    let dir = parts[..depth].join("/");
                    if !dir.is_empty() && !dirs_written.contains(&dir) {
                        append_dir(&mut tar, &dir, mtime);
                        dirs_written.push(dir);
                    }
                }
            }
            match entry {
                DataEntry::File { path, data, mode } => {
                    let mut sha1 = hex::encode(Sha1::digest(data));
                    if first_file && self.broken(&Breakage::BadFileChecksum) {
                        sha1 = hex::encode(Sha1::digest(b"something else"));
                    }
                    first_file = false;
                    let pax: &[(&str, &[u8])] = if self.broken(&Breakage::MissingFileChecksum) {
                        &[]
                    } else {
                        &[(ustar::PAX_SHA1, sha1.as_bytes())]
                    };
                    let spec = HeaderSpec {
                        mtime,
                        ..HeaderSpec::file(path.as_bytes(), data.len() as u64, *mode)
                    };
                    ustar::append_entry(&mut tar, &spec, data, pax);
                }
                DataEntry::Dir { path } => {
                    if !dirs_written.contains(path) {
                        append_dir(&mut tar, path, mtime);
                        dirs_written.push(path.clone());
                    }
                }
                DataEntry::Symlink { path, target } | DataEntry::HardLink { path, target } => {
                    let typeflag = if matches!(entry, DataEntry::Symlink { .. }) {
                        b'2'
                    } else {
                        b'1'
                    };
                    // abuild-tar hashes the link target for links.
                    let sha1 = hex::encode(Sha1::digest(target.as_bytes()));
                    let spec = HeaderSpec {
                        name: path.as_bytes(),
                        typeflag,
                        size: 0,
                        mode: 0o777,
                        mtime,
                        link: target.as_bytes(),
                    };
                    ustar::append_entry(
                        &mut tar,
                        &spec,
                        b"",
                        &[(ustar::PAX_SHA1, sha1.as_bytes())],
                    );
                }
            }
        }
        self.append_broken_entries(&mut tar, mtime);
        ustar::append_end(&mut tar);
        if self.broken(&Breakage::DataNotGzip) {
            return tar;
        }
        gzip(&tar)
    }

    fn default_installed_size(&self) -> u64 {
        let sum: u64 = self
            .entries
            .iter()
            .map(|e| match e {
                DataEntry::File { data, .. } => data.len() as u64,
                _ => 0,
            })
            .sum();
        if self.entries.is_empty() {
            0
        } else {
            sum.max(1)
        }
    }

    fn pkginfo(&self, data_member: &[u8]) -> Vec<u8> {
        let missing = |key: &str| {
            self.breakages
                .iter()
                .any(|b| matches!(b, Breakage::MissingField(k) if *k == key))
        };
        let mut lines: Vec<(String, String)> = Vec::new();
        let mut push = |key: &str, value: String| {
            if !missing(key) {
                lines.push((key.to_owned(), value));
            }
        };
        let description = match self.breakages.iter().find_map(|b| match b {
            Breakage::HugePkginfoLine(len) => Some(*len),
            _ => None,
        }) {
            Some(len) => huge_text(len),
            None => self.description.clone(),
        };
        push("pkgname", self.name.clone());
        push("pkgver", self.version.clone());
        push("pkgdesc", description);
        push("url", self.url.clone());
        push("builddate", self.build_time.to_string());
        push("packager", "packages ApkBuilder".to_owned());
        let size = if self.broken(&Breakage::HugeInstalledSize) {
            u64::MAX
        } else {
            self.installed_size
                .unwrap_or_else(|| self.default_installed_size())
        };
        push("size", size.to_string());
        push("arch", self.arch.clone());
        push(
            "origin",
            self.origin.clone().unwrap_or_else(|| self.name.clone()),
        );
        push("commit", self.commit.clone());
        if !self.maintainer.is_empty() {
            push("maintainer", self.maintainer.clone());
        }
        if let Some(priority) = self.provider_priority {
            push("provider_priority", priority.to_string());
        }
        push("license", self.license.clone());
        for atom in &self.depends {
            push("depend", atom.clone());
        }
        for atom in &self.provides {
            push("provides", atom.clone());
        }
        for atom in &self.install_if {
            push("install_if", atom.clone());
        }
        let mut datahash = hex::encode(Sha256::digest(data_member));
        if self.broken(&Breakage::WrongDatahash) {
            datahash = hex::encode(Sha256::digest(b"not the data member"));
        }

        let mut text = b"# Generated by packages ApkBuilder\n".to_vec();
        for (key, value) in lines {
            text.extend_from_slice(format!("{key} = {value}\n").as_bytes());
        }
        for line in &self.extra_pkginfo {
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
        }
        if self.broken(&Breakage::NonUtf8Pkginfo) {
            text.extend_from_slice(b"packager = Jos\xe9 (latin-1)\n");
        }
        if !missing("datahash") {
            text.extend_from_slice(format!("datahash = {datahash}\n").as_bytes());
        }
        text
    }

    fn control_member(&self, data_member: &[u8]) -> Vec<u8> {
        let pkginfo = self.pkginfo(data_member);
        let mut tar = Vec::new();
        let mtime = self.build_time;
        if !self.broken(&Breakage::NoPkginfo) {
            let spec = HeaderSpec {
                mtime,
                ..HeaderSpec::file(b".PKGINFO", pkginfo.len() as u64, 0o644)
            };
            ustar::append_entry(&mut tar, &spec, &pkginfo, &[]);
        }
        for (name, body) in &self.scripts {
            let spec = HeaderSpec {
                mtime,
                ..HeaderSpec::file(name.as_bytes(), body.len() as u64, 0o755)
            };
            ustar::append_entry(&mut tar, &spec, body, &[]);
        }
        if self.broken(&Breakage::ControlNonDotFile) {
            ustar::append_entry(
                &mut tar,
                &HeaderSpec::file(b"usr/bin/early", 1, 0o644),
                b"x",
                &[],
            );
        }
        if self.broken(&Breakage::UncutControl) {
            ustar::append_end(&mut tar);
        }
        gzip(&tar)
    }
}

/// `len` bytes of printable, poorly compressible text (so that a huge line
/// is also big on the wire, which tests of streaming need).
fn huge_text(len: usize) -> String {
    // xorshift: deterministic, no rand dependency needed here.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state >> 58) as usize])
        })
        .collect()
}

fn append_dir(tar: &mut Vec<u8>, path: &str, mtime: u64) {
    let name = format!("{path}/");
    let spec = HeaderSpec {
        name: name.as_bytes(),
        typeflag: b'5',
        size: 0,
        mode: 0o755,
        mtime,
        link: b"",
    };
    ustar::append_entry(tar, &spec, b"", &[]);
}

mod broken;
#[cfg(test)]
mod tests;
