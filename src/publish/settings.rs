//! Repository settings: the arches a repo serves and its noarch packages.

use super::*;

impl Publisher {
    /// The repository's settings (empty when it has none yet).
    pub async fn repo_settings(
        &self,
        repo: &RepoId,
    ) -> Result<(RepoSettings, Option<String>), PublishError> {
        let key = Key::RepoSettings(repo.clone());
        match self.stores.get_bytes_opt(&key).await? {
            None => Ok((RepoSettings::default(), None)),
            Some((bytes, meta)) => Ok((
                serde_json::from_slice(&bytes)
                    .map_err(|e| StorageError::backend("decode", &key.path(), e))?,
                Some(meta.etag),
            )),
        }
    }

    /// Adds arches and noarch records to the settings; returns the arches that are new.
    pub(super) async fn extend_settings(
        &self,
        repo: &RepoId,
        arches: &[Arch],
        noarch: Option<&ApkRecord>,
    ) -> Result<(Vec<Arch>, RepoSettings), PublishError> {
        let key = Key::RepoSettings(repo.clone());
        loop {
            let (mut settings, etag) = self.repo_settings(repo).await?;
            let new: Vec<Arch> = arches
                .iter()
                .filter(|a| !settings.arches.contains(a.as_str()))
                .cloned()
                .collect();
            let noarch_new = noarch.is_some_and(|r| settings.noarch.get(&r.file_name()) != Some(r));
            if new.is_empty() && !noarch_new {
                return Ok((new, settings));
            }
            settings.arches.extend(new.iter().map(|a| a.to_string()));
            if let Some(record) = noarch {
                settings.noarch.insert(record.file_name(), record.clone());
            }
            let body = serde_json::to_vec(&settings)
                .map_err(|e| StorageError::backend("encode", &key.path(), e))?;
            let mode = etag.map_or(PutMode::Create, PutMode::Update);
            match self.stores.put(&key, body.into(), mode).await {
                Ok(_) => return Ok((new, settings)),
                Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The arches a repository serves.
    pub async fn arches(&self, repo: &RepoId) -> Result<Vec<Arch>, PublishError> {
        let (settings, _) = self.repo_settings(repo).await?;
        Ok(settings
            .arches
            .iter()
            .filter_map(|a| Arch::parse(a).ok())
            .collect())
    }

    /// Adds arches to a repository's configuration (noarch packages follow).
    pub async fn add_arches(&self, repo: &RepoId, arches: &[Arch]) -> Result<(), PublishError> {
        self.require_org(&repo.org).await?;
        let (new, settings) = self.extend_settings(repo, arches, None).await?;
        self.fill_new_arches(repo, &new, &settings).await
    }

    pub(super) async fn forget_noarch(
        &self,
        repo: &RepoId,
        removed: &[Listed],
    ) -> Result<(), PublishError> {
        let key = Key::RepoSettings(repo.clone());
        loop {
            let (mut settings, etag) = self.repo_settings(repo).await?;
            let before = settings.noarch.len();
            for listed in removed {
                // Only when removed from every arch it was in.
                settings.noarch.remove(&listed.file);
            }
            if settings.noarch.len() == before {
                return Ok(());
            }
            let body = serde_json::to_vec(&settings)
                .map_err(|e| StorageError::backend("encode", &key.path(), e))?;
            let mode = etag.map_or(PutMode::Create, PutMode::Update);
            match self.stores.put(&key, body.into(), mode).await {
                Ok(_) => return Ok(()),
                Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
