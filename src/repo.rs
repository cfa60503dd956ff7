//! Typed names of what we publish, and the one place object keys are built.
//!
//! Every user-supplied path part (org, version, repo, arch, file name) becomes
//! a [`Segment`] only after validation, and every object key comes from
//! [`Key::path`], so no call site formats a key by hand.
//!
//! Layout (the private tree may live in its own store):
//! ```text
//! static/<org>/alpine/[<version>/[<repo>/]]<key name>.rsa.pub      public keys
//! static/<org>/alpine/<version>/<repo>/<arch>/<name>-<ver>.apk      packages
//! static/<org>/alpine/<version>/<repo>/<arch>/APKINDEX.tar.gz        signed index
//! config/_orgs/<org>.json                                            the org
//! config/<org>/alpine/[<version>/[<repo>/]]signing-key.pem          private keys
//! config/<org>/alpine/<version>/<repo>/repo.json                     repo settings (arches)
//! config/<org>/alpine/<version>/<repo>/<arch>/state.json             index records
//! config/<org>/alpine/<version>/<repo>/<arch>/chunks/<k>-<id>.json   records, split in chunks
//! config/<org>/alpine/<version>/<repo>/<arch>/chunks/<k>-<id>.deflate their compressed index text
//! config/<org>/alpine/<version>/<repo>/<arch>/index.json             what the index shows
//! config/<org>/alpine/<version>/<repo>/<arch>/pending/<id>.json      not yet merged changes
//! config/<org>/alpine/<version>/<repo>/<arch>/deleted/<file>.json    removed, file kept a while
//! config/<org>/alpine/<version>/<repo>/settings.d/…                  the settings root (state.json,
//!                                                                    chunks/, pending/ as above)
//! ```

use std::fmt;

mod distro;
mod key;
mod root;
pub use distro::{DISTROS_ENV, Distro, Family};
pub use key::{
    CACHE_DEFAULT, CACHE_IMMUTABLE, CACHE_INDEX, Key, Tree, cache_control_for, content_type_for,
};
pub use key::{DistsFile, rpm_arch_dir, rpm_arch_dir_named, rpm_repo_dir, rpm_repo_id};
pub use root::RootId;

/// Prefix of the public tree.
pub const STATIC_PREFIX: &str = "static/";
/// Prefix of the private tree.
pub const CONFIG_PREFIX: &str = "config/";

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} `{value}`: {reason}")]
pub struct NameError {
    /// What the name is (org, version, repo, arch, file name).
    pub kind: &'static str,
    /// The value given (control characters escaped).
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Longest org, version or repo name, in bytes.
///
/// Every object name is built from these names ([`Key::path`]); the longest
/// layout is a tombstone, `config/<org>/alpine/<version>/<repo>/<arch>/deleted/<file>.json`:
/// 7 + 64 + 8 + 64 + 1 + 64 + 1 + 32 + 9 + 255 + 5 = 510 bytes, within S3's
/// 1,024-byte keys with room for longer layouts (deb pools, rpm `repodata`),
/// and every name is far below the 255 bytes a file name may have on disk.
/// `every_key_fits_every_store` checks every layout.
pub const MAX_NAME_LEN: usize = 64;

/// Longest arch name, in bytes.
pub const MAX_ARCH_LEN: usize = 32;

/// Longest object key any store accepts (S3; a local path is shorter than
/// `PATH_MAX` below its root, and a GCS or Azure name longer).
pub const MAX_KEY_BYTES: usize = 1024;

/// The rule for org, version and repo names, as error messages state it.
const NAME_RULE: &str = "use lowercase ASCII: a letter or digit first, then letters, digits, `.`, `_`, `+` or `-`; at most 64 bytes";

/// The rule for arch names, as error messages state it.
const ARCH_RULE: &str =
    "use lowercase ASCII: a letter or digit first, then letters, digits or `_`; at most 32 bytes";

/// Endings of the files kept beside versions and repos (keys, settings, tokens).
const FILE_ENDINGS: &[&str] = &[".json", ".pem", ".pub", ".apk", ".gz", ".deflate"];

/// Checks `value` against [`NAME_RULE`]: `[a-z0-9][a-z0-9._+-]*`, at most
/// [`MAX_NAME_LEN`] bytes, no `..`, not ending like a file of the layout.
/// Look-alikes (Cyrillic or fullwidth letters, spaces, upper case) are refused,
/// so no two names that print alike reach the store.
fn check_name(kind: &'static str, value: &str) -> Result<(), NameError> {
    let fail = |reason| NameError {
        kind,
        value: value.escape_debug().to_string(),
        reason,
    };
    let first_ok = value
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok = value.bytes().all(|b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'+' | b'-')
    });
    if !first_ok || !rest_ok || value.len() > MAX_NAME_LEN {
        return Err(fail(NAME_RULE));
    }
    if value.contains("..") {
        return Err(fail("contains `..`"));
    }
    if FILE_ENDINGS.iter().any(|end| value.ends_with(end)) {
        return Err(fail(
            "ends like a file kept beside it (`.json`, `.pem`, `.pub`, `.apk`, `.gz`, `.deflate`)",
        ));
    }
    Ok(())
}

/// One validated path segment: no `/`, `\`, control characters, leading `.`,
/// and at most 128 bytes (255 for file names). Versions and repos (`kind`
/// `"version"`, `"repo"`) also follow the name rule: lowercase ASCII, at most
/// [`MAX_NAME_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Segment(String);

impl Segment {
    /// Validates `value` as a `kind` segment.
    pub fn parse(kind: &'static str, value: &str) -> Result<Self, NameError> {
        if matches!(kind, "version" | "repo") {
            check_name(kind, value)?;
        }
        let fail = |reason| NameError {
            kind,
            value: value.escape_debug().to_string(),
            reason,
        };
        let max = if kind == "file name" { 255 } else { 128 };
        if value.is_empty() {
            return Err(fail("empty"));
        }
        if value.len() > max {
            return Err(fail("too long"));
        }
        if value.starts_with('.') {
            return Err(fail("starts with `.`"));
        }
        if value.contains("..") {
            return Err(fail("contains `..`"));
        }
        if value.chars().any(|c| c.is_control()) {
            return Err(fail("contains a control character"));
        }
        if value.contains(['/', '\\', '%', '?', '#', '*', '"', '<', '>', '|', ':']) {
            return Err(fail("contains one of / \\ % ? # * \" < > | :"));
        }
        if value.trim() != value {
            return Err(fail("starts or ends with white space"));
        }
        Ok(Segment(value.to_owned()))
    }

    /// The segment as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Names an organization: lowercase ASCII letters and digits, then also `.`,
/// `_`, `+`, `-`, at most [`MAX_NAME_LEN`] bytes; not a reserved word.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Org(Segment);

/// First path segments the server uses itself; no org may take them.
pub const RESERVED_ORG_NAMES: &[&str] = &[
    "api",
    // `GET /api/orgs` lists orgs; `/api/{org}` could not name one called `orgs`.
    "orgs",
    "v1",
    "health",
    "metrics",
    "static",
    "config",
    "tokens",
    "admin",
    "openapi.json",
];

impl Org {
    /// Validates an organization name.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        check_name("org", value)?;
        let segment = Segment::parse("org", value)?;
        let fail = |reason| NameError {
            kind: "org",
            value: value.to_owned(),
            reason,
        };
        if RESERVED_ORG_NAMES.contains(&value) {
            return Err(fail("reserved name"));
        }
        Ok(Org(segment))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for Org {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An architecture name: `[a-z0-9][a-z0-9_]*`, at most [`MAX_ARCH_LEN`]
/// bytes (every apk arch: `x86_64`, `aarch64`, `armv7`, `ppc64le`,
/// `riscv64`, `loongarch64` ...). `noarch` is not a publishing target
/// (noarch packages go into every arch of a repo).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Arch(Segment);

/// The arch value of arch-independent packages.
pub const NOARCH: &str = "noarch";

impl Arch {
    /// Validates an arch name.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        let segment = Segment::parse("arch", value)?;
        let fail = |reason| NameError {
            kind: "arch",
            value: value.escape_debug().to_string(),
            reason,
        };
        let first_ok = value
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !first_ok || !rest_ok || value.len() > MAX_ARCH_LEN {
            return Err(fail(ARCH_RULE));
        }
        if value == NOARCH {
            return Err(fail(
                "`noarch` packages are published into every arch of a repo; name a real arch",
            ));
        }
        Ok(Arch(segment))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A repository: org, distro, version (e.g. `v3.20`, `edge`) and repo (e.g. `main`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoId {
    /// The organization.
    pub org: Org,
    /// The distro.
    pub distro: Distro,
    /// The distro version.
    pub version: Segment,
    /// The repository name.
    pub repo: Segment,
}

impl RepoId {
    /// Validates all parts of a repository name.
    pub fn parse(org: &str, distro: &str, version: &str, repo: &str) -> Result<Self, NameError> {
        Ok(Self {
            org: Org::parse(org)?,
            distro: Distro::parse(distro)?,
            version: Segment::parse("version", version)?,
            repo: Segment::parse("repo", repo)?,
        })
    }

    /// This repository's arch `arch`.
    pub fn arch(&self, arch: Arch) -> RepoArch {
        RepoArch {
            repo: self.clone(),
            arch,
        }
    }

    /// The suite of a Debian-style repository (its version), or a name
    /// error when the distro is not Debian-style or the name is reserved.
    pub fn suite(&self) -> Result<SuiteId, NameError> {
        SuiteId::new(self.org.clone(), self.distro, self.version.as_str())
    }

    /// The narrowest key scope holding this repository.
    pub fn scope(&self) -> Scope {
        Scope {
            org: self.org.clone(),
            distro: Some(self.distro),
            version: Some(self.version.clone()),
            repo: Some(self.repo.clone()),
        }
    }

    pub(crate) fn path(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.org, self.distro, self.version, self.repo
        )
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// Version names a Debian-style distro cannot use: they are the folders of
/// its public tree (`dists/`, `pool/`).
const RESERVED_SUITES: &[&str] = &["dists", "pool"];

/// A Debian-style suite (`bookworm`, `noble`): org, distro and the suite
/// name, which is the version of [`RepoId`]; its components are the repos.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SuiteId {
    /// The organization.
    pub org: Org,
    /// The distro (of the [`Family::Deb`] family).
    pub distro: Distro,
    /// The suite (codename).
    pub suite: Segment,
}

impl SuiteId {
    /// Validates a suite name of a Debian-style distro.
    pub fn new(org: Org, distro: Distro, suite: &str) -> Result<Self, NameError> {
        let fail = |reason| NameError {
            kind: "suite",
            value: suite.escape_debug().to_string(),
            reason,
        };
        if distro.family() != Family::Deb {
            return Err(fail("suites belong to Debian-style distros"));
        }
        if RESERVED_SUITES.contains(&suite) {
            return Err(fail("`dists` and `pool` are folders of the distro"));
        }
        Ok(Self {
            org,
            distro,
            suite: Segment::parse("version", suite)?,
        })
    }

    /// The key scope of the suite (its version).
    pub fn scope(&self) -> Scope {
        Scope {
            org: self.org.clone(),
            distro: Some(self.distro),
            version: Some(self.suite.clone()),
            repo: None,
        }
    }

    /// `<org>/<distro>/<suite>`.
    pub(crate) fn path(&self) -> String {
        format!("{}/{}/{}", self.org, self.distro, self.suite)
    }

    /// `<org>/<distro>`, the folder holding `dists/` and `pool/`.
    pub(crate) fn distro_path(&self) -> String {
        format!("{}/{}", self.org, self.distro)
    }
}

impl fmt::Display for SuiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// One architecture of one repository: the unit that has an index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoArch {
    /// The repository.
    pub repo: RepoId,
    /// The architecture.
    pub arch: Arch,
}

impl RepoArch {
    pub(crate) fn path(&self) -> String {
        format!("{}/{}", self.repo.path(), self.arch)
    }
}

impl fmt::Display for RepoArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// A level of the tree: an org, optionally narrowed to a distro, version and repo.
/// Signing keys and tokens belong to a scope; the most specific one wins.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    /// The organization.
    pub org: Org,
    /// The distro, if narrowed.
    pub distro: Option<Distro>,
    /// The version, if narrowed (needs a distro).
    pub version: Option<Segment>,
    /// The repo, if narrowed (needs a version).
    pub repo: Option<Segment>,
}

impl Scope {
    /// A scope from optional parts, checking that each needs the one before.
    pub fn new(
        org: Org,
        distro: Option<Distro>,
        version: Option<Segment>,
        repo: Option<Segment>,
    ) -> Result<Self, NameError> {
        let fail = |reason| NameError {
            kind: "scope",
            value: org.to_string(),
            reason,
        };
        if version.is_some() && distro.is_none() {
            return Err(fail("a version needs a distro"));
        }
        if repo.is_some() && version.is_none() {
            return Err(fail("a repo needs a version"));
        }
        Ok(Self {
            org,
            distro,
            version,
            repo,
        })
    }

    /// The scope and every wider one, most specific first.
    pub fn ancestry(&self) -> Vec<Scope> {
        let mut out = vec![self.clone()];
        let mut current = self.clone();
        loop {
            if current.repo.take().is_some()
                || current.version.take().is_some()
                || current.distro.take().is_some()
            {
                out.push(current.clone());
            } else {
                return out;
            }
        }
    }

    fn path(&self) -> String {
        let mut path = self.org.to_string();
        for part in [
            self.distro.map(|d| d.as_str().to_owned()),
            self.version.as_ref().map(Segment::to_string),
            self.repo.as_ref().map(Segment::to_string),
        ]
        .into_iter()
        .flatten()
        {
            path.push('/');
            path.push_str(&part);
        }
        path
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

#[cfg(test)]
mod tests;
