//! What an upload is about to add, per root, for the quota check.

use std::collections::{BTreeMap, BTreeSet};

use super::levels_of;
use crate::core::Usage;
use crate::formats::apk::ApkRecord;
use crate::publish::{PublishError, Publisher};
use crate::repo::{Arch, RepoId, RootId, Scope};

/// One record an upload is about to add to one root: what it counts for
/// quotas, and what tells whether the root already lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The repository it counts in (Debian: the component of the suite).
    pub repo: RepoId,
    /// The root it goes into.
    pub root: RootId,
    /// Its entry key in the root.
    pub entry: String,
    /// SHA-256 of the package file (the same bytes already listed add nothing).
    pub sha256: String,
    /// Size of the package file.
    pub bytes: u64,
    /// The file as the user named it, for the error.
    pub file: String,
}

impl Planned {
    /// An Alpine or RPM package (its `record`) going into each of `targets`
    /// (a noarch package counts once per arch: each arch stores a copy).
    pub fn per_arch(
        repo: &RepoId,
        targets: &[Arch],
        entry: &str,
        sha256: &str,
        bytes: u64,
        file: &str,
    ) -> Vec<Planned> {
        targets
            .iter()
            .map(|arch| Planned {
                repo: repo.clone(),
                root: RootId::Arch(repo.arch(arch.clone())),
                entry: entry.to_owned(),
                sha256: sha256.to_owned(),
                bytes,
                file: file.to_owned(),
            })
            .collect()
    }

    /// An Alpine package going into each of `targets`.
    pub fn apk(repo: &RepoId, targets: &[Arch], record: &ApkRecord, file: &str) -> Vec<Planned> {
        Planned::per_arch(
            repo,
            targets,
            &record.file_name(),
            &record.sha256,
            record.file_size,
            file,
        )
    }
}

/// What `planned` adds to each of `levels`.
pub(super) fn by_level<'a>(
    planned: &[Planned],
    levels: impl Iterator<Item = &'a Scope>,
) -> BTreeMap<Scope, Usage> {
    let levels: BTreeSet<&Scope> = levels.collect();
    let mut adding: BTreeMap<Scope, Usage> = BTreeMap::new();
    for p in planned {
        for level in levels_of(&p.repo) {
            if levels.contains(&level) {
                let entry = adding.entry(level).or_default();
                *entry = entry.plus(Usage {
                    bytes: p.bytes,
                    packages: 1,
                });
            }
        }
    }
    adding
}

impl Publisher {
    /// The copies of `repo`'s noarch packages that arches in `targets` it
    /// does not serve yet will get (one GET of the settings). Call it only
    /// when a quota applies ([`Publisher::has_quotas`]).
    pub async fn planned_fill(
        &self,
        repo: &RepoId,
        targets: &[Arch],
        file: &str,
    ) -> Result<Vec<Planned>, PublishError> {
        let (settings, _) = self.repo_settings(repo).await?;
        let new: Vec<Arch> = targets
            .iter()
            .filter(|a| !settings.arches.contains(a.as_str()))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut planned = Vec::new();
        for (name, record) in &settings.noarch {
            planned.extend(Planned::per_arch(
                repo,
                &new,
                name,
                &record.sha256,
                record.file_size,
                file,
            ));
        }
        Ok(planned)
    }
}
