//! Garbage collection: expired removed files and unreferenced record chunks.

use super::*;

impl Publisher {
    /// Applies every repository's retention rule ([`Publisher::apply_all_retention`]),
    /// then deletes files of removed packages whose grace period is over,
    /// record chunks no longer named by their repo arch's state (after the
    /// same grace a pending change gets), and audit records older than the
    /// days set by [`Publisher::with_audit_keep_days`]; returns the deleted keys.
    pub async fn gc(&self) -> Result<Vec<String>, PublishError> {
        let mut deleted = Vec::new();
        self.apply_all_retention(false).await;
        let now = unix_now();
        let private = self.orgs_private_tree().await?;
        deleted.extend(self.gc_chunks(&private).await?);
        deleted.extend(self.gc_debian(&private).await?);
        deleted.extend(self.gc_rpm(&private).await?);
        deleted.extend(self.gc_version_aliases(&private).await?);
        for object in private {
            let Some((arch, file)) = Key::parse_tombstone(&object.key) else {
                continue;
            };
            let (bytes, _) = match self.stores.private().get_bytes(&object.key).await {
                Ok(found) => found,
                Err(StorageError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let Ok(tombstone) = serde_json::from_slice::<Tombstone>(&bytes) else {
                continue;
            };
            if tombstone.removed + self.delete_grace.as_secs() > now {
                continue;
            }
            // Only if the name was not published again meanwhile.
            let rpm = arch.repo.distro.family() == crate::repo::Family::Rpm;
            let listed = if rpm {
                self.rpm_lists(&arch, file.as_str()).await?
            } else {
                index::record(&self.stores, &arch, file.as_str())
                    .await?
                    .is_some()
            };
            if !listed {
                let package = if rpm {
                    Key::RpmPackage { arch, file }
                } else {
                    Key::Package { arch, file }
                };
                self.stores.delete(&package).await?;
                deleted.push(package.path());
            }
            self.stores.private().delete(&object.key).await?;
        }
        self.audit_gc(&deleted).await;
        if let Some(days) = self.audit_keep_days {
            let cutoff = crate::audit::expire::cutoff_ns(crate::audit::time::now_ns(), days);
            let expired = crate::audit::expire::expire(&self.stores, cutoff).await?;
            if !expired.is_empty() {
                let event = crate::audit::AuditEvent::new(
                    crate::audit::action::AUDIT_EXPIRE,
                    crate::audit::Target::server(),
                )
                .detail("keep_days", days)
                .detail("before", crate::audit::time::rfc3339_ns(cutoff))
                .detail("records", expired.len());
                self.audit(event).await;
            }
            deleted.extend(expired);
        }
        Ok(deleted)
    }

    /// The private tree of every org: what gc looks through. Not the whole
    /// private tree: the audit log (`config/_audit/`) grows for good unless
    /// expired, and gc needs none of it.
    async fn orgs_private_tree(&self) -> Result<Vec<crate::storage::ObjectMeta>, PublishError> {
        let mut out = Vec::new();
        for name in self.list_orgs().await? {
            let Ok(org) = crate::repo::Org::parse(&name) else {
                continue;
            };
            out.extend(
                self.stores
                    .list(Tree::Private, &Key::org_private_prefix(&org))
                    .await?,
            );
        }
        Ok(out)
    }

    /// Deletes chunk objects that no state names any more and that are older
    /// than [`index::PENDING_GRACE`] (a writer may have stored a chunk it has
    /// not yet named in the state).
    pub(super) async fn gc_chunks(
        &self,
        private: &[crate::storage::ObjectMeta],
    ) -> Result<Vec<String>, PublishError> {
        let mut by_root: BTreeMap<crate::repo::RootId, Vec<&crate::storage::ObjectMeta>> =
            BTreeMap::new();
        for object in private {
            if let Some(root) = Key::parse_chunk(&object.key) {
                by_root.entry(root).or_default().push(object);
            }
        }
        let cutoff = SystemTime::now()
            .checked_sub(self.orphan_grace)
            .unwrap_or(UNIX_EPOCH);
        let mut deleted = Vec::new();
        for (root, objects) in by_root {
            let live = crate::core::live_chunk_keys(&self.stores, &root).await?;
            for object in objects {
                let old = object.last_modified.is_some_and(|t| t <= cutoff);
                if old && !live.contains(&object.key) {
                    self.stores.private().delete(&object.key).await?;
                    deleted.push(object.key.clone());
                }
            }
        }
        Ok(deleted)
    }
}
