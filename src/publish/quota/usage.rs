//! What a level uses: the sum of its roots' manifests.
//!
//! Each manifest keeps its root's usage ([`crate::core::Usage`], by
//! Debian component), so a root costs one GET. Finding the roots costs:
//! - a repo of Alpine or RPM: one GET (its settings name its arches);
//! - a Debian suite (version) or component (repo): nothing (one root);
//! - any other level: one LIST of its private folder (a page per 1,000
//!   objects: chunks, pending changes, tombstones of every root below).

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::{Limit, levels_of};
use crate::core::{self, Usage};
use crate::publish::{PublishError, Publisher};
use crate::repo::{CONFIG_PREFIX, Family, Key, RepoId, RootId, Scope, Tree};

/// Manifests read at once.
const READ_CONCURRENCY: usize = 16;

/// One level's usage and limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LevelUsage {
    /// The level (`acme`, `acme/alpine`, `acme/alpine/edge`, `acme/alpine/edge/main`).
    pub level: String,
    /// Bytes of package files.
    pub bytes: u64,
    /// Packages.
    pub packages: u64,
    /// Its limits, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
}

/// Usage of a level and of every level below it, widest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    /// The levels with packages or limits.
    pub levels: Vec<LevelUsage>,
}

/// The roots holding a level's packages, each with the Debian component to
/// count (`None`: every group).
type Roots = Vec<(RootId, Option<String>)>;

impl Publisher {
    /// What `level` uses now (the packages in its published indexes).
    pub async fn level_usage(&self, level: &Scope) -> Result<Usage, PublishError> {
        let roots = self.roots_of(level).await?;
        let usages = self.root_usages(&roots).await?;
        let mut total = Usage::default();
        for ((_, group), usage) in roots.iter().zip(usages) {
            for (g, used) in usage {
                if group.as_ref().is_none_or(|want| *want == g) {
                    total = total.plus(used);
                }
            }
        }
        Ok(total)
    }

    /// Usage and limits of `level` and every level below it.
    pub async fn usage_report(&self, level: &Scope) -> Result<UsageReport, PublishError> {
        self.require_org(&level.org).await?;
        let quotas = self.quotas(&level.org).await?;
        let roots = self.roots_of(level).await?;
        let usages = self.root_usages(&roots).await?;
        let mut by_level: BTreeMap<String, Usage> = BTreeMap::new();
        by_level.insert(level.to_string(), Usage::default());
        for ((root, group), usage) in roots.iter().zip(usages) {
            for (g, used) in usage {
                if group.as_ref().is_some_and(|want| *want != g) {
                    continue;
                }
                let Some(repo) = repo_of(root, &g) else {
                    continue;
                };
                for counted in levels_of(&repo) {
                    if counted.ancestry().contains(level) {
                        let entry = by_level.entry(counted.to_string()).or_default();
                        *entry = entry.plus(used);
                    }
                }
            }
        }
        let prefix = format!("{level}/");
        for name in quotas.levels.keys() {
            if name.starts_with(&prefix) || *name == level.to_string() {
                by_level.entry(name.clone()).or_default();
            }
        }
        let levels = by_level
            .into_iter()
            .map(|(name, used)| LevelUsage {
                limit: quotas.levels.get(&name).copied(),
                level: name,
                bytes: used.bytes,
                packages: used.packages,
            })
            .collect();
        Ok(UsageReport { levels })
    }

    /// The roots of `level`'s packages (see the module doc for the cost).
    async fn roots_of(&self, level: &Scope) -> Result<Roots, PublishError> {
        let deb = level.distro.is_some_and(|d| d.family() == Family::Deb);
        if let (Some(distro), Some(version)) = (level.distro, &level.version) {
            let repo_name = level.repo.as_ref().map_or("x", |r| r.as_str());
            let repo = RepoId::parse(
                level.org.as_str(),
                distro.as_str(),
                version.as_str(),
                repo_name,
            )?;
            if deb {
                let component = level.repo.as_ref().map(|r| r.to_string());
                return Ok(vec![(RootId::Suite(repo.suite()?), component)]);
            }
            if level.repo.is_some() {
                return Ok(self
                    .arches(&repo)
                    .await?
                    .into_iter()
                    .map(|arch| (RootId::Arch(repo.arch(arch)), None))
                    .collect());
            }
        }
        let prefix = format!("{CONFIG_PREFIX}{level}/");
        let mut roots = Roots::new();
        for object in self.stores.list(Tree::Private, &prefix).await? {
            let Some(root_path) = object
                .key
                .strip_prefix(CONFIG_PREFIX)
                .and_then(|k| k.strip_suffix("/state.json"))
            else {
                continue;
            };
            // Only what the key of the parsed root names (not a look-alike path).
            if let Some(root @ (RootId::Arch(_) | RootId::Suite(_))) = RootId::parse_path(root_path)
                && Key::IndexState(root.clone()).path() == object.key
            {
                roots.push((root, None));
            }
        }
        Ok(roots)
    }

    /// The usage of each root, by group (in `roots` order).
    async fn root_usages(
        &self,
        roots: &Roots,
    ) -> Result<Vec<BTreeMap<String, Usage>>, PublishError> {
        let roots: Vec<RootId> = roots.iter().map(|(root, _)| root.clone()).collect();
        futures::stream::iter(roots)
            .map(|root| async move { self.root_usage(&root).await })
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await
    }

    /// The usage of one root, by group, with the root's format.
    async fn root_usage(&self, root: &RootId) -> Result<BTreeMap<String, Usage>, PublishError> {
        let stores = &self.stores;
        Ok(match root {
            RootId::Suite(_) => {
                let format = crate::formats::deb::DebSuite::default();
                core::root_usage(stores, &format, root).await?
            }
            RootId::Arch(arch) if arch.repo.distro.family() == Family::Rpm => {
                core::root_usage(stores, &self.rpm_format(), root).await?
            }
            RootId::Arch(_) => core::root_usage(stores, &crate::formats::apk::Alpine, root).await?,
            RootId::Settings(_) => BTreeMap::new(),
        })
    }
}

/// The repository a root's usage group counts in.
fn repo_of(root: &RootId, group: &str) -> Option<RepoId> {
    match root {
        RootId::Arch(arch) => Some(arch.repo.clone()),
        RootId::Suite(suite) => RepoId::parse(
            suite.org.as_str(),
            suite.distro.as_str(),
            suite.suite.as_str(),
            group,
        )
        .ok(),
        RootId::Settings(_) => None,
    }
}
