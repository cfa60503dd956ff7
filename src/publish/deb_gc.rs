//! Garbage collection of Debian-style distros: index files older suites'
//! `InRelease` named (`by-hash/`), and pool files no suite lists.
//!
//! Both wait for the delete grace period: a by-hash file stays downloadable
//! that long after an `InRelease` stopped naming it (an apt that fetched the
//! older `InRelease` still finds it), and a pool file that long after the
//! last suite dropped it (and after its last upload, which refreshes its pool
//! record, so an upload racing with `gc` never loses its file).

use std::collections::BTreeSet;

use super::*;
use crate::core;
use crate::formats::deb::release::{release_sha256, signed_text};
use crate::repo::{DistsFile, RootId, STATIC_PREFIX, SuiteId};
use crate::storage::ObjectMeta;

impl Publisher {
    /// Deletes expired by-hash copies and unreferenced pool files of every
    /// Debian-style suite in `private` (the private tree's listing).
    pub(super) async fn gc_debian(
        &self,
        private: &[ObjectMeta],
    ) -> Result<Vec<String>, PublishError> {
        let cutoff = SystemTime::now()
            .checked_sub(self.delete_grace)
            .unwrap_or(UNIX_EPOCH);
        let old = |o: &ObjectMeta| o.last_modified.is_some_and(|t| t <= cutoff);
        let suites: BTreeSet<SuiteId> = private
            .iter()
            .filter_map(|o| {
                let rest = o.key.strip_prefix(crate::repo::CONFIG_PREFIX)?;
                match RootId::parse_path(rest.strip_suffix("/state.json")?)? {
                    RootId::Suite(suite) => Some(suite),
                    _ => None,
                }
            })
            .collect();
        let mut deleted = Vec::new();
        let mut referenced: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for suite in &suites {
            let aliases =
                super::aliases::read_aliases(&self.stores, &suite.org, suite.distro).await?;
            let format = aliases.format_for(suite);
            let root = RootId::Suite(suite.clone());
            // Pending changes first, so records hold every acknowledged upload.
            core::reindex(&self.stores, &format, &root).await?;
            let (state, _) = core::read_state(&self.stores, &format, &root).await?;
            referenced
                .entry(suite.distro_path())
                .or_default()
                .extend(state.records.values().map(|r| r.filename.clone()));
            // by-hash copies the suite's (and its aliases') InRelease no longer names.
            for shown in
                std::iter::once(suite.clone()).chain(format.aliases.iter().map(|a| SuiteId {
                    suite: a.clone(),
                    ..suite.clone()
                }))
            {
                let in_release = Key::Dists {
                    suite: shown.clone(),
                    file: DistsFile::InRelease,
                };
                let Some((bytes, _)) = self.stores.get_bytes_opt(&in_release).await? else {
                    continue;
                };
                let Some(text) = signed_text(&bytes) else {
                    continue;
                };
                let live: BTreeSet<String> = release_sha256(&text)
                    .into_iter()
                    .map(|e| e.sha256)
                    .collect();
                let prefix = format!(
                    "{STATIC_PREFIX}{}/dists/{}/",
                    shown.distro_path(),
                    shown.suite
                );
                for object in self.stores.list(Tree::Public, &prefix).await? {
                    let Some((_, sha)) = object.key.rsplit_once("/by-hash/SHA256/") else {
                        continue;
                    };
                    if old(&object) && !live.contains(sha) {
                        self.stores.public().delete(&object.key).await?;
                        deleted.push(object.key);
                    }
                }
            }
        }
        // Pool files no suite of their distro lists.
        for (distro_path, listed) in referenced {
            let prefix = format!("{STATIC_PREFIX}{distro_path}/pool/");
            for object in self.stores.list(Tree::Public, &prefix).await? {
                let Some(filename) = object
                    .key
                    .strip_prefix(&format!("{STATIC_PREFIX}{distro_path}/"))
                else {
                    continue;
                };
                if listed.contains(filename) || !old(&object) {
                    continue;
                }
                // The pool record is refreshed by every upload of the file.
                let record = pool_record_path(&distro_path, filename);
                let recent = private
                    .iter()
                    .find(|o| Some(&o.key) == record.as_ref())
                    .is_some_and(|o| !old(o));
                if recent {
                    continue;
                }
                self.stores.public().delete(&object.key).await?;
                if let Some(record) = record {
                    self.stores.private().delete(&record).await?;
                }
                deleted.push(object.key);
            }
        }
        Ok(deleted)
    }
}

/// The private pool record of a pool file (`pool/<component>/<prefix>/<source>/<file>`).
fn pool_record_path(distro_path: &str, filename: &str) -> Option<String> {
    let parts: Vec<&str> = filename.split('/').collect();
    let ["pool", component, _prefix, source, file] = parts.as_slice() else {
        return None;
    };
    Some(format!(
        "{}{distro_path}/_pool/{component}/{source}/{file}.json",
        crate::repo::CONFIG_PREFIX
    ))
}
