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

mod root;
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

/// The package formats (distro families) we publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Distro {
    /// Alpine Linux (`.apk`, `APKINDEX.tar.gz`).
    Alpine,
}

impl Distro {
    /// Parses a distro name.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        match value {
            "alpine" => Ok(Distro::Alpine),
            _ => Err(NameError {
                kind: "distro",
                value: value.escape_debug().to_string(),
                reason: "unsupported (supported: alpine)",
            }),
        }
    }

    /// The name used in paths.
    pub fn as_str(self) -> &'static str {
        match self {
            Distro::Alpine => "alpine",
        }
    }
}

impl fmt::Display for Distro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

/// Which tree, and so which store, an object belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    /// `static/`: served to clients.
    Public,
    /// `config/`: never served.
    Private,
}

/// Every object we store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// A package file in one arch of a repo.
    Package {
        /// Where.
        arch: RepoArch,
        /// Its file name (`<name>-<version>.apk`).
        file: Segment,
    },
    /// The signed index of one arch of a repo.
    Index(RepoArch),
    /// A public signing key, published under its apk key name.
    PublicKey {
        /// The scope whose private key it matches.
        scope: Scope,
        /// The apk key file name.
        name: Segment,
    },
    /// The private signing key of a scope.
    PrivateKey(Scope),
    /// An organization's record.
    Org(Org),
    /// A repository's settings (configured arches).
    RepoSettings(RepoId),
    /// The manifest of one root's records (`state.json`).
    IndexState(RootId),
    /// A package removed from the index whose file is kept for a grace period.
    Tombstone {
        /// Where.
        arch: RepoArch,
        /// The package file name.
        file: Segment,
    },
    /// What the published files of one root were rendered from (the marker).
    IndexMarker(RootId),
    /// One chunk of a root's records (immutable, named by content).
    Chunk {
        /// Where.
        root: RootId,
        /// `<chunk number>-<content id>`.
        name: Segment,
    },
    /// The cached rendered part of one chunk, as stores written before the
    /// part moved into the chunk object hold it (apk: a deflate segment).
    ChunkSegment {
        /// Where.
        root: RootId,
        /// `<chunk number>-<content id>`.
        name: Segment,
    },
    /// A not-yet-merged change to one root.
    Pending {
        /// Where.
        root: RootId,
        /// Its id (sortable by time).
        id: Segment,
    },
    /// An API token's record, named by the SHA-256 (hex) of the token, in
    /// the tokens folder of its level: `config/tokens/` for server-wide admin
    /// tokens (`level: None`), `config/<scope>/tokens/` otherwise.
    Token {
        /// The level the token belongs to (`None`: admin).
        level: Option<Scope>,
        /// Lowercase hex SHA-256 of the token.
        hash: Segment,
    },
}

impl Key {
    /// The object key.
    pub fn path(&self) -> String {
        match self {
            Key::Package { arch, file } => format!("{STATIC_PREFIX}{}/{file}", arch.path()),
            Key::Index(arch) => format!("{STATIC_PREFIX}{}/APKINDEX.tar.gz", arch.path()),
            Key::PublicKey { scope, name } => format!("{STATIC_PREFIX}{}/{name}", scope.path()),
            Key::PrivateKey(scope) => format!("{CONFIG_PREFIX}{}/signing-key.pem", scope.path()),
            Key::Org(org) => format!("{CONFIG_PREFIX}_orgs/{org}.json"),
            Key::Tombstone { arch, file } => {
                format!("{CONFIG_PREFIX}{}/deleted/{file}.json", arch.path())
            }
            Key::RepoSettings(repo) => format!("{CONFIG_PREFIX}{}/repo.json", repo.path()),
            Key::IndexState(root) => format!("{CONFIG_PREFIX}{}/state.json", root.path()),
            Key::IndexMarker(root) => format!("{CONFIG_PREFIX}{}/index.json", root.path()),
            Key::Chunk { root, name } => {
                format!("{CONFIG_PREFIX}{}/chunks/{name}.json", root.path())
            }
            Key::ChunkSegment { root, name } => {
                format!("{CONFIG_PREFIX}{}/chunks/{name}.deflate", root.path())
            }
            Key::Pending { root, id } => {
                format!("{CONFIG_PREFIX}{}/pending/{id}.json", root.path())
            }
            Key::Token { level, hash } => {
                format!("{}{hash}.json", Key::tokens_prefix(level.as_ref()))
            }
        }
    }

    /// The tree the object lives in.
    pub fn tree(&self) -> Tree {
        match self {
            Key::Package { .. } | Key::Index(_) | Key::PublicKey { .. } => Tree::Public,
            _ => Tree::Private,
        }
    }

    /// The prefix under which [`Key::Pending`] objects of `root` live.
    pub fn pending_prefix(root: &RootId) -> String {
        format!("{CONFIG_PREFIX}{}/pending/", root.path())
    }

    /// The tokens folder of a level (`None`: the server-wide admin level).
    /// `tokens` is a reserved org name, so the admin folder cannot collide with an org's.
    pub fn tokens_prefix(level: Option<&Scope>) -> String {
        match level {
            None => format!("{CONFIG_PREFIX}tokens/"),
            Some(scope) => format!("{CONFIG_PREFIX}{}/tokens/", scope.path()),
        }
    }

    /// The root of a [`Key::Chunk`] or [`Key::ChunkSegment`] path, if `path` is one.
    pub fn parse_chunk(path: &str) -> Option<RootId> {
        let rest = path.strip_prefix(CONFIG_PREFIX)?;
        let (root_path, name) = rest.split_once("/chunks/")?;
        let root = RootId::parse_path(root_path)?;
        let stem = name
            .strip_suffix(".json")
            .or_else(|| name.strip_suffix(".deflate"))?;
        let name = Segment::parse("chunk", stem).ok()?;
        let key = Key::Chunk {
            root: root.clone(),
            name: name.clone(),
        };
        let segment = Key::ChunkSegment {
            root: root.clone(),
            name,
        };
        (key.path() == path || segment.path() == path).then_some(root)
    }

    /// The repo arch and file name of a [`Key::Tombstone`] path, if `path` is one.
    pub fn parse_tombstone(path: &str) -> Option<(RepoArch, Segment)> {
        let rest = path.strip_prefix(CONFIG_PREFIX)?;
        let (arch_path, file) = rest.split_once("/deleted/")?;
        let file = Segment::parse("file name", file.strip_suffix(".json")?).ok()?;
        let parts: Vec<&str> = arch_path.split('/').collect();
        let [org, distro, version, repo, arch] = parts.as_slice() else {
            return None;
        };
        let repo = RepoId::parse(org, distro, version, repo).ok()?;
        let arch = repo.arch(Arch::parse(arch).ok()?);
        let key = Key::Tombstone {
            arch: arch.clone(),
            file: file.clone(),
        };
        (key.path() == path).then_some((arch, file))
    }

    /// The prefix of the organization records.
    pub fn orgs_prefix() -> String {
        format!("{CONFIG_PREFIX}_orgs/")
    }

    /// The prefix of the tombstones of `arch`.
    pub fn tombstone_prefix(arch: &RepoArch) -> String {
        format!("{CONFIG_PREFIX}{}/deleted/", arch.path())
    }

    /// The prefix of the public folder of `arch`.
    pub fn arch_public_prefix(arch: &RepoArch) -> String {
        format!("{STATIC_PREFIX}{}/", arch.path())
    }

    /// The prefix of a repository's public arch folders.
    pub fn repo_public_prefix(repo: &RepoId) -> String {
        format!("{STATIC_PREFIX}{}/", repo.path())
    }

    /// The prefix of a repository's private folder.
    pub fn repo_private_prefix(repo: &RepoId) -> String {
        format!("{CONFIG_PREFIX}{}/", repo.path())
    }

    /// The prefix of an organization's private tree.
    pub fn org_private_prefix(org: &Org) -> String {
        format!("{CONFIG_PREFIX}{org}/")
    }

    /// The prefix of an organization's public tree.
    pub fn org_public_prefix(org: &Org) -> String {
        format!("{STATIC_PREFIX}{org}/")
    }

    /// `Content-Type` for serving the object.
    pub fn content_type(&self) -> &'static str {
        content_type_for(&self.path())
    }

    /// `Cache-Control` for serving the object: packages never change, indexes do.
    pub fn cache_control(&self) -> &'static str {
        use crate::cache_rules::ObjectKind;
        // The kind comes from what the key is, not from its suffix.
        let kind = match self {
            Key::Package { .. } => ObjectKind::Package,
            Key::Index(_) => ObjectKind::SignedIndex,
            Key::PublicKey { .. } => ObjectKind::PublicKey,
            // Private objects are never served; what they carry does not matter.
            _ => return cache_control_for(&self.path()),
        };
        kind.cache_control()
    }
}

/// Cache policy for packages: immutable once published.
pub const CACHE_IMMUTABLE: &str = crate::cache_rules::CacheClass::Immutable.cache_control();
/// Cache policy for indexes: short, so new packages show up quickly.
pub const CACHE_INDEX: &str = crate::cache_rules::CacheClass::Index.cache_control();
/// Cache policy for files of no known kind.
pub const CACHE_DEFAULT: &str = "public, max-age=300";

/// `Content-Type` for a public object, from its file name.
pub fn content_type_for(path: &str) -> &'static str {
    if path.ends_with(".apk") {
        "application/vnd.apk"
    } else if path.ends_with(".tar.gz") {
        "application/gzip"
    } else if path.ends_with(".rsa.pub") || path.ends_with(".pem") {
        "application/x-pem-file"
    } else if path.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

/// `Cache-Control` for a public object known only by its path (what `packages serve`
/// and a CDN see): its kind from [`crate::cache_rules::ObjectKind::for_public_path`].
pub fn cache_control_for(path: &str) -> &'static str {
    crate::cache_rules::ObjectKind::for_public_path(path)
        .map_or(CACHE_DEFAULT, crate::cache_rules::ObjectKind::cache_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> RepoId {
        RepoId::parse("acme", "alpine", "v3.20", "main").unwrap()
    }

    #[test]
    fn builds_keys() {
        let arch = repo().arch(Arch::parse("x86_64").unwrap());
        let file = Segment::parse("file name", "hello-1.0+dfsg~1-r0.apk").unwrap();
        assert_eq!(
            Key::Package {
                arch: arch.clone(),
                file
            }
            .path(),
            "static/acme/alpine/v3.20/main/x86_64/hello-1.0+dfsg~1-r0.apk"
        );
        assert_eq!(
            Key::Index(arch.clone()).path(),
            "static/acme/alpine/v3.20/main/x86_64/APKINDEX.tar.gz"
        );
        assert_eq!(
            Key::IndexState(arch.into()).path(),
            "config/acme/alpine/v3.20/main/x86_64/state.json"
        );
        let scope = Scope::new(
            Org::parse("acme").unwrap(),
            Some(Distro::Alpine),
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            Key::PrivateKey(scope).path(),
            "config/acme/alpine/signing-key.pem"
        );
    }

    #[test]
    fn scope_ancestry_is_most_specific_first() {
        let chain: Vec<String> = repo()
            .scope()
            .ancestry()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            chain,
            [
                "acme/alpine/v3.20/main",
                "acme/alpine/v3.20",
                "acme/alpine",
                "acme"
            ]
        );
    }

    #[test]
    fn rejects_unsafe_segments() {
        for bad in [
            "", "..", ".hidden", "a/b", "a\\b", "a\u{0}b", "a\nb", "x..y", "%2e%2e", " a",
        ] {
            assert!(Segment::parse("repo", bad).is_err(), "{bad:?}");
        }
        assert!(Segment::parse("repo", &"a".repeat(129)).is_err());
        Segment::parse("file name", "gcc-13.2.1_git20231014+x~1-r0.apk").unwrap();
        Segment::parse("file name", "Édge-1.0-r0.apk").unwrap();
    }

    #[test]
    fn names_are_lowercase_ascii() {
        for good in [
            "edge",
            "v3.20",
            "latest-stable",
            "3.21",
            "main",
            "c++",
            "a_b",
            "x",
        ] {
            Segment::parse("version", good).unwrap();
            Segment::parse("repo", good).unwrap();
        }
        Org::parse("acme+labs").unwrap();
        Segment::parse("version", &"a".repeat(MAX_NAME_LEN)).unwrap();
        // Look-alikes: Cyrillic `е`, fullwidth letters, spaces, upper case.
        for bad in [
            "\u{435}dge",
            "ｅｄｇｅ",
            "édge",
            "ed ge",
            "edge ",
            "Edge",
            "EDGE",
            "-edge",
            "_edge",
            "+edge",
            ".edge",
            "v3..20",
            "a\u{200b}b",
            "main.json",
            "signing-key.pem",
            "acme-1.rsa.pub",
        ] {
            for kind in ["version", "repo"] {
                let err = Segment::parse(kind, bad).unwrap_err();
                assert!(!err.reason.is_empty(), "{kind} {bad:?}");
            }
            assert!(Org::parse(bad).is_err(), "org {bad:?}");
        }
        let err = Segment::parse("version", "Edge").unwrap_err().to_string();
        assert!(
            err.contains("lowercase ASCII") && err.contains("64"),
            "{err}"
        );
        assert!(Segment::parse("repo", &"a".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(Org::parse(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(Distro::parse("Alpine").is_err());
    }

    #[test]
    fn every_key_fits_every_store() {
        let name = |c: &str, n| c.repeat(n);
        let org = Org::parse(&name("o", MAX_NAME_LEN)).unwrap();
        let repo = RepoId::parse(
            org.as_str(),
            "alpine",
            &name("v", MAX_NAME_LEN),
            &name("r", MAX_NAME_LEN),
        )
        .unwrap();
        let arch = repo.arch(Arch::parse(&name("a", MAX_ARCH_LEN)).unwrap());
        let file = Segment::parse("file name", &name("f", 255)).unwrap();
        let short = Segment::parse("id", &name("0", 64)).unwrap();
        let scope = repo.scope();
        let keys = [
            Key::Package {
                arch: arch.clone(),
                file: file.clone(),
            },
            Key::Index(arch.clone()),
            Key::PublicKey {
                scope: scope.clone(),
                name: short.clone(),
            },
            Key::PrivateKey(scope.clone()),
            Key::Org(org),
            Key::RepoSettings(repo.clone()),
            Key::IndexState(RootId::Arch(arch.clone())),
            Key::IndexState(RootId::Settings(repo.clone())),
            Key::Tombstone {
                arch: arch.clone(),
                file,
            },
            Key::IndexMarker(RootId::Arch(arch.clone())),
            Key::Chunk {
                root: RootId::Arch(arch.clone()),
                name: short.clone(),
            },
            Key::ChunkSegment {
                root: RootId::Arch(arch.clone()),
                name: short.clone(),
            },
            Key::Pending {
                root: RootId::Arch(arch),
                id: short.clone(),
            },
            Key::Token {
                level: Some(scope),
                hash: short,
            },
        ];
        let longest = keys.iter().map(|k| k.path().len()).max().unwrap();
        assert!(longest <= MAX_KEY_BYTES, "a key of {longest} bytes");
        for key in &keys {
            // The folders named after org, version, repo and arch fit any
            // file system (255-byte names); file names are bounded on their own.
            for segment in key.path().split('/').take(6) {
                assert!(segment.len() <= 255, "{}", key.path());
            }
        }
    }

    #[test]
    fn validates_org_and_arch() {
        assert!(Org::parse("Acme").is_err());
        assert!(Org::parse("v1").is_err());
        assert!(Org::parse("health").is_err());
        Org::parse("acme-corp.io").unwrap();
        assert!(Arch::parse("noarch").is_err());
        assert!(Arch::parse("x86-64").is_err());
        Arch::parse("aarch64").unwrap();
        // Every arch of the fixtures and of Alpine.
        for arch in [
            "x86_64",
            "x86",
            "aarch64",
            "armhf",
            "armv7",
            "ppc64le",
            "s390x",
            "riscv64",
            "loongarch64",
        ] {
            Arch::parse(arch).unwrap();
        }
        for bad in [
            "X86_64",
            "_x86",
            "\u{430}arch64",
            &"a".repeat(MAX_ARCH_LEN + 1),
        ] {
            let err = Arch::parse(bad).unwrap_err();
            assert!(err.to_string().contains("lowercase ASCII"), "{err}");
        }
    }
}
