//! Retention: per repository, "keep the newest N versions of each package"
//! and/or "remove versions published more than D days ago".
//!
//! A rule is one private object per repository (`retention.json` beside
//! `repo.json`), replaced whole. It is applied by `packages gc` and by the
//! service's periodic gc ([`Publisher::gc`] applies every rule first), and
//! on demand ([`Publisher::apply_retention`], with a dry run). Packages go
//! through the normal remove path ([`Publisher::remove`]): tombstones, the
//! grace period, then gc deletes the files. Every removal is in the audit
//! log (`retention.apply`, with the rule).
//!
//! Versions are ordered per format ([`retention_version`](super::retention_version)),
//! per package name and arch. The age is the package file's time in the
//! store (apk and RPM; Debian pool files are shared by suites, so Debian
//! rules use `keep` only). `max_age_days` never removes the newest version
//! of a package: a package stays installable until a newer one replaces it.

use std::collections::BTreeMap;

use super::retention_version::compare;
use super::*;
use crate::audit::{AuditEvent, Target, action};
use crate::repo::Family;

/// A repository's retention rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// Keep at most this many versions of each package (per arch), the newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<usize>,
    /// Remove versions whose file is older than this many days (never the newest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<u64>,
}

impl RetentionRule {
    /// Whether the rule removes nothing.
    pub fn is_empty(&self) -> bool {
        self.keep.is_none() && self.max_age_days.is_none()
    }
}

/// What a rule removes (or would, in a dry run) from one repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RetentionOutcome {
    /// The repository (`org/distro/version/repo`).
    pub repo: String,
    /// The rule applied.
    pub rule: RetentionRule,
    /// Whether nothing was removed (a dry run).
    pub dry_run: bool,
    /// The packages removed (or that would be), with why.
    pub removed: Vec<RetentionRemoval>,
}

/// One package version a rule removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RetentionRemoval {
    /// The arch.
    pub arch: String,
    /// The file.
    pub file: String,
    /// The package name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// `keep` or `max_age`.
    pub reason: String,
}

impl Publisher {
    /// The retention rule of `repo` (empty: none).
    pub async fn retention(&self, repo: &RepoId) -> Result<RetentionRule, PublishError> {
        let key = Key::Retention(repo.clone());
        match self.stores.get_bytes_opt(&key).await? {
            None => Ok(RetentionRule::default()),
            Some((bytes, _)) => Ok(serde_json::from_slice(&bytes)
                .map_err(|e| StorageError::backend("decode", &key.path(), e))?),
        }
    }

    /// Sets (an empty rule: clears) the retention rule of an existing `repo`.
    pub async fn set_retention(
        &self,
        repo: &RepoId,
        rule: &RetentionRule,
    ) -> Result<(), PublishError> {
        self.require_repo(repo).await?;
        if rule.keep == Some(0) {
            return Err(PublishError::Name(crate::repo::NameError {
                kind: "retention keep",
                value: "0".to_owned(),
                reason: "must be at least 1 (to remove every package, remove them)",
            }));
        }
        let key = Key::Retention(repo.clone());
        if rule.is_empty() {
            self.stores.delete(&key).await?;
        } else {
            let body = serde_json::to_vec_pretty(rule)
                .map_err(|e| StorageError::backend("encode", &key.path(), e))?;
            self.stores
                .put(&key, body.into(), PutMode::Overwrite)
                .await?;
        }
        let event = AuditEvent::new(action::RETENTION_SET, Target::repo(repo)).detail("rule", rule);
        self.audit(event).await;
        Ok(())
    }

    /// Applies `repo`'s rule: removes (unless `dry_run`) what it says must go.
    pub async fn apply_retention(
        &self,
        repo: &RepoId,
        dry_run: bool,
    ) -> Result<RetentionOutcome, PublishError> {
        let rule = self.retention(repo).await?;
        let removed = if rule.is_empty() {
            Vec::new()
        } else {
            self.plan_retention(repo, &rule).await?
        };
        if !dry_run && !removed.is_empty() {
            for r in &removed {
                let arch = Arch::parse(&r.arch)?;
                match self.remove(repo, Some(&arch), &r.file).await {
                    Ok(_) | Err(PublishError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            let event = AuditEvent::new(action::RETENTION_APPLY, Target::repo(repo))
                .detail("rule", &rule)
                .detail("removed", &removed);
            self.audit(event).await;
        }
        Ok(RetentionOutcome {
            repo: repo.to_string(),
            rule,
            dry_run,
            removed,
        })
    }

    /// Applies every repository's rule (`gc` calls this first); a failing
    /// repository is logged and skipped.
    pub async fn apply_all_retention(&self, dry_run: bool) -> Vec<RetentionOutcome> {
        let objects = match self
            .stores
            .list(Tree::Private, crate::repo::CONFIG_PREFIX)
            .await
        {
            Ok(objects) => objects,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list retention rules");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for object in objects {
            let Some(repo) = Key::parse_retention(&object.key) else {
                continue;
            };
            match self.apply_retention(&repo, dry_run).await {
                Ok(outcome) => out.push(outcome),
                Err(e) => tracing::warn!(repo = %repo, error = %e, "retention failed"),
            }
        }
        out
    }

    /// The package versions `rule` removes from `repo`.
    async fn plan_retention(
        &self,
        repo: &RepoId,
        rule: &RetentionRule,
    ) -> Result<Vec<RetentionRemoval>, PublishError> {
        let family = repo.distro.family();
        let listed = self.list(repo, None).await?;
        let ages = match rule.max_age_days {
            Some(_) if family != Family::Deb => self.file_times(repo, &listed).await?,
            _ => BTreeMap::new(),
        };
        let cutoff = rule
            .max_age_days
            .map(|days| SystemTime::now() - Duration::from_secs(days.saturating_mul(86_400)));
        let mut groups: BTreeMap<(&str, &str), Vec<&Listed>> = BTreeMap::new();
        for l in &listed {
            groups.entry((&l.arch, &l.record.name)).or_default().push(l);
        }
        let mut out = Vec::new();
        for versions in groups.values_mut() {
            // Newest first.
            versions.sort_by(|a, b| compare(family, &b.record.version, &a.record.version));
            for (i, l) in versions.iter().enumerate() {
                let over_count = rule.keep.is_some_and(|keep| i >= keep);
                let too_old = i > 0
                    && cutoff.is_some_and(|cutoff| {
                        ages.get(&(l.arch.clone(), l.file.clone()))
                            .is_some_and(|t| *t < cutoff)
                    });
                if over_count || too_old {
                    out.push(RetentionRemoval {
                        arch: l.arch.clone(),
                        file: l.file.clone(),
                        name: l.record.name.clone(),
                        version: l.record.version.clone(),
                        reason: if over_count { "keep" } else { "max_age" }.to_owned(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// When each listed file was written to the store (apk and RPM).
    async fn file_times(
        &self,
        repo: &RepoId,
        listed: &[Listed],
    ) -> Result<BTreeMap<(String, String), SystemTime>, PublishError> {
        let arches: BTreeSet<&str> = listed.iter().map(|l| l.arch.as_str()).collect();
        let mut out = BTreeMap::new();
        for arch in arches {
            let repo_arch = repo.arch(Arch::parse(arch)?);
            let prefix = match repo.distro.family() {
                Family::Rpm => format!(
                    "{}{}/Packages/",
                    crate::repo::STATIC_PREFIX,
                    crate::repo::rpm_arch_dir(&repo_arch)
                ),
                _ => Key::arch_public_prefix(&repo_arch),
            };
            for object in self.stores.list(Tree::Public, &prefix).await? {
                let (Some(file), Some(time)) =
                    (object.key.rsplit('/').next(), object.last_modified)
                else {
                    continue;
                };
                out.insert((arch.to_owned(), file.to_owned()), time);
            }
        }
        Ok(out)
    }
}
