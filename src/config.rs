//! Where the trees live and how to reach them, read once from flags and environment.

use crate::storage::{S3Settings, Storage, StorageError, StorageUrl};
use crate::stores::Stores;

/// Store locations, validated.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The public tree's store (and the private tree's, unless `private` is set).
    pub storage: StorageUrl,
    /// A separate store for the private tree.
    pub private: Option<StorageUrl>,
    /// S3 overrides.
    pub s3: S3Settings,
}

impl StoreConfig {
    /// Parses the URLs given on the command line or in the environment.
    pub fn parse(
        storage: Option<&str>,
        private: Option<&str>,
        virtual_hosted: bool,
    ) -> Result<Self, StorageError> {
        let storage = StorageUrl::parse(storage.unwrap_or(StorageUrl::DEFAULT))?;
        let private = private.map(StorageUrl::parse).transpose()?;
        Ok(Self {
            storage,
            private,
            s3: S3Settings {
                virtual_hosted,
                ..S3Settings::default()
            },
        })
    }

    /// Opens the stores.
    pub async fn open(&self) -> Result<Stores, StorageError> {
        let public = Storage::open(&self.storage, &self.s3).await?;
        match &self.private {
            Some(url) if url != &self.storage => {
                let private = Storage::open(url, &self.s3).await?;
                Ok(Stores::separate(public, private))
            }
            _ => Ok(Stores::shared(public)),
        }
    }
}
