//! Garbage collection of version-alias copies: files under an alias that
//! its target no longer has (the alias moved, or the target's `gc` deleted a
//! removed package), and whole copies of removed aliases.
//!
//! A file's grace counts from the first `gc` that saw it unneeded (kept in
//! [`Key::AliasUnnamed`], written by `gc` only), like RPM metadata files: a
//! client holding an older alias index (CDN cache) can still fetch what it
//! names for the delete grace period.

use super::version_alias::{is_index_file, parse_copies_key, public_arch_prefix, read_map};
use super::*;
use crate::repo::Distro;
use crate::storage::ObjectMeta;

impl Publisher {
    /// Deletes alias copies no alias needs any more, once their grace is
    /// over; `private` is the private tree's listing.
    pub(super) async fn gc_version_aliases(
        &self,
        private: &[ObjectMeta],
    ) -> Result<Vec<String>, PublishError> {
        let arches: BTreeSet<RepoArch> = private
            .iter()
            .filter_map(|o| parse_copies_key(&o.key))
            .collect();
        let mut maps: BTreeMap<(Org, Distro), Aliases> = BTreeMap::new();
        let mut deleted = Vec::new();
        for copy in arches {
            let place = (copy.repo.org.clone(), copy.repo.distro);
            if !maps.contains_key(&place) {
                let (map, _) = read_map(&self.stores, &place.0, place.1).await?;
                maps.insert(place.clone(), map);
            }
            let target = maps[&place].0.get(copy.repo.version.as_str()).cloned();
            deleted.extend(self.gc_alias_arch(&copy, target.as_deref()).await?);
        }
        Ok(deleted)
    }

    /// One alias repo arch: `target` is the version the alias points to now
    /// (`None`: the alias was removed, every file goes).
    async fn gc_alias_arch(
        &self,
        copy: &RepoArch,
        target: Option<&str>,
    ) -> Result<Vec<String>, PublishError> {
        let family = copy.repo.distro.family();
        let mut live = BTreeSet::new();
        if let Some(target) = target {
            let target = version_alias::with_version(copy, &Segment::parse("version", target)?);
            let prefix = public_arch_prefix(&target);
            live.extend(
                self.stores
                    .list(Tree::Public, &prefix)
                    .await?
                    .into_iter()
                    .filter_map(|o| o.key.strip_prefix(&prefix).map(str::to_owned)),
            );
        }
        let marker = Key::AliasUnnamed(copy.clone());
        let seen: BTreeMap<String, u64> = match self.stores.get_bytes_opt(&marker).await? {
            Some((bytes, _)) => serde_json::from_slice(&bytes).unwrap_or_default(),
            None => BTreeMap::new(),
        };
        let now = unix_now();
        let prefix = public_arch_prefix(copy);
        let mut still = BTreeMap::new();
        let mut deleted = Vec::new();
        let mut left = 0usize;
        for object in self.stores.list(Tree::Public, &prefix).await? {
            let Some(rel) = object.key.strip_prefix(&prefix) else {
                continue;
            };
            let index = target.is_some() && is_index_file(family, rel);
            if index || live.contains(rel) {
                left += 1;
                continue;
            }
            let since = seen.get(rel).copied().unwrap_or(now);
            if since + self.delete_grace.as_secs() > now {
                still.insert(rel.to_owned(), since);
                left += 1;
                continue;
            }
            self.stores.public().delete(&object.key).await?;
            deleted.push(object.key);
        }
        if target.is_none() && left == 0 {
            // A removed alias whose copies are all gone: forget it.
            self.stores.delete(&Key::AliasCopies(copy.clone())).await?;
            self.stores.delete(&marker).await?;
        } else if still != seen {
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
        Ok(deleted)
    }
}
