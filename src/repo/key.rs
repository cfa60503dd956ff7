//! Every object we store ([`Key`]): its path in the public or private tree,
//! and the headers a public object is served with.

use super::{
    Arch, CONFIG_PREFIX, Distro, Org, RepoArch, RepoId, RootId, STATIC_PREFIX, Scope, Segment,
    SuiteId,
};

/// Which tree, and so which store, an object belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    /// `static/`: served to clients.
    Public,
    /// `config/`: never served.
    Private,
}

/// A file under a Debian-style suite's `dists/<suite>/` folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DistsFile {
    /// The clearsigned `Release` (what apt reads first).
    InRelease,
    /// The unsigned `Release`.
    Release,
    /// The detached signature of `Release`.
    ReleaseGpg,
    /// Every public key signing the suite, for apt's `signed-by=`:
    /// `archive-keyring.gpg` (binary) or `archive-keyring.asc` (armored).
    Keyring {
        /// Whether armored (`.asc`).
        armored: bool,
    },
    /// `<component>/binary-<arch>/Packages[.<ext>]`.
    Packages {
        /// The component (repo).
        component: Segment,
        /// The arch.
        arch: Arch,
        /// `None`, `Some("gz")` or `Some("xz")`.
        compression: Option<&'static str>,
    },
    /// `<component>/binary-<arch>/Release`.
    ArchRelease {
        /// The component (repo).
        component: Segment,
        /// The arch.
        arch: Arch,
    },
    /// `<component>/binary-<arch>/by-hash/SHA256/<hex>`: an index file by content.
    ByHash {
        /// The component (repo).
        component: Segment,
        /// The arch.
        arch: Arch,
        /// Lowercase hex SHA-256 of the content.
        sha256: Segment,
    },
}

impl DistsFile {
    /// The path below `dists/<suite>/`.
    pub fn path(&self) -> String {
        match self {
            DistsFile::InRelease => "InRelease".to_owned(),
            DistsFile::Release => "Release".to_owned(),
            DistsFile::ReleaseGpg => "Release.gpg".to_owned(),
            DistsFile::Keyring { armored: true } => "archive-keyring.asc".to_owned(),
            DistsFile::Keyring { armored: false } => "archive-keyring.gpg".to_owned(),
            DistsFile::Packages {
                component,
                arch,
                compression,
            } => match compression {
                Some(ext) => format!("{component}/binary-{arch}/Packages.{ext}"),
                None => format!("{component}/binary-{arch}/Packages"),
            },
            DistsFile::ArchRelease { component, arch } => {
                format!("{component}/binary-{arch}/Release")
            }
            DistsFile::ByHash {
                component,
                arch,
                sha256,
            } => format!("{component}/binary-{arch}/by-hash/SHA256/{sha256}"),
        }
    }
}

/// The pool folder prefix of a source package, by Debian's rule: its first
/// letter, or `lib` and the next letter for sources starting with `lib`.
pub fn pool_prefix(source: &str) -> &str {
    let end = if source.len() > 3 && source.starts_with("lib") {
        4
    } else {
        1
    };
    source.get(..end).unwrap_or(source)
}

/// The public folder of an RPM repository, below the tree prefix: Fedora's
/// `<org>/fedora/linux/releases/<version>/<repo>`, or
/// `<org>/<distro>/<version>/<repo>` for other RPM distros.
pub fn rpm_repo_dir(repo: &RepoId) -> String {
    if repo.distro.as_str() == "fedora" {
        format!(
            "{}/fedora/linux/releases/{}/{}",
            repo.org, repo.version, repo.repo
        )
    } else {
        repo.path()
    }
}

/// The id of an RPM repository in dnf's configuration and in the names of
/// its `.repo` file and key: `<org>-<distro>-<version>-<repo>`.
pub fn rpm_repo_id(repo: &RepoId) -> String {
    format!(
        "{}-{}-{}-{}",
        repo.org, repo.distro, repo.version, repo.repo
    )
}

/// The public folder of one arch of an RPM repository (holding `Packages/`
/// and `repodata/`), below the tree prefix: Fedora's
/// `<repo dir>/<arch>/os`, or `<repo dir>/<arch>` for other RPM distros.
pub fn rpm_arch_dir(arch: &RepoArch) -> String {
    rpm_arch_dir_named(&arch.repo, arch.arch.as_str())
}

/// [`rpm_arch_dir`] for an arch given by name (`$basearch` in a `.repo` file).
pub fn rpm_arch_dir_named(repo: &RepoId, arch: &str) -> String {
    let dir = rpm_repo_dir(repo);
    if repo.distro.as_str() == "fedora" {
        format!("{dir}/{arch}/os")
    } else {
        format!("{dir}/{arch}")
    }
}

/// Every object we store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// A `.deb` in a Debian-style distro's pool, shared by its suites:
    /// `pool/<component>/<prefix>/<source>/<file>`.
    Pool {
        /// The organization.
        org: Org,
        /// The distro.
        distro: Distro,
        /// The component (repo) it was uploaded to.
        component: Segment,
        /// The source package name.
        source: Segment,
        /// The file name (`<package>_<version>_<arch>.deb`).
        file: Segment,
    },
    /// What a pool file holds (its SHA-256 and the suite it was first
    /// published to), in the private tree.
    PoolRecord {
        /// The organization.
        org: Org,
        /// The distro.
        distro: Distro,
        /// The component.
        component: Segment,
        /// The source package name.
        source: Segment,
        /// The file name.
        file: Segment,
    },
    /// A file of a suite's (or a suite alias's) `dists/` folder.
    Dists {
        /// The suite (or the alias, named as a suite).
        suite: SuiteId,
        /// Which file.
        file: DistsFile,
    },
    /// The aliases of a distro (`stable -> bookworm`, `3.20 -> v3.20`):
    /// Debian suite aliases and the version aliases of other families.
    SuiteAliases {
        /// The organization.
        org: Org,
        /// The distro.
        distro: Distro,
    },
    /// What a version alias's copy of one repo arch holds (the alias's
    /// [`RepoArch`]: its version is the alias): the target version, and the
    /// source ETag of each file copied (`src/publish/version_alias.rs`).
    AliasCopies(RepoArch),
    /// When `gc` first saw each file of a version alias's repo arch that its
    /// target no longer has (the grace period counts from then).
    AliasUnnamed(RepoArch),
    /// Every chunk part of a root, one after another (formats whose root
    /// file holds no parts: [`crate::formats::Format::caches_parts`]).
    PartsCache(RootId),
    /// An RPM package file of one repo arch: `<arch dir>/Packages/<first
    /// letter>/<file>` ([`rpm_arch_dir`]).
    RpmPackage {
        /// Where.
        arch: RepoArch,
        /// Its file name (`<name>-<version>-<release>.<arch>.rpm`).
        file: Segment,
    },
    /// A file of one RPM repo arch's `repodata/` folder (`repomd.xml`, its
    /// signature and key, content-named metadata).
    Repodata {
        /// Where.
        arch: RepoArch,
        /// The file name.
        file: Segment,
    },
    /// When `gc` first saw each `repodata/` file of an RPM repo arch that
    /// `repomd.xml` no longer names (the grace period counts from then).
    RepodataUnnamed(RepoArch),
    /// The `.repo` file of an RPM repository, for every arch through
    /// `$basearch`: `<repo dir>/<org>-<distro>-<version>-<repo>.repo`.
    RepoFile(RepoId),
    /// The armored public key(s) signing an RPM repository, for `rpm
    /// --import` and the `.repo` file's `gpgkey=`:
    /// `<repo dir>/RPM-GPG-KEY-<org>-<distro>-<version>-<repo>.asc`.
    RpmKey(RepoId),
    /// A browse page (`index.html`) of a public folder, written by
    /// [`crate::browse`]: `<dir>/index.html`, `dir` relative to the public
    /// tree and built there from typed ids.
    Page {
        /// The folder, without leading or trailing `/`.
        dir: String,
    },
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
    /// An organization's quotas, every level in one object
    /// (`config/<org>/_quotas.json`; distro names never start with `_`).
    Quotas(Org),
    /// A repository's settings (configured arches).
    RepoSettings(RepoId),
    /// A repository's retention rule.
    Retention(RepoId),
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
            Key::Quotas(org) => format!("{CONFIG_PREFIX}{org}/_quotas.json"),
            Key::Tombstone { arch, file } => {
                format!("{CONFIG_PREFIX}{}/deleted/{file}.json", arch.path())
            }
            Key::RepoSettings(repo) => format!("{CONFIG_PREFIX}{}/repo.json", repo.path()),
            Key::Retention(repo) => format!("{CONFIG_PREFIX}{}/retention.json", repo.path()),
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
            Key::Pool {
                org,
                distro,
                component,
                source,
                file,
            } => format!(
                "{STATIC_PREFIX}{org}/{distro}/pool/{component}/{}/{source}/{file}",
                pool_prefix(source.as_str())
            ),
            Key::PoolRecord {
                org,
                distro,
                component,
                source,
                file,
            } => format!("{CONFIG_PREFIX}{org}/{distro}/_pool/{component}/{source}/{file}.json"),
            Key::Dists { suite, file } => format!(
                "{STATIC_PREFIX}{}/dists/{}/{}",
                suite.distro_path(),
                suite.suite,
                file.path()
            ),
            Key::SuiteAliases { org, distro } => {
                format!("{CONFIG_PREFIX}{org}/{distro}/_aliases.json")
            }
            Key::PartsCache(root) => format!("{CONFIG_PREFIX}{}/parts.bin", root.path()),
            Key::AliasCopies(arch) => {
                format!("{CONFIG_PREFIX}{}/alias-copies.json", arch.path())
            }
            Key::AliasUnnamed(arch) => {
                format!("{CONFIG_PREFIX}{}/alias-unnamed.json", arch.path())
            }
            Key::RpmPackage { arch, file } => {
                let letter: String = file
                    .as_str()
                    .chars()
                    .take(1)
                    .flat_map(char::to_lowercase)
                    .collect();
                format!(
                    "{STATIC_PREFIX}{}/Packages/{letter}/{file}",
                    rpm_arch_dir(arch)
                )
            }
            Key::Repodata { arch, file } => {
                format!("{STATIC_PREFIX}{}/repodata/{file}", rpm_arch_dir(arch))
            }
            Key::RepodataUnnamed(arch) => {
                format!("{CONFIG_PREFIX}{}/repodata-unnamed.json", arch.path())
            }
            Key::RepoFile(repo) => {
                format!(
                    "{STATIC_PREFIX}{}/{}.repo",
                    rpm_repo_dir(repo),
                    rpm_repo_id(repo)
                )
            }
            Key::RpmKey(repo) => format!(
                "{STATIC_PREFIX}{}/RPM-GPG-KEY-{}.asc",
                rpm_repo_dir(repo),
                rpm_repo_id(repo)
            ),
            Key::Page { dir } => format!("{STATIC_PREFIX}{dir}/index.html"),
        }
    }

    /// The tree the object lives in.
    pub fn tree(&self) -> Tree {
        match self {
            Key::Package { .. }
            | Key::Index(_)
            | Key::PublicKey { .. }
            | Key::Pool { .. }
            | Key::Dists { .. }
            | Key::RpmPackage { .. }
            | Key::Repodata { .. }
            | Key::RepoFile(_)
            | Key::RpmKey(_)
            | Key::Page { .. } => Tree::Public,
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

    /// The repository of a [`Key::Retention`] path, if `path` is one.
    pub fn parse_retention(path: &str) -> Option<RepoId> {
        let rest = path.strip_prefix(CONFIG_PREFIX)?;
        let parts: Vec<&str> = rest.strip_suffix("/retention.json")?.split('/').collect();
        let [org, distro, version, repo] = parts.as_slice() else {
            return None;
        };
        RepoId::parse(org, distro, version, repo).ok()
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
            Key::Pool { .. } | Key::RpmPackage { .. } => ObjectKind::Package,
            Key::Repodata { file, .. } => {
                if file.as_str().starts_with("repomd.xml") {
                    ObjectKind::SignaturePair
                } else {
                    ObjectKind::ContentNamed
                }
            }
            Key::RepoFile(_) => ObjectKind::RepoFile,
            Key::RpmKey(_) => ObjectKind::PublicKey,
            Key::Page { .. } => ObjectKind::Page,
            Key::Dists { file, .. } => match file {
                DistsFile::ByHash { .. } => ObjectKind::ContentNamed,
                DistsFile::Keyring { .. } => ObjectKind::PublicKey,
                DistsFile::Release | DistsFile::ReleaseGpg | DistsFile::ArchRelease { .. } => {
                    ObjectKind::SignaturePair
                }
                _ => ObjectKind::SignedIndex,
            },
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
    } else if path.ends_with(".rpm") {
        "application/x-rpm"
    } else if path.ends_with(".xml") {
        "application/xml"
    } else if path.ends_with(".repo") {
        "text/plain; charset=utf-8"
    } else if path.ends_with(".deb") {
        "application/vnd.debian.binary-package"
    } else if path.ends_with(".asc") || path.ends_with(".gpg") {
        "application/pgp-keys"
    } else if path.ends_with("/InRelease")
        || path.ends_with("/Release")
        || path.ends_with("/Packages")
    {
        "text/plain; charset=utf-8"
    } else if path.ends_with(".html") {
        "text/html; charset=utf-8"
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
