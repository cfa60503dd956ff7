//! How use cases record: [`Publisher::audit`] and helpers for the events
//! several use cases share (published and removed packages).

use super::{AuditEvent, Target, action};
use crate::keys::GeneratedKey;
use crate::publish::{Listed, PublishError, Published, Publisher, Upload};
use crate::repo::{RepoId, Scope};
use crate::tokens::{TokenInfo, TokenLevel};

/// Package files a gc record lists at most (the count is always whole).
const GC_FILES_LISTED: usize = 1000;

impl Publisher {
    /// Records `event` as done by this publisher's actor
    /// ([`Publisher::with_actor`]). Never fails: a failed write is logged
    /// with the whole record (the change it records is already done).
    pub async fn audit(&self, event: AuditEvent) {
        let action = event.action.clone();
        let target = event.target.clone();
        let details = event.details.clone();
        if let Err(e) = super::record(self.stores(), self.actor(), event).await {
            tracing::error!(
                error = %e,
                action,
                target = ?target,
                details = %serde_json::Value::Object(details),
                actor = ?self.actor(),
                "cannot write the audit record of a change (the change is done)"
            );
        }
    }

    /// Records one published file (`published`: its arches) in `repo`.
    pub async fn audit_published(&self, repo: &RepoId, published: &[Published]) {
        if let Some(event) = published_event(repo, published) {
            self.audit(event).await;
        }
    }

    /// Records every file of a batch that was published.
    pub async fn audit_uploads(
        &self,
        uploads: &[Upload],
        results: &[Result<Vec<Published>, PublishError>],
    ) {
        for (upload, result) in uploads.iter().zip(results) {
            if let Ok(published) = result {
                self.audit_published(&upload.repo, published).await;
            }
        }
    }

    /// Records packages removed from `repo` under `action` (a remove, a
    /// retention rule), unless none were.
    pub async fn audit_removed(&self, action: &str, repo: &RepoId, removed: &[Listed]) {
        if removed.is_empty() {
            return;
        }
        let mut names: Vec<&str> = removed.iter().map(|l| l.record.name.as_str()).collect();
        names.dedup();
        let mut target = Target::repo(repo);
        if names.len() == 1 {
            target = target.with_package(names[0]);
        }
        let files: Vec<serde_json::Value> = removed
            .iter()
            .map(|l| {
                serde_json::json!({
                    "arch": l.arch,
                    "file": l.file,
                    "name": l.record.name,
                    "version": l.record.version,
                    "sha256": l.record.sha256,
                })
            })
            .collect();
        self.audit(AuditEvent::new(action, target).detail("removed", files))
            .await;
    }

    /// Records the deletion of a repository, arch or version (`removed`:
    /// the packages it took out of the indexes).
    pub async fn audit_deleted(&self, action: &str, target: Target, removed: &[Listed]) {
        let files: Vec<String> = removed
            .iter()
            .map(|l| format!("{}/{}", l.arch, l.file))
            .collect();
        self.audit(AuditEvent::new(action, target).detail("removed", files))
            .await;
    }

    /// Records a garbage collection that deleted something: how many
    /// objects, and the package files among them.
    pub async fn audit_gc(&self, deleted: &[String]) {
        if deleted.is_empty() {
            return;
        }
        let files: Vec<&String> = deleted
            .iter()
            .filter(|k| k.starts_with(crate::repo::STATIC_PREFIX))
            .take(GC_FILES_LISTED)
            .collect();
        let event = AuditEvent::new(action::GC, Target::server())
            .detail("deleted", deleted.len())
            .detail("files", files);
        self.audit(event).await;
    }

    /// Records a key generated or imported at `scope` (its public half's name only).
    pub async fn audit_key(&self, action: &str, scope: &Scope, key: &GeneratedKey, replace: bool) {
        let event = AuditEvent::new(action, Target::scope(scope))
            .detail("key_name", &key.key_name)
            .detail("public_path", &key.public_path)
            .detail("retiring", &key.retiring)
            .detail("replace", replace);
        self.audit(event).await;
    }

    /// Records a token created or revoked (its id, name, level and rights;
    /// [`TokenInfo`] holds no secret).
    pub async fn audit_token(&self, action: &str, token: &TokenInfo) {
        let target = TokenLevel::parse(&token.level)
            .map_or_else(|_| Target::server(), |l| Target::level(&l));
        let event = AuditEvent::new(action, target)
            .detail("token_id", &token.id)
            .detail("token_name", &token.name)
            .detail("level", &token.level)
            .detail("read_only", token.read_only)
            .detail("expires", token.expires);
        self.audit(event).await;
    }

    /// Records a remove call's packages ([`action::PACKAGE_REMOVE`]).
    pub async fn audit_remove(&self, repo: &RepoId, removed: &[Listed]) {
        self.audit_removed(action::PACKAGE_REMOVE, repo, removed)
            .await;
    }
}

/// The record of one published file, naming the arches it changed; none
/// when it changed nothing (an identical re-upload is not a change, and
/// writes nothing).
fn published_event(repo: &RepoId, published: &[Published]) -> Option<AuditEvent> {
    let changed: Vec<&Published> = published.iter().filter(|p| !p.unchanged).collect();
    let first = changed.first()?;
    let record = &first.record;
    let arches: Vec<&str> = changed.iter().map(|p| p.arch.as_str()).collect();
    Some(
        AuditEvent::new(
            action::PACKAGE_PUBLISH,
            Target::repo(repo).with_package(&record.name),
        )
        .detail("version", &record.version)
        .detail("file", &first.file)
        .detail("sha256", &record.sha256)
        .detail("size", record.file_size)
        .detail("arches", arches),
    )
}
