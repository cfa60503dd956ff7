//! Garbage collection of RPM repositories: metadata files no `repomd.xml`
//! names any more, and the files of removed packages.
//!
//! Both wait for the delete grace period: a content-named metadata file
//! stays downloadable that long after `repomd.xml` stopped naming it (a dnf
//! holding the older `repomd.xml` still finds it), and a removed package
//! that long after its removal.

use std::collections::BTreeSet;

use super::*;
use crate::core;
use crate::formats::rpm::RpmRecord;
use crate::formats::rpm::repodata::parse_repomd;
use crate::repo::{Family, RootId, STATIC_PREFIX, rpm_arch_dir};
use crate::storage::ObjectMeta;

impl Publisher {
    /// Deletes expired metadata files of every RPM repo arch in `private`
    /// (the private tree's listing).
    pub(super) async fn gc_rpm(&self, private: &[ObjectMeta]) -> Result<Vec<String>, PublishError> {
        let cutoff = SystemTime::now()
            .checked_sub(self.delete_grace)
            .unwrap_or(UNIX_EPOCH);
        let old = |o: &ObjectMeta| o.last_modified.is_some_and(|t| t <= cutoff);
        let arches: BTreeSet<RepoArch> = private
            .iter()
            .filter_map(|o| {
                let rest = o.key.strip_prefix(crate::repo::CONFIG_PREFIX)?;
                match RootId::parse_path(rest.strip_suffix("/state.json")?)? {
                    RootId::Arch(arch) if arch.repo.distro.family() == Family::Rpm => Some(arch),
                    _ => None,
                }
            })
            .collect();
        let mut deleted = Vec::new();
        for arch in &arches {
            let repomd = Key::Repodata {
                arch: arch.clone(),
                file: Segment::parse("file name", "repomd.xml")?,
            };
            let Some((bytes, _)) = self.stores.get_bytes_opt(&repomd).await? else {
                continue;
            };
            let Some(listed) = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|t| parse_repomd(t).ok())
            else {
                continue;
            };
            let live: BTreeSet<String> = listed
                .into_iter()
                .filter_map(|d| d.href.strip_prefix("repodata/").map(str::to_owned))
                .collect();
            // A file's grace counts from when repomd.xml stopped naming it,
            // not from when it was written (a repository unchanged for days
            // replaces files written days ago): from the first `gc` that saw
            // it unnamed, which is no earlier.
            let marker = Key::RepodataUnnamed(arch.clone());
            let seen: BTreeMap<String, u64> = match self.stores.get_bytes_opt(&marker).await? {
                Some((bytes, _)) => serde_json::from_slice(&bytes).unwrap_or_default(),
                None => BTreeMap::new(),
            };
            let now = unix_now();
            let mut still = BTreeMap::new();
            let prefix = format!("{STATIC_PREFIX}{}/repodata/", rpm_arch_dir(arch));
            for object in self.stores.list(Tree::Public, &prefix).await? {
                let Some(name) = object.key.strip_prefix(&prefix) else {
                    continue;
                };
                if name.starts_with("repomd.xml") || live.contains(name) {
                    continue;
                }
                let unnamed_since = seen.get(name).copied().unwrap_or(now);
                if !old(&object) || unnamed_since + self.delete_grace.as_secs() > now {
                    still.insert(name.to_owned(), unnamed_since);
                    continue;
                }
                self.stores.public().delete(&object.key).await?;
                deleted.push(object.key);
            }
            if still != seen {
                if still.is_empty() {
                    self.stores.delete(&marker).await?;
                } else {
                    let body = serde_json::to_vec(&still)
                        .map_err(|e| StorageError::backend("encode", &marker.path(), e))?;
                    self.stores
                        .put(&marker, body.into(), PutMode::Overwrite)
                        .await?;
                }
            }
        }
        Ok(deleted)
    }

    /// Whether an RPM repo arch lists `file` (a removed name published again).
    pub(super) async fn rpm_lists(
        &self,
        arch: &RepoArch,
        file: &str,
    ) -> Result<bool, PublishError> {
        let format = self.rpm_format();
        let root = RootId::Arch(arch.clone());
        let record: Option<RpmRecord> = core::record(&self.stores, &format, &root, file).await?;
        Ok(record.is_some())
    }
}
