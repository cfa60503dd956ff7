//! Where the trees live and how to reach them, and the limits the server
//! puts on clients: read once from flags and environment.

use std::time::Duration;

use crate::storage::{Consistency, S3Settings, Storage, StorageError, StorageUrl};
use crate::stores::Stores;

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
