//! The use cases shared by the CLI and the HTTP service: organizations,
//! upload, remove, list, rebuild and garbage collection.
//!
//! Nothing is written before a package has passed every check, and a call
//! returns only once the package is in the signed index clients fetch.

pub mod queries;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::formats::apk::{ApkError, ApkLimits, ApkPackage, ApkRecord, read_package};
use crate::index::{self, Change, IndexError, PendingChange};
use crate::keys::{self, KeyError};
use crate::repo::{Arch, Key, NameError, Org, RepoArch, RepoId, Segment, Tree};
use crate::storage::{Payload, PutMode, StorageError};
use crate::stores::Stores;

mod aliases;
mod batch;
pub mod commit;
pub mod deb;
mod deb_gc;
mod gc;
mod orgs;
pub mod quota;
mod rebuild;
mod remove;
pub mod repo_index;
mod repos;
mod retention;
mod retention_version;
pub mod rpm;
mod rpm_gc;
mod rpm_manage;
mod settings;
mod settings_root;
mod signatures;
mod upload;
mod version_alias;
mod version_alias_gc;

/// Default cap on the number of arches a repository may serve (each one
/// gets a copy of every noarch package).
pub const DEFAULT_MAX_ARCHES: usize = 64;

pub use aliases::Aliases;
pub use batch::Expect;
pub use retention::{RetentionOutcome, RetentionRemoval, RetentionRule};

/// Default time a removed package's file stays downloadable.
pub const DEFAULT_DELETE_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Why a use case failed. Client mistakes and server failures are told apart
/// by [`PublishError::is_client_error`].
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The package file was refused.
    #[error("{file}: {reason}")]
    Package {
        /// The file as the user named it.
        file: String,
        /// Why.
        reason: ApkError,
    },
    /// A name is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The org does not exist.
    #[error("organization `{0}` does not exist (create it with `packages org create {0}`)")]
    OrgNotFound(String),
    /// The org exists already.
    #[error("organization `{0}` already exists")]
    OrgExists(String),
    /// The org still has packages.
    #[error("organization `{0}` is not empty (use --force to delete it with everything in it)")]
    OrgNotEmpty(String),
    /// The package is for another arch.
    #[error("{file}: package is for `{package}`, not `{target}`")]
    ArchMismatch {
        /// The file.
        file: String,
        /// Its arch.
        package: String,
        /// The arch asked for.
        target: String,
    },
    /// A noarch package with nowhere to go.
    #[error("{file}: noarch package and the repo has no arches yet: name them with --arch")]
    NoArchTargets {
        /// The file.
        file: String,
    },
    /// Same file name, different bytes.
    #[error(
        "{file}: {arch} already has a different package with this name and version (packages are immutable: remove it first)"
    )]
    Conflict {
        /// The file name.
        file: String,
        /// Where.
        arch: String,
    },
    /// A removed package's name is reused too soon.
    #[error(
        "{file}: was removed from {arch} less than the grace period ago; different bytes under this name are refused until {until} (Unix time)"
    )]
    RecentlyRemoved {
        /// The file name.
        file: String,
        /// Where.
        arch: String,
        /// When the name frees up.
        until: u64,
    },
    /// Adding the arches would exceed the cap.
    #[error(
        "{repo}: a repository serves at most {max} arches (noarch packages are copied into each); remove unused arches or raise the limit"
    )]
    TooManyArches {
        /// The repository.
        repo: String,
        /// The cap.
        max: usize,
    },
    /// Nothing matched.
    #[error("{0}")]
    NotFound(String),
    /// The `.deb` file was refused.
    #[error("{file}: {reason}")]
    Deb {
        /// The file as the user named it.
        file: String,
        /// Why.
        reason: crate::formats::deb::DebError,
    },
    /// The `.rpm` file was refused.
    #[error("{file}: {reason}")]
    Rpm {
        /// The file as the user named it.
        file: String,
        /// Why.
        reason: crate::formats::rpm::RpmError,
    },
    /// The pool already holds different bytes under this name.
    #[error(
        "{file}: the pool already holds a different file under this name, published to suite `{suite}` (pool files are shared by every suite of the distro and immutable: give the package a new version)"
    )]
    PoolConflict {
        /// The pool path.
        file: String,
        /// The suite that published the other bytes first.
        suite: String,
    },
    /// An alias cannot be set this way.
    #[error("{0}")]
    InvalidAlias(String),
    /// An upload would take a quota over its limit; nothing was stored.
    #[error(
        "{file}: quota_exceeded: {level} has a limit of {limit} {what}; {used} {what} used, this upload adds {adding}"
    )]
    QuotaExceeded {
        /// The file as the user named it.
        file: String,
        /// The level whose quota it is (`acme/alpine/edge/main`).
        level: String,
        /// `bytes` or `packages`.
        what: &'static str,
        /// What the level uses (published, and reserved by uploads of this process).
        used: u64,
        /// What the upload adds.
        adding: u64,
        /// The limit.
        limit: u64,
    },
    /// A quota change is malformed.
    #[error("{0}")]
    InvalidQuota(String),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A key problem.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl PublishError {
    /// Whether the caller is at fault (HTTP 4xx) rather than the server.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            PublishError::Index(_)
                | PublishError::Storage(_)
                | PublishError::Key(KeyError::Storage(_))
        ) && !matches!(
            self,
            PublishError::Package {
                reason: ApkError::Io(_),
                ..
            } | PublishError::Deb {
                reason: crate::formats::deb::DebError::Io(_),
                ..
            } | PublishError::Rpm {
                reason: crate::formats::rpm::RpmError::Io(_),
                ..
            }
        )
    }
}

/// An organization's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRecord {
    /// The name.
    pub name: String,
    /// Creation time, Unix seconds.
    pub created: u64,
}

/// A repository's settings: the arches it serves, and its noarch packages
/// (copied into every arch, including ones added later).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoSettings {
    /// Arches served.
    pub arches: BTreeSet<String>,
    /// Noarch packages, by file name (arch field `noarch`).
    #[serde(default)]
    pub noarch: BTreeMap<String, ApkRecord>,
}

/// A removed package kept for its grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// Removal time, Unix seconds.
    pub removed: u64,
    /// SHA-256 of the removed file.
    pub sha256: String,
}

/// One upload.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Where to.
    pub repo: RepoId,
    /// The arch asked for (must match the package, unless it is noarch).
    pub arch: Option<Arch>,
    /// More arches for a noarch package.
    pub extra_arches: Vec<Arch>,
    /// The package on local disk.
    pub path: PathBuf,
    /// How the user named the file, for messages.
    pub display_name: String,
}

/// What an upload did in one arch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    /// The arch.
    pub arch: String,
    /// The package's file name (`<name>-<version>.apk`, `<name>_<version>_<arch>.deb`).
    pub file: String,
    /// The index record, as published.
    pub record: ApkRecord,
    /// Whether the identical package was published (listed) already: false
    /// for a new package and for one published again after a removal.
    pub unchanged: bool,
}

/// A package as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// The arch it is indexed in.
    pub arch: String,
    /// The file name.
    pub file: String,
    /// The record.
    pub record: ApkRecord,
}

/// The publishing use cases over a pair of stores.
#[derive(Debug, Clone)]
pub struct Publisher {
    stores: Stores,
    limits: ApkLimits,
    delete_grace: Duration,
    orphan_grace: Duration,
    max_arches: usize,
    /// Publish rounds shared by this publisher's concurrent writers (and its clones').
    commits: std::sync::Arc<commit::CommitGate<RepoArch, index::Reindexed>>,
    /// The same for Debian-style suites.
    suite_commits: std::sync::Arc<commit::CommitGate<crate::repo::SuiteId, index::Reindexed>>,
    /// The URL the public tree is served at (RPM `.repo` files point there).
    public_url: Option<String>,
    /// Whether uploaded RPMs are signed with the repository's key.
    sign_rpms: bool,
    /// Quota reservations of this publisher's uploads (and its clones').
    quota_ledger: std::sync::Arc<quota::Ledger>,
    /// Who the changes are recorded as in the audit log ([`crate::audit`]).
    actor: crate::audit::Actor,
    /// Days `gc` keeps audit records (`None`: for good).
    audit_keep_days: Option<u64>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl Publisher {
    /// A publisher with default limits.
    pub fn new(stores: Stores) -> Self {
        Self {
            stores,
            limits: ApkLimits::default(),
            delete_grace: DEFAULT_DELETE_GRACE,
            orphan_grace: index::PENDING_GRACE,
            max_arches: DEFAULT_MAX_ARCHES,
            commits: Default::default(),
            suite_commits: Default::default(),
            public_url: std::env::var(rpm::PUBLIC_URL_ENV)
                .ok()
                .filter(|u| !u.trim().is_empty()),
            sign_rpms: std::env::var(rpm::RPM_SIGN_ENV).map_or(true, |v| v.trim() != "0"),
            quota_ledger: Default::default(),
            actor: crate::audit::Actor::default(),
            audit_keep_days: None,
        }
    }

    /// Sets how many days `gc` keeps audit records (`None`, the default:
    /// for good). Fewer than [`crate::audit::expire::MIN_KEEP_DAYS`] is taken as that.
    pub fn with_audit_keep_days(mut self, days: Option<u64>) -> Self {
        self.audit_keep_days = days.map(|d| d.max(crate::audit::expire::MIN_KEEP_DAYS));
        self
    }

    /// Sets the URL the public tree is served at (default: the
    /// `PACKAGES_PUBLIC_URL` environment variable): RPM repositories
    /// publish a `.repo` file pointing there.
    pub fn with_public_url(mut self, url: Option<String>) -> Self {
        self.public_url = url;
        self
    }

    /// Sets whether uploaded RPMs are signed with the repository's OpenPGP
    /// key (default: yes, unless `PACKAGES_RPM_SIGN=0`).
    pub fn with_rpm_signing(mut self, sign: bool) -> Self {
        self.sign_rpms = sign;
        self
    }

    /// Sets the package limits.
    pub fn with_limits(mut self, limits: ApkLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets how long removed files stay downloadable.
    pub fn with_delete_grace(mut self, grace: Duration) -> Self {
        self.delete_grace = grace;
        self
    }

    /// Sets how old an unreferenced record chunk must be before `gc` deletes
    /// it (default [`index::PENDING_GRACE`]; shorter only in tests, where no
    /// other writer runs).
    pub fn with_orphan_grace(mut self, grace: Duration) -> Self {
        self.orphan_grace = grace;
        self
    }

    /// Sets the cap on arches per repository (default [`DEFAULT_MAX_ARCHES`]).
    pub fn with_max_arches(mut self, max: usize) -> Self {
        self.max_arches = max;
        self
    }

    /// Sets who this publisher's changes are recorded as in the audit log
    /// (default: the CLI's local user, [`crate::audit::Actor::cli`]).
    pub fn with_actor(mut self, actor: crate::audit::Actor) -> Self {
        self.actor = actor;
        self
    }

    /// Who this publisher's changes are recorded as.
    pub fn actor(&self) -> &crate::audit::Actor {
        &self.actor
    }

    /// The stores.
    pub fn stores(&self) -> &Stores {
        &self.stores
    }
}
