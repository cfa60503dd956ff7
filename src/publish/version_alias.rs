//! Version aliases of every distro family (`3.20 -> v3.20`, `latest -> 41`,
//! `stable -> bookworm`): one map per distro (`_aliases.json`, the object
//! Debian suite aliases already use), changed by `packages alias` and the
//! `…/distros/{distro}/aliases` routes.
//!
//! Debian-style distros keep their suite aliases ([`super::aliases`]): the
//! suite writes the alias's own signed `dists/<alias>/` tree. Alpine and RPM
//! repositories have no such indirection and a bucket has no symlinks, so
//! the alias's folders hold **copies**: every package and metadata file of
//! the target version's repo arch is copied server-side under the alias path,
//! then the very bytes of the target's signed index (`APKINDEX.tar.gz`;
//! RPM: the key, `repomd.xml.asc`, then `repomd.xml`, in the core's order)
//! are written there last. Neither signature covers the URL the index is
//! fetched from, and both indexes name files by relative path, so clients
//! verify the alias exactly as the target. See `docs/aliases.md`.
//!
//! Every publish round of a repo arch ends by bringing its aliases up to
//! date (files copied once: a private `alias-copies.json` records the source
//! ETag of each copy), so an alias index never names a file not yet copied.
//! Files the alias no longer needs (after a move, or a removal in the
//! target) are deleted by `gc` after the delete grace period
//! (`version_alias_gc.rs`).

use futures::{StreamExt, TryStreamExt};

use super::aliases::Aliases;
use super::*;
use crate::audit::{AuditEvent, Target, action};
use crate::repo::{Distro, Family, RootId, STATIC_PREFIX, Scope, SuiteId, rpm_arch_dir};

/// Copies made at once while bringing an alias up to date.
const COPY_CONCURRENCY: usize = 16;

/// Times a sync starts over when its target moved or republished meanwhile.
const SYNC_ROUNDS: usize = 8;

/// What a version alias's copy of one repo arch holds ([`Key::AliasCopies`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct AliasCopies {
    /// The version the files were last copied from.
    pub target: String,
    /// File (relative to the arch folder) → ETag of the source when copied.
    pub files: BTreeMap<String, String>,
}

/// The public folder of a repo arch (`static/…/<arch>/`).
pub(super) fn public_arch_prefix(arch: &RepoArch) -> String {
    if arch.repo.distro.family() == Family::Rpm {
        format!("{STATIC_PREFIX}{}/", rpm_arch_dir(arch))
    } else {
        Key::arch_public_prefix(arch)
    }
}

/// Whether a file of an arch folder is written by the index publish itself
/// (the signed index files, the browse page) rather than copied.
pub(super) fn is_index_file(family: Family, rel: &str) -> bool {
    rel == "index.html"
        || match family {
            Family::Rpm => rel.starts_with("repodata/repomd.xml"),
            _ => rel == "APKINDEX.tar.gz",
        }
}

/// `arch` under another version (an alias, or an alias's target).
pub(super) fn with_version(arch: &RepoArch, version: &Segment) -> RepoArch {
    let mut repo = arch.repo.clone();
    repo.version = version.clone();
    repo.arch(arch.arch.clone())
}

/// The signed files of a repo arch, in the order the core writes them (the
/// root file, the commit point, last).
fn index_files(arch: &RepoArch) -> Result<Vec<Key>, NameError> {
    Ok(match arch.repo.distro.family() {
        Family::Rpm => vec![
            Key::RpmKey(arch.repo.clone()),
            Key::Repodata {
                arch: arch.clone(),
                file: Segment::parse("file name", "repomd.xml.asc")?,
            },
            Key::Repodata {
                arch: arch.clone(),
                file: Segment::parse("file name", "repomd.xml")?,
            },
        ],
        _ => vec![Key::Index(arch.clone())],
    })
}

fn corrupt(key: &Key, e: impl std::fmt::Display) -> IndexError {
    IndexError::Corrupt {
        key: key.path(),
        message: e.to_string(),
    }
}

/// Reads a distro's alias map and its ETag.
pub(super) async fn read_map(
    stores: &Stores,
    org: &Org,
    distro: Distro,
) -> Result<(Aliases, Option<String>), IndexError> {
    let key = Key::SuiteAliases {
        org: org.clone(),
        distro,
    };
    match stores.get_bytes_opt(&key).await? {
        None => Ok((Aliases::default(), None)),
        Some((bytes, meta)) => Ok((
            serde_json::from_slice(&bytes).map_err(|e| corrupt(&key, e))?,
            Some(meta.etag),
        )),
    }
}

impl Publisher {
    /// Points `alias` at `version` in `org`/`distro`, creating or moving it,
    /// and returns once every repo arch of `version` is served under the
    /// alias (Debian-style distros: the suite alias and its signed
    /// `InRelease`). Returns the version it pointed to before, if any.
    pub async fn set_version_alias(
        &self,
        org: &Org,
        distro: Distro,
        alias: &str,
        version: &str,
    ) -> Result<Option<String>, PublishError> {
        if distro.family() == Family::Deb {
            let target = SuiteId::new(org.clone(), distro, version)?;
            SuiteId::new(org.clone(), distro, alias)?;
            return self.set_alias(&target, alias).await;
        }
        self.require_org(org).await?;
        let alias_seg = Segment::parse("version", alias)?;
        let target = Segment::parse("version", version)?;
        if alias == version {
            return Err(PublishError::InvalidAlias(format!(
                "`{alias}` cannot be an alias of itself"
            )));
        }
        let tree = self.org_tree(org).await?;
        let versions = tree.get(distro.as_str());
        if versions.is_some_and(|v| v.contains_key(alias)) {
            return Err(PublishError::InvalidAlias(format!(
                "`{alias}` is a version with repositories in {org}/{distro}; it cannot be an alias"
            )));
        }
        let Some(repos) = versions.and_then(|v| v.get(version)) else {
            return Err(PublishError::NotFound(format!(
                "no version `{version}` in {org}/{distro} (an alias points to a version with repositories)"
            )));
        };
        let previous = self
            .update_map(org, distro, |map| {
                if let Some(real) = map.0.get(version) {
                    return Err(PublishError::InvalidAlias(format!(
                        "`{version}` is itself an alias (of `{real}`); point `{alias}` at a version"
                    )));
                }
                Ok(map.0.insert(alias.to_owned(), version.to_owned()))
            })
            .await?;
        let mut served = BTreeSet::new();
        for repo in repos {
            let repo = RepoId {
                org: org.clone(),
                distro,
                version: target.clone(),
                repo: Segment::parse("repo", repo)?,
            };
            for arch in self.arches(&repo).await? {
                let arch = repo.arch(arch);
                self.sync_alias_arch(&arch, &alias_seg).await?;
                served.insert(with_version(&arch, &alias_seg));
            }
        }
        // Arches the previous target had and this one has not: gone at once.
        for arch in self.alias_arches(org, distro, &alias_seg).await? {
            if !served.contains(&arch) {
                self.drop_alias_index(&arch).await?;
            }
        }
        let scope = Scope {
            org: org.clone(),
            distro: Some(distro),
            version: Some(target),
            repo: None,
        };
        let event = AuditEvent::new(action::VERSION_ALIAS_SET, Target::scope(&scope))
            .detail("alias", alias)
            .detail("previous", &previous);
        self.audit(event).await;
        Ok(previous)
    }

    /// Removes `alias`: its signed index files are deleted at once (clients
    /// stop), its copied packages by `gc` after the grace period. Returns the
    /// version it pointed to.
    pub async fn unset_version_alias(
        &self,
        org: &Org,
        distro: Distro,
        alias: &str,
    ) -> Result<String, PublishError> {
        if distro.family() == Family::Deb {
            return self.remove_alias(org, distro, alias).await;
        }
        self.require_org(org).await?;
        let alias_seg = Segment::parse("version", alias)?;
        let previous = self
            .update_map(org, distro, |map| Ok(map.0.remove(alias)))
            .await?;
        let Some(target) = previous else {
            return Err(PublishError::NotFound(format!(
                "no alias `{alias}` in {org}/{distro}"
            )));
        };
        for arch in self.alias_arches(org, distro, &alias_seg).await? {
            self.drop_alias_index(&arch).await?;
        }
        let scope = Scope {
            org: org.clone(),
            distro: Some(distro),
            version: Some(Segment::parse("version", &target)?),
            repo: None,
        };
        let event = AuditEvent::new(action::VERSION_ALIAS_REMOVE, Target::scope(&scope))
            .detail("alias", alias);
        self.audit(event).await;
        Ok(target)
    }

    /// Every alias of a distro (alias → version or suite).
    pub async fn list_version_aliases(
        &self,
        org: &Org,
        distro: Distro,
    ) -> Result<Aliases, PublishError> {
        self.require_org(org).await?;
        Ok(read_map(&self.stores, org, distro).await?.0)
    }

    /// Refuses to publish into an alias (Alpine, RPM): the error names the
    /// version to publish to. Called where a repository would be created.
    pub(super) async fn refuse_alias_version(&self, repo: &RepoId) -> Result<(), PublishError> {
        if repo.distro.family() == Family::Deb {
            return Ok(());
        }
        let (map, _) = read_map(&self.stores, &repo.org, repo.distro).await?;
        match map.0.get(repo.version.as_str()) {
            Some(real) => Err(PublishError::InvalidAlias(format!(
                "`{}` is an alias of version `{real}` in {}/{}: publish to `{real}` (the alias follows it)",
                repo.version, repo.org, repo.distro
            ))),
            None => Ok(()),
        }
    }

    /// Brings every alias of `arch`'s version up to date with what `arch`
    /// just published (the end of each publish round of an Alpine or RPM
    /// repo arch).
    pub(super) async fn sync_version_aliases(&self, arch: &RepoArch) -> Result<(), IndexError> {
        let (map, _) = read_map(&self.stores, &arch.repo.org, arch.repo.distro).await?;
        for (alias, target) in &map.0 {
            if target != arch.repo.version.as_str() {
                continue;
            }
            let alias = Segment::parse("version", alias).map_err(|e| {
                corrupt(
                    &Key::SuiteAliases {
                        org: arch.repo.org.clone(),
                        distro: arch.repo.distro,
                    },
                    e,
                )
            })?;
            self.sync_alias_arch(arch, &alias).await?;
        }
        Ok(())
    }

    /// Copies what the alias lacks of `target`, then its signed index files;
    /// starts over while the alias moves or the target republishes meanwhile,
    /// so whichever writer finishes last leaves the current index.
    async fn sync_alias_arch(&self, target: &RepoArch, alias: &Segment) -> Result<(), IndexError> {
        let mut target = target.clone();
        let copy = with_version(&target, alias);
        for _ in 0..SYNC_ROUNDS {
            let sources =
                index_files(&target).map_err(|e| corrupt(&Key::Index(copy.clone()), e))?;
            let root = sources.last().expect("a root file");
            let Some((root_bytes, root_meta)) = self.stores.get_bytes_opt(root).await? else {
                // Nothing published there (yet): the alias serves nothing either.
                self.drop_alias_index(&copy).await?;
                return Ok(());
            };
            let mut others = Vec::new();
            for key in &sources[..sources.len() - 1] {
                others.push(self.stores.get_bytes_opt(key).await?.map(|(b, _)| b));
            }
            self.copy_files(&target, &copy).await?;
            let targets = index_files(&copy).map_err(|e| corrupt(&Key::Index(copy.clone()), e))?;
            for (key, bytes) in targets.iter().zip(others) {
                if let Some(bytes) = bytes {
                    self.stores
                        .put(key, Payload::Bytes(bytes), PutMode::Overwrite)
                        .await?;
                }
            }
            if copy.repo.distro.family() == Family::Rpm {
                if let Some(text) = self.rpm_format().repo_file(&copy) {
                    self.stores
                        .put(
                            &Key::RepoFile(copy.repo.clone()),
                            text.into_bytes().into(),
                            PutMode::Overwrite,
                        )
                        .await?;
                }
            }
            let root_copy = targets.last().expect("a root file");
            self.stores
                .put(root_copy, Payload::Bytes(root_bytes), PutMode::Overwrite)
                .await?;
            // Still the alias's target, unchanged since read? Else again.
            let (map, _) = read_map(&self.stores, &target.repo.org, target.repo.distro).await?;
            match map.0.get(alias.as_str()) {
                None => {
                    self.drop_alias_index(&copy).await?;
                    return Ok(());
                }
                Some(now) if now != target.repo.version.as_str() => {
                    let now = Segment::parse("version", now).map_err(|e| corrupt(root, e))?;
                    target = with_version(&target, &now);
                }
                Some(_) => {
                    let etag = self.stores.head(root).await?.map(|m| m.etag);
                    if etag.as_deref() == Some(root_meta.etag.as_str()) {
                        return Ok(());
                    }
                }
            }
        }
        Err(IndexError::Contended(RootId::Arch(copy)))
    }

    /// Copies (server-side) every file of `target`'s arch folder that the
    /// alias's `copy` lacks or holds from another source, and records them.
    async fn copy_files(&self, target: &RepoArch, copy: &RepoArch) -> Result<(), IndexError> {
        let state_key = Key::AliasCopies(copy.clone());
        let mut state: AliasCopies = match self.stores.get_bytes_opt(&state_key).await? {
            Some((bytes, _)) => serde_json::from_slice(&bytes).unwrap_or_default(),
            None => AliasCopies::default(),
        };
        let (from, to) = (public_arch_prefix(target), public_arch_prefix(copy));
        let family = target.repo.distro.family();
        let there: BTreeSet<String> = self
            .stores
            .list(Tree::Public, &to)
            .await?
            .into_iter()
            .filter_map(|o| o.key.strip_prefix(&to).map(str::to_owned))
            .collect();
        let wanted: Vec<(String, String)> = self
            .stores
            .list(Tree::Public, &from)
            .await?
            .into_iter()
            .filter_map(|o| {
                let rel = o.key.strip_prefix(&from)?.to_owned();
                let fresh = there.contains(&rel) && state.files.get(&rel) == Some(&o.etag);
                (!is_index_file(family, &rel) && !fresh).then_some((rel, o.etag))
            })
            .collect();
        let public = self.stores.public();
        let copied: Vec<Option<(String, String)>> = futures::stream::iter(wanted)
            .map(|(rel, etag)| {
                let (source, dest) = (format!("{from}{rel}"), format!("{to}{rel}"));
                async move {
                    match public.copy(&source, &dest).await {
                        Ok(()) => Ok(Some((rel, etag))),
                        // Deleted by `gc` since the listing: no index names it.
                        Err(StorageError::NotFound { .. }) => Ok(None),
                        Err(e) => Err(e),
                    }
                }
            })
            .buffer_unordered(COPY_CONCURRENCY)
            .try_collect()
            .await?;
        let moved = state.target != target.repo.version.as_str();
        if copied.iter().flatten().next().is_none() && !moved {
            return Ok(());
        }
        state.target = target.repo.version.to_string();
        state.files.extend(copied.into_iter().flatten());
        let body = serde_json::to_vec(&state).map_err(|e| corrupt(&state_key, e))?;
        self.stores
            .put(&state_key, body.into(), PutMode::Overwrite)
            .await?;
        Ok(())
    }

    /// Deletes the signed index files of an alias's repo arch (root file
    /// first, so no client finds a root file whose signature is gone).
    async fn drop_alias_index(&self, copy: &RepoArch) -> Result<(), StorageError> {
        let files = index_files(copy).map_err(|e| StorageError::backend("delete", "", e))?;
        for key in files.iter().rev() {
            self.stores.delete(key).await?;
        }
        if copy.repo.distro.family() == Family::Rpm {
            self.stores
                .delete(&Key::RepoFile(copy.repo.clone()))
                .await?;
        }
        Ok(())
    }

    /// The repo arches an alias has copies of (from its private records).
    pub(super) async fn alias_arches(
        &self,
        org: &Org,
        distro: Distro,
        alias: &Segment,
    ) -> Result<Vec<RepoArch>, PublishError> {
        let prefix = format!("{}{distro}/{alias}/", Key::org_private_prefix(org));
        Ok(self
            .stores
            .list(Tree::Private, &prefix)
            .await?
            .iter()
            .filter_map(|o| parse_copies_key(&o.key))
            .collect())
    }

    /// Changes a distro's alias map, conditionally where the store can.
    async fn update_map<T>(
        &self,
        org: &Org,
        distro: Distro,
        mut change: impl FnMut(&mut Aliases) -> Result<T, PublishError>,
    ) -> Result<T, PublishError> {
        let conditional = self.stores.conditional_writes().await?;
        let key = Key::SuiteAliases {
            org: org.clone(),
            distro,
        };
        for _ in 0..50 {
            let (mut map, etag) = read_map(&self.stores, org, distro).await?;
            let out = change(&mut map)?;
            let body = serde_json::to_vec(&map).map_err(|e| corrupt(&key, e))?;
            let mode = match (conditional, etag) {
                (false, _) => PutMode::Overwrite,
                (true, Some(etag)) => PutMode::Update(etag),
                (true, None) => PutMode::Create,
            };
            match self.stores.put(&key, body.into(), mode).await {
                Ok(_) => return Ok(out),
                Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(
            StorageError::backend("update", &key.path(), "too many concurrent alias changes")
                .into(),
        )
    }
}

/// The alias repo arch of a [`Key::AliasCopies`] path.
pub(super) fn parse_copies_key(path: &str) -> Option<RepoArch> {
    let rest = path
        .strip_prefix(crate::repo::CONFIG_PREFIX)?
        .strip_suffix("/alias-copies.json")?;
    match RootId::parse_path(rest)? {
        RootId::Arch(arch) => Some(arch),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_keys_read_back_and_index_files_are_told_apart() {
        let repo = RepoId::parse("acme", "alpine", "latest", "main").unwrap();
        let arch = repo.arch(Arch::parse("x86_64").unwrap());
        let key = Key::AliasCopies(arch.clone()).path();
        assert_eq!(
            key,
            "config/acme/alpine/latest/main/x86_64/alias-copies.json"
        );
        assert_eq!(parse_copies_key(&key), Some(arch.clone()));
        assert_eq!(
            parse_copies_key("config/acme/alpine/latest/main/x86_64/state.json"),
            None
        );
        assert!(is_index_file(Family::Apk, "APKINDEX.tar.gz"));
        assert!(!is_index_file(Family::Apk, "hello-1.0-r0.apk"));
        assert!(is_index_file(Family::Rpm, "repodata/repomd.xml.asc"));
        assert!(!is_index_file(Family::Rpm, "repodata/abc-primary.xml.gz"));
        let fedora = RepoId::parse("acme", "fedora", "latest", "main").unwrap();
        let arch = fedora.arch(Arch::parse("x86_64").unwrap());
        assert_eq!(
            public_arch_prefix(&arch),
            "static/acme/fedora/linux/releases/latest/main/x86_64/os/"
        );
        let target = with_version(&arch, &Segment::parse("version", "41").unwrap());
        assert_eq!(target.repo.version.as_str(), "41");
    }
}
