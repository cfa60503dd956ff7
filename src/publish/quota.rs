//! Quotas: per org, distro, version and repo, on bytes stored and package
//! count (`docs/quotas.md`).
//!
//! The limits of an org live in one private object ([`Key::Quotas`]). What
//! is used comes from the publish core: every manifest (`state.json`) keeps
//! the usage of its root's records, updated in the same write as the records
//! ([`crate::core::Usage`]), so a level's usage is the sum of its roots'
//! manifests and no upload lists or reads a repository's records.
//!
//! An upload is checked before anything is written
//! ([`Publisher::reserve_quota`]): committed usage (the manifests) plus
//! what this process's uploads that passed their check hold reserved
//! ([`Ledger`]) plus the upload must stay within every limit of the levels
//! it touches. Checks of one org run one at a time per process, so uploads
//! of one process never overshoot together; uploads in other processes that
//! passed their check but are not yet in a manifest are not seen (the
//! overshoot bound of `docs/quotas.md`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::{PublishError, Publisher};
use crate::audit::{AuditEvent, Target, action};
use crate::core::Usage;
use crate::repo::{Key, Org, RepoId, RootId, Scope};
use crate::storage::{PutMode, StorageError};

mod plan;
mod usage;

pub use plan::Planned;
pub use usage::{LevelUsage, UsageReport};

/// How often a quota change retries after losing a race for the object.
const MAX_WRITE_TRIES: usize = 20;

/// The limits of one level; `None`: no limit on that measure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// Most bytes of package files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Most packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_packages: Option<u64>,
}

impl Limit {
    /// Whether neither measure is limited.
    pub fn is_empty(&self) -> bool {
        self.max_bytes.is_none() && self.max_packages.is_none()
    }

    /// The measure `used + adding` goes over, if any: `(what, used, adding, limit)`.
    pub fn exceeded(&self, used: Usage, adding: Usage) -> Option<(&'static str, u64, u64, u64)> {
        let over = |limit: Option<u64>, used: u64, adding: u64| {
            limit.filter(|limit| adding > 0 && used.saturating_add(adding) > *limit)
        };
        if let Some(limit) = over(self.max_bytes, used.bytes, adding.bytes) {
            return Some(("bytes", used.bytes, adding.bytes, limit));
        }
        over(self.max_packages, used.packages, adding.packages)
            .map(|limit| ("packages", used.packages, adding.packages, limit))
    }
}

/// The quotas of one org (`config/<org>/_quotas.json`): level path
/// (`acme`, `acme/alpine`, `acme/alpine/edge`, `acme/alpine/edge/main`) → limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgQuotas {
    /// The limits by level path.
    #[serde(default)]
    pub levels: BTreeMap<String, Limit>,
}

impl OrgQuotas {
    /// The limits of `level`, if set.
    pub fn get(&self, level: &Scope) -> Option<Limit> {
        self.levels.get(&level.to_string()).copied()
    }
}

/// The levels a repository's packages count in: org, distro, version, repo.
pub fn levels_of(repo: &RepoId) -> Vec<Scope> {
    repo.scope().ancestry()
}

/// What this process's uploads that passed their check hold, by level path,
/// until their publish ends; and one lock per org so checks run one at a time.
#[derive(Debug, Default)]
pub struct Ledger {
    reserved: Mutex<BTreeMap<String, Usage>>,
    locks: Mutex<BTreeMap<Org, Arc<tokio::sync::Mutex<()>>>>,
}

impl Ledger {
    fn reserved(&self, level: &str) -> Usage {
        lock(&self.reserved).get(level).copied().unwrap_or_default()
    }

    fn org_lock(&self, org: &Org) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.locks).entry(org.clone()).or_default().clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain map updates: never left half done.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Usage an upload holds reserved in the [`Ledger`]; released on drop (when
/// the upload's publish has ended, so the manifests count it from then on).
#[derive(Debug, Default)]
#[must_use = "the reservation ends when this is dropped"]
pub struct Reservation {
    ledger: Option<Arc<Ledger>>,
    held: Vec<(String, Usage)>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let Some(ledger) = &self.ledger else { return };
        let mut reserved = lock(&ledger.reserved);
        for (level, used) in &self.held {
            if let Some(entry) = reserved.get_mut(level) {
                entry.bytes = entry.bytes.saturating_sub(used.bytes);
                entry.packages = entry.packages.saturating_sub(used.packages);
                if *entry == Usage::default() {
                    reserved.remove(level);
                }
            }
        }
    }
}

impl Publisher {
    /// The quotas of `org` (empty when none are set).
    pub async fn quotas(&self, org: &Org) -> Result<OrgQuotas, PublishError> {
        Ok(self.read_quotas(org).await?.0)
    }

    /// Whether `org` has any quota set (one GET).
    pub async fn has_quotas(&self, org: &Org) -> Result<bool, PublishError> {
        Ok(!self.quotas(org).await?.levels.is_empty())
    }

    async fn read_quotas(&self, org: &Org) -> Result<(OrgQuotas, Option<String>), PublishError> {
        let key = Key::Quotas(org.clone());
        match self.stores.get_bytes_opt(&key).await? {
            None => Ok((OrgQuotas::default(), None)),
            Some((bytes, meta)) => {
                let quotas = serde_json::from_slice(&bytes)
                    .map_err(|e| StorageError::backend("decode", &key.path(), e))?;
                Ok((quotas, Some(meta.etag)))
            }
        }
    }

    /// Sets the limits given in `limit` on `level` (a measure left `None`
    /// keeps its current limit); returns the level's limits now.
    pub async fn set_quota(&self, level: &Scope, limit: Limit) -> Result<Limit, PublishError> {
        if limit.is_empty() {
            return Err(PublishError::InvalidQuota(
                "give a limit: --max-bytes and/or --max-packages (JSON: max_bytes, max_packages)"
                    .to_owned(),
            ));
        }
        self.require_org(&level.org).await?;
        let now = self
            .change_quotas(&level.org, |quotas| {
                let entry = quotas.levels.entry(level.to_string()).or_default();
                entry.max_bytes = limit.max_bytes.or(entry.max_bytes);
                entry.max_packages = limit.max_packages.or(entry.max_packages);
                Ok(*entry)
            })
            .await?;
        let event = AuditEvent::new(action::QUOTA_SET, Target::scope(level))
            .detail("max_bytes", now.max_bytes)
            .detail("max_packages", now.max_packages);
        self.audit(event).await;
        Ok(now)
    }

    /// Removes the limits of `level`; returns what they were.
    pub async fn unset_quota(&self, level: &Scope) -> Result<Limit, PublishError> {
        self.require_org(&level.org).await?;
        let was = self
            .change_quotas(&level.org, |quotas| {
                quotas
                    .levels
                    .remove(&level.to_string())
                    .ok_or_else(|| PublishError::NotFound(format!("{level} has no quota")))
            })
            .await?;
        let event = AuditEvent::new(action::QUOTA_REMOVE, Target::scope(level))
            .detail("max_bytes", was.max_bytes)
            .detail("max_packages", was.max_packages);
        self.audit(event).await;
        Ok(was)
    }

    /// Read, change, write only if unchanged (on stores without conditional
    /// writes the last writer wins: quota changes are rare admin actions).
    async fn change_quotas<T>(
        &self,
        org: &Org,
        change: impl Fn(&mut OrgQuotas) -> Result<T, PublishError>,
    ) -> Result<T, PublishError> {
        let key = Key::Quotas(org.clone());
        for _ in 0..MAX_WRITE_TRIES {
            let (mut quotas, etag) = self.read_quotas(org).await?;
            let out = change(&mut quotas)?;
            let body = serde_json::to_vec(&quotas)
                .map_err(|e| StorageError::backend("encode", &key.path(), e))?;
            let mode = etag.map_or(PutMode::Create, PutMode::Update);
            match self.stores.put(&key, body.into(), mode).await {
                Ok(_) => return Ok(out),
                Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(PublishError::NotFound(format!(
            "{}: the quotas of {org} kept changing: try again",
            key.path()
        )))
    }

    /// Checks `planned` additions against the quotas of their orgs and
    /// reserves them; refuses ([`PublishError::QuotaExceeded`]) when one
    /// would take a level over its limit. Costs one GET per org without
    /// quotas; with quotas, what reading each limited level's usage costs
    /// (`docs/quotas.md`). Keep the reservation until the publish has ended.
    pub async fn reserve_quota(&self, planned: &[Planned]) -> Result<Reservation, PublishError> {
        let mut reservation = Reservation {
            ledger: Some(self.quota_ledger.clone()),
            held: Vec::new(),
        };
        let orgs: BTreeSet<Org> = planned.iter().map(|p| p.repo.org.clone()).collect();
        for org in &orgs {
            let quotas = self.quotas(org).await?;
            if quotas.levels.is_empty() {
                continue;
            }
            let mine: Vec<Planned> = planned
                .iter()
                .filter(|p| &p.repo.org == org)
                .cloned()
                .collect();
            let limited: BTreeMap<Scope, Limit> = mine
                .iter()
                .flat_map(|p| levels_of(&p.repo))
                .filter_map(|level| Some((level.clone(), quotas.get(&level)?)))
                .collect();
            if limited.is_empty() {
                continue;
            }
            let org_lock = self.quota_ledger.org_lock(org);
            let _one_at_a_time = org_lock.lock().await;
            let mut mine = mine;
            let mut refined = false;
            let mut adding;
            let mut committed = BTreeMap::new();
            // Reserved first, then published: an upload of this process that
            // ends in between is counted twice (safe), never missed.
            let mut reserved: BTreeMap<Scope, Usage> = BTreeMap::new();
            for level in limited.keys() {
                let held = self.quota_ledger.reserved(&level.to_string());
                reserved.insert(level.clone(), held);
            }
            'check: loop {
                adding = plan::by_level(&mine, limited.keys());
                for (level, limit) in &limited {
                    let add = adding.get(level).copied().unwrap_or_default();
                    if add == Usage::default() {
                        continue;
                    }
                    if !committed.contains_key(level) {
                        committed.insert(level.clone(), self.level_usage(level).await?);
                    }
                    let used = committed[level].plus(reserved[level]);
                    let Some((what, used, add, max)) = limit.exceeded(used, add) else {
                        continue;
                    };
                    if !refined {
                        // Packages already published with the same bytes add nothing.
                        refined = true;
                        mine = self.drop_published(mine).await?;
                        continue 'check;
                    }
                    let file = mine
                        .iter()
                        .find(|p| levels_of(&p.repo).contains(level))
                        .map_or_else(String::new, |p| p.file.clone());
                    return Err(PublishError::QuotaExceeded {
                        file,
                        level: level.to_string(),
                        what,
                        used,
                        adding: add,
                        limit: max,
                    });
                }
                break;
            }
            let mut reserved = lock(&self.quota_ledger.reserved);
            for (level, add) in adding {
                if add == Usage::default() {
                    continue;
                }
                let name = level.to_string();
                let entry = reserved.entry(name.clone()).or_default();
                *entry = entry.plus(add);
                reservation.held.push((name, add));
            }
        }
        Ok(reservation)
    }

    /// The planned additions whose root does not already list the same bytes.
    async fn drop_published(&self, planned: Vec<Planned>) -> Result<Vec<Planned>, PublishError> {
        let mut kept = Vec::with_capacity(planned.len());
        for p in planned {
            if self.listed_sha256(&p.root, &p.entry).await?.as_deref() != Some(&p.sha256) {
                kept.push(p);
            }
        }
        Ok(kept)
    }

    /// The SHA-256 of the record under `entry` in `root`, if listed.
    async fn listed_sha256(
        &self,
        root: &RootId,
        entry: &str,
    ) -> Result<Option<String>, PublishError> {
        use crate::core;
        use crate::repo::Family;
        Ok(match root {
            RootId::Suite(_) => {
                let format = crate::formats::deb::DebSuite::default();
                core::record(&self.stores, &format, root, entry)
                    .await?
                    .map(|r| r.sha256)
            }
            RootId::Arch(arch) if arch.repo.distro.family() == Family::Rpm => {
                core::record(&self.stores, &self.rpm_format(), root, entry)
                    .await?
                    .map(|r| r.sha256)
            }
            RootId::Arch(_) => {
                core::record(&self.stores, &crate::formats::apk::Alpine, root, entry)
                    .await?
                    .map(|r| r.sha256)
            }
            RootId::Settings(_) => None,
        })
    }
}

#[cfg(test)]
mod tests;
