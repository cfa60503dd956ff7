//! Repository settings: the arches a repo serves and its noarch packages.
//!
//! Every change goes through the publish core as pending changes of the
//! repo's settings root ([`settings_root`](super::settings_root)), so
//! concurrent changes never lose one, with or without conditional writes.
//! `repo.json` is that root's published file: reading settings is one GET.

use super::settings_root::{SettingsEntry, SettingsFormat};
use super::*;
use crate::audit::{AuditEvent, Target, action};
use crate::core::{self, Change};
use crate::repo::RootId;

impl Publisher {
    /// The repository's settings (empty when it has none yet), with the
    /// ETag of `repo.json` (`None`: the repository does not exist yet).
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

    /// Creates a repository with no arches if it has no settings yet;
    /// returns whether this call created it.
    pub async fn create_repo(&self, repo: &RepoId) -> Result<bool, PublishError> {
        self.require_org(&repo.org).await?;
        if self.repo_settings(repo).await?.1.is_some() {
            return Ok(false);
        }
        self.refuse_alias_version(repo).await?;
        let root = RootId::Settings(repo.clone());
        core::reindex(&self.stores, &SettingsFormat, &root).await?;
        self.audit(AuditEvent::new(action::REPO_CREATE, Target::repo(repo)))
            .await;
        Ok(true)
    }

    /// Stores settings changes and waits until `repo.json` shows them.
    pub(super) async fn change_settings(
        &self,
        repo: &RepoId,
        changes: Vec<Change<SettingsEntry>>,
    ) -> Result<RepoSettings, PublishError> {
        let root = RootId::Settings(repo.clone());
        for change in changes {
            core::add_pending(&self.stores, &root, change).await?;
        }
        core::reindex(&self.stores, &SettingsFormat, &root).await?;
        Ok(self.repo_settings(repo).await?.0)
    }

    /// Adds arches and noarch records to the settings; returns the arches
    /// that were not there before, and the settings after the change.
    pub(super) async fn extend_settings(
        &self,
        repo: &RepoId,
        arches: &[Arch],
        noarch: Option<&ApkRecord>,
    ) -> Result<(Vec<Arch>, RepoSettings), PublishError> {
        let (settings, etag) = self.repo_settings(repo).await?;
        if etag.is_none() {
            // A new repository: not under a version alias.
            self.refuse_alias_version(repo).await?;
        }
        let new: Vec<Arch> = arches
            .iter()
            .filter(|a| !settings.arches.contains(a.as_str()))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let noarch_new = noarch.is_some_and(|r| settings.noarch.get(&r.file_name()) != Some(r));
        if new.is_empty() && !noarch_new && etag.is_some() {
            return Ok((new, settings));
        }
        if settings.arches.len() + new.len() > self.max_arches {
            return Err(PublishError::TooManyArches {
                repo: repo.to_string(),
                max: self.max_arches,
            });
        }
        let mut changes: Vec<Change<SettingsEntry>> = new
            .iter()
            .map(|a| Change::Add(Box::new(SettingsEntry::Arch(a.to_string()))))
            .collect();
        if let Some(record) = noarch.filter(|_| noarch_new) {
            changes.push(Change::Add(Box::new(SettingsEntry::Noarch(Box::new(
                record.clone(),
            )))));
        }
        let settings = self.change_settings(repo, changes).await?;
        Ok((new, settings))
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
        self.fill_new_arches(repo, &new, &settings).await?;
        let added: Vec<&str> = new.iter().map(Arch::as_str).collect();
        if !added.is_empty() {
            let event =
                AuditEvent::new(action::ARCH_ADD, Target::repo(repo)).detail("arches", added);
            self.audit(event).await;
        }
        Ok(())
    }

    /// Forgets removed noarch packages, so arches added later do not get them.
    pub(super) async fn forget_noarch(
        &self,
        repo: &RepoId,
        removed: &[Listed],
    ) -> Result<(), PublishError> {
        let (settings, _) = self.repo_settings(repo).await?;
        let changes: Vec<Change<SettingsEntry>> = removed
            .iter()
            .filter(|listed| settings.noarch.contains_key(&listed.file))
            .map(|listed| Change::Remove {
                entry: SettingsEntry::noarch_key(&listed.file),
            })
            .collect();
        if !changes.is_empty() {
            self.change_settings(repo, changes).await?;
        }
        Ok(())
    }
}
