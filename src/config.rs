//! Where the trees live and how to reach them, read once from flags and environment.

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
}
