//! Where the trees live and how to reach them, and the limits the server
//! puts on clients: read once from flags and environment.

use std::time::Duration;

use crate::storage::{Consistency, S3Settings, Storage, StorageError, StorageUrl};
use crate::stores::{STORE_FORMAT, StoreMarker, StoreState, Stores};

/// The environment variable that fixes the stores' conditional-write contract
/// instead of probing it: `probe` (the default), `conditional` or `last-writer-wins`.
pub const CONSISTENCY_ENV: &str = "PACKAGES_CONSISTENCY";

/// Store locations, validated.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The public tree's store (and the private tree's, unless `private` is set).
    pub storage: StorageUrl,
    /// A separate store for the private tree.
    pub private: Option<StorageUrl>,
    /// S3 overrides.
    pub s3: S3Settings,
    /// The conditional-write contract of both stores, when configured
    /// ([`CONSISTENCY_ENV`]); `None`: known from the backend or probed.
    pub consistency: Option<Consistency>,
}

impl StoreConfig {
    /// Parses the URLs given on the command line or in the environment, and
    /// reads [`CONSISTENCY_ENV`].
    pub fn parse(
        storage: Option<&str>,
        private: Option<&str>,
        virtual_hosted: bool,
    ) -> Result<Self, StorageError> {
        let storage = StorageUrl::parse(storage.unwrap_or(StorageUrl::DEFAULT))?;
        let private = private.map(StorageUrl::parse).transpose()?;
        let consistency = parse_consistency(std::env::var(CONSISTENCY_ENV).ok().as_deref())?;
        Ok(Self {
            storage,
            private,
            s3: S3Settings {
                virtual_hosted,
                ..S3Settings::default()
            },
            consistency,
        })
    }

    /// Opens the stores.
    pub async fn open(&self) -> Result<Stores, StorageError> {
        let public = Storage::open(&self.storage, &self.s3)
            .await?
            .with_consistency(self.consistency);
        match &self.private {
            Some(url) if url != &self.storage => {
                let private = Storage::open(url, &self.s3)
                    .await?
                    .with_consistency(self.consistency);
                Ok(Stores::separate(public, private))
            }
            _ => Ok(Stores::shared(public)),
        }
    }
}

/// How a command treats a location that holds no store yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The store must exist: every command but the two below.
    Existing,
    /// Create the store when the location is clearly new (a missing or empty
    /// directory, an empty bucket prefix): `admin init`, `org create`.
    CreateIfNew,
    /// Create the store unless there is one (`packages init`): a location
    /// holding other files is fine too, as it is asked for explicitly.
    Init,
}

/// What [`StoreConfig::open_checked`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A store made on purpose, with its marker.
    Existing(StoreMarker),
    /// A store written by an earlier version (no marker); marked now if the
    /// credentials allow writing.
    Unmarked,
    /// A new store, just created (its marker written).
    Created(StoreMarker),
}

/// Why a store cannot be used, naming it and the fix.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Nothing made by `packages init` at this location.
    #[error("no packages store at {url}: {reason}; create one with `{fix}`")]
    NotInitialized {
        /// The store.
        url: String,
        /// What is there instead.
        reason: String,
        /// The command that creates it.
        fix: String,
    },
    /// The store's layout is newer than this build reads.
    #[error(
        "the store at {url} has format {found}, newer than this build of packages reads ({STORE_FORMAT}): upgrade packages"
    )]
    TooNew {
        /// The store.
        url: String,
        /// Its format.
        found: u32,
    },
    /// One of the common S3 failures ([`crate::storage::problem_code`]), in plain words.
    #[error("store {url}: {message}")]
    Unavailable {
        /// The store.
        url: String,
        /// The `--json` error code (`s3_no_bucket`, ...).
        code: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// Any other failure of the store.
    #[error("store {url}")]
    Storage {
        /// The store.
        url: String,
        /// The failure.
        #[source]
        source: StorageError,
    },
}

impl StoreError {
    /// A short code for `--json` errors.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::NotInitialized { .. } => "store_not_initialized",
            StoreError::TooNew { .. } => "store_too_new",
            StoreError::Unavailable { code, .. } => code,
            StoreError::Storage { source, .. } => match source {
                StorageError::InvalidUrl { .. } => "invalid_storage_url",
                StorageError::InvalidSetting { .. } => "invalid_setting",
                _ => "storage",
            },
        }
    }
}

/// What a local directory holds, before it is opened (opening creates it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocalDir {
    /// Not there.
    Missing,
    /// There, with nothing but a store's own work folders (`.packages-*`).
    Empty,
    /// There, with a private tree (`config/`), or a public tree and nothing else.
    Store,
    /// There, with other files and no private tree.
    Other,
}

fn local_dir(path: &std::path::Path) -> Result<LocalDir, String> {
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LocalDir::Missing),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err("it is a file, not a directory".to_owned());
        }
        Err(e) => return Err(format!("cannot read the directory: {e}")),
    };
    let (mut ours, mut other) = (false, false);
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read the directory: {e}"))?;
        match entry.file_name().to_str() {
            Some("config" | "static") => ours = true,
            Some(n) if n.starts_with(".packages-") => {}
            _ => other = true,
        }
    }
    // A private tree makes it a store whatever else is there (`init` on
    // a directory with other files); the marker check decides the rest.
    let config = path.join("config").is_dir();
    Ok(match (ours, other) {
        _ if config => LocalDir::Store,
        (_, true) => LocalDir::Other,
        (true, false) => LocalDir::Store,
        (false, false) => LocalDir::Empty,
    })
}

impl StoreConfig {
    /// Every store location, public first.
    fn urls(&self) -> impl Iterator<Item = &StorageUrl> {
        std::iter::once(&self.storage).chain(self.private.iter().filter(|p| **p != self.storage))
    }

    /// The store, for messages: `file:///ABSOLUTE/PATH` or
    /// `s3://BUCKET[/PREFIX]`, and the private tree's store when separate.
    pub fn describe(&self) -> String {
        match &self.private {
            Some(private) if private != &self.storage => {
                format!("{} (private tree: {private})", self.storage)
            }
            _ => self.storage.to_string(),
        }
    }

    /// The command that creates this store.
    pub fn init_command(&self) -> String {
        let mut command = format!("packages init --storage {}", self.storage);
        if let Some(private) = self.private.as_ref().filter(|p| **p != self.storage) {
            command.push_str(&format!(" --config-storage {private}"));
        }
        command
    }

    fn not_initialized(&self, reason: impl Into<String>) -> StoreError {
        StoreError::NotInitialized {
            url: self.describe(),
            reason: reason.into(),
            fix: self.init_command(),
        }
    }

    fn storage_error(&self, source: StorageError) -> StoreError {
        if let StorageError::Backend { message, .. } = &source {
            if let Some(code) = crate::storage::problem_code(message) {
                return StoreError::Unavailable {
                    url: self.describe(),
                    code,
                    message: message.clone(),
                };
            }
        }
        StoreError::Storage {
            url: self.describe(),
            source,
        }
    }

    /// Opens the stores as `mode` says: a missing or new location is an
    /// error naming it and the fix (nothing is created), except for
    /// [`OpenMode::CreateIfNew`] on a clearly new location and for
    /// [`OpenMode::Init`], which create the store (write its marker). A
    /// store without marker but with a private tree (an earlier version's)
    /// is used as it is, and marked when the credentials allow.
    pub async fn open_checked(&self, mode: OpenMode) -> Result<(Stores, Opened), StoreError> {
        // The marker lives in the private tree: with two stores, an empty
        // (or not yet created) public tree is a store that has published
        // nothing yet.
        let separate = self.private.as_ref().filter(|p| **p != self.storage);
        for url in self.urls() {
            let StorageUrl::Local(path) = url else {
                continue;
            };
            let holds_marker = separate.is_none_or(|p| p == url);
            let found = local_dir(path)
                .map_err(|reason| self.not_initialized(format!("{}: {reason}", path.display())))?;
            match (found, mode) {
                (LocalDir::Missing | LocalDir::Empty, OpenMode::Existing) if !holds_marker => {}
                (LocalDir::Missing, OpenMode::Existing) => {
                    return Err(self.not_initialized(format!(
                        "the directory {} does not exist",
                        absolute(path)
                    )));
                }
                (LocalDir::Empty, OpenMode::Existing) => {
                    return Err(
                        self.not_initialized(format!("the directory {} is empty", absolute(path)))
                    );
                }
                (LocalDir::Other, OpenMode::CreateIfNew) => {
                    return Err(self.not_initialized(format!(
                        "the directory {} holds other files and no store",
                        absolute(path)
                    )));
                }
                _ => {}
            }
        }
        let stores = self.open().await.map_err(|e| self.storage_error(e))?;
        let state = stores.state().await.map_err(|e| self.storage_error(e))?;
        let opened = match (state, mode) {
            (StoreState::Marked(marker), _) if marker.format > STORE_FORMAT => {
                return Err(StoreError::TooNew {
                    url: self.describe(),
                    found: marker.format,
                });
            }
            (StoreState::Marked(marker), _) => Opened::Existing(marker),
            (StoreState::Unmarked, OpenMode::Init) => {
                let (marker, _) = stores.mark().await.map_err(|e| self.storage_error(e))?;
                Opened::Existing(marker)
            }
            (StoreState::Unmarked, _) => {
                if let Err(e) = stores.mark().await {
                    tracing::debug!(error = %e, "cannot mark an earlier version's store");
                }
                Opened::Unmarked
            }
            (StoreState::Empty, OpenMode::CreateIfNew | OpenMode::Init)
            | (StoreState::PublicOnly, OpenMode::Init) => {
                let (marker, wrote) = stores.mark().await.map_err(|e| self.storage_error(e))?;
                if wrote {
                    Opened::Created(marker)
                } else {
                    Opened::Existing(marker)
                }
            }
            (StoreState::Empty, OpenMode::Existing) => {
                return Err(self.not_initialized(match self.storage {
                    StorageUrl::Local(_) => "the directory holds no store",
                    StorageUrl::S3 { .. } => "nothing under this bucket and prefix",
                }));
            }
            (StoreState::PublicOnly, _) => {
                return Err(self.not_initialized(
                    "it holds a public tree (`static/`) but no private tree (`config/`); if the private tree lives elsewhere, give it with `--config-storage`",
                ));
            }
        };
        Ok((stores, opened))
    }
}

/// `path` made absolute (from the current directory), for messages.
fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

/// Reads a [`CONSISTENCY_ENV`] value: unset, empty or `probe` is `None`.
pub fn parse_consistency(value: Option<&str>) -> Result<Option<Consistency>, StorageError> {
    match value.map(str::trim) {
        None | Some("" | "probe") => Ok(None),
        Some(other) => other
            .parse()
            .map(Some)
            .map_err(|reason| StorageError::InvalidSetting {
                name: CONSISTENCY_ENV,
                value: other.to_owned(),
                reason: format!("{reason}; or `probe` to ask the store"),
            }),
    }
}

/// Default longest time a client may take to send a request's headers.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Default longest wait for the next piece of a request body.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Default most connections the server keeps open at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// File descriptors kept free for everything but client connections (store
/// connections, staged uploads, the local store's files and locks).
pub const RESERVED_FDS: u64 = 128;

/// How `packages serve` bounds what clients can hold: the time to send
/// headers and each piece of a body, and the number of open connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Longest time to receive a request's headers, counted from when the
    /// server starts waiting for them: a new connection's first request, or
    /// the next request on a kept-alive one (so it is also the idle timeout).
    pub header_timeout: Duration,
    /// Longest wait for the next piece of a request body while a handler
    /// reads it (408 after).
    pub body_read_timeout: Duration,
    /// Most connections open at once. When all are taken, a new connection
    /// closes the one that has waited longest for a request (a half-sent
    /// header, an idle keep-alive); when every one is in a request, the new
    /// connection is closed.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Why a limit was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid `--{flag}`: {reason}")]
pub struct LimitError {
    /// The flag.
    pub flag: &'static str,
    /// What is wrong.
    pub reason: &'static str,
}

/// The command-line and environment form of [`ServerLimits`].
#[derive(Debug, Clone, clap::Args)]
pub struct ServerLimitArgs {
    /// Longest time a client may take to send a request's headers (also how long an idle connection is kept), in seconds
    #[arg(long, env = "PACKAGES_HEADER_TIMEOUT_SECS", default_value_t = DEFAULT_HEADER_TIMEOUT.as_secs())]
    pub header_timeout_secs: u64,
    /// Longest wait for the next piece of a request body, in seconds
    #[arg(long, env = "PACKAGES_BODY_READ_TIMEOUT_SECS", default_value_t = DEFAULT_BODY_READ_TIMEOUT.as_secs())]
    pub body_read_timeout_secs: u64,
    /// Most client connections open at once (at most the open-file limit less 128)
    #[arg(long, env = "PACKAGES_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
}

impl ServerLimitArgs {
    /// Validates the values (none may be zero).
    pub fn limits(&self) -> Result<ServerLimits, LimitError> {
        let positive = |value: u64, flag| {
            if value == 0 {
                Err(LimitError {
                    flag,
                    reason: "must be at least 1",
                })
            } else {
                Ok(Duration::from_secs(value))
            }
        };
        if self.max_connections == 0 {
            return Err(LimitError {
                flag: "max-connections",
                reason: "must be at least 1",
            });
        }
        Ok(ServerLimits {
            header_timeout: positive(self.header_timeout_secs, "header-timeout-secs")?,
            body_read_timeout: positive(self.body_read_timeout_secs, "body-read-timeout-secs")?,
            max_connections: self.max_connections,
        })
    }
}

impl ServerLimits {
    /// The connection cap lowered, if needed, so that it leaves
    /// [`RESERVED_FDS`] of `open_files` (the process's soft `RLIMIT_NOFILE`)
    /// free: at the cap the server closes connections instead of failing to
    /// open files.
    pub fn max_connections_within(&self, open_files: Option<u64>) -> usize {
        match open_files {
            Some(limit) => {
                let room = usize::try_from(limit.saturating_sub(RESERVED_FDS).max(1))
                    .unwrap_or(usize::MAX);
                self.max_connections.min(room)
            }
            None => self.max_connections,
        }
    }
}

/// The soft limit on open files of this process (Linux: `/proc/self/limits`).
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_consistency_setting() {
        for unset in [None, Some(""), Some("probe"), Some(" probe ")] {
            assert_eq!(parse_consistency(unset).unwrap(), None, "{unset:?}");
        }
        assert_eq!(
            parse_consistency(Some("conditional")).unwrap(),
            Some(Consistency::Conditional)
        );
        assert_eq!(
            parse_consistency(Some("last-writer-wins")).unwrap(),
            Some(Consistency::LastWriterWins)
        );
        let err = parse_consistency(Some("strong")).unwrap_err();
        assert!(
            err.to_string().contains("PACKAGES_CONSISTENCY")
                && err.to_string().contains("last-writer-wins"),
            "{err}"
        );
    }

    #[test]
    fn connection_cap_leaves_room_for_files() {
        let limits = ServerLimits::default();
        assert_eq!(limits.max_connections_within(None), 512);
        assert_eq!(limits.max_connections_within(Some(20_000)), 512);
        assert_eq!(limits.max_connections_within(Some(256)), 128);
        assert_eq!(limits.max_connections_within(Some(10)), 1);
        if std::path::Path::new("/proc/self/limits").exists() {
            assert!(open_file_limit().is_some_and(|n| n > 0));
        }
    }

    #[test]
    fn zero_limits_are_refused() {
        let args = ServerLimitArgs {
            header_timeout_secs: 0,
            body_read_timeout_secs: 30,
            max_connections: 10,
        };
        assert!(args.limits().is_err());
        let args = ServerLimitArgs {
            header_timeout_secs: 5,
            body_read_timeout_secs: 30,
            max_connections: 10,
        };
        assert_eq!(
            args.limits().unwrap().header_timeout,
            Duration::from_secs(5)
        );
    }
}
