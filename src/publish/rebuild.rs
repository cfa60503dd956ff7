//! Disaster recovery: recompute an arch's records from its package files.

use futures::{StreamExt, TryStreamExt};

use super::*;

impl Publisher {
    /// Recomputes the records of `arch` from its `.apk` files and republishes
    /// the index (disaster recovery). Removed packages (tombstoned) stay out,
    /// and so do packages over a limit of `formats::apk::limits` (logged).
    pub async fn rebuild(&self, arch: &RepoArch) -> Result<index::Reindexed, PublishError> {
        let prefix = Key::arch_public_prefix(arch);
        let tombstones: BTreeSet<String> = self
            .stores
            .list(Tree::Private, &Key::tombstone_prefix(arch))
            .await?
            .iter()
            .filter_map(|o| {
                o.key
                    .rsplit('/')
                    .next()?
                    .strip_suffix(".json")
                    .map(str::to_owned)
            })
            .collect();
        let mut files = Vec::new();
        for object in self.stores.list(Tree::Public, &prefix).await? {
            let Some(file) = object.key.strip_prefix(&prefix) else {
                continue;
            };
            if file.contains('/') || !file.ends_with(".apk") || tombstones.contains(file) {
                continue;
            }
            files.push(Segment::parse("file name", file)?);
        }
        // Every package is read and checked again, several at once.
        let read: Vec<Option<(String, ApkRecord)>> = futures::stream::iter(files)
            .map(|file| async move {
                let key = Key::Package {
                    arch: arch.clone(),
                    file: file.clone(),
                };
                let staged = self.download(&key).await?;
                let package = match self.inspect(staged.path(), &key.path()).await {
                    // Uploaded by an older release: left out, as `index repair` drops it.
                    Err(PublishError::Package {
                        reason: ApkError::Limit(reason),
                        ..
                    }) => {
                        tracing::warn!(%arch, %file, %reason, "rebuild leaves out a package over a limit");
                        return Ok(None);
                    }
                    other => other?,
                };
                Ok::<_, PublishError>(Some((
                    file.to_string(),
                    package.record.with_arch(arch.arch.as_str()),
                )))
            })
            .buffer_unordered(8)
            .try_collect()
            .await?;
        let records: BTreeMap<String, ApkRecord> = read.into_iter().flatten().collect();
        let count = records.len();
        index::replace_records(&self.stores, arch, records).await?;
        let done = self.publish_root(arch, &[]).await?;
        self.audit_rebuild(arch, count).await;
        Ok(done)
    }

    /// Records that the records of `arch` were recomputed from its files.
    pub(super) async fn audit_rebuild(&self, arch: &RepoArch, packages: usize) {
        let event = crate::audit::AuditEvent::new(
            crate::audit::action::INDEX_REBUILD,
            crate::audit::Target::arch(arch),
        )
        .detail("packages", packages);
        self.audit(event).await;
    }
}
