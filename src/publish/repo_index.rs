//! Checking and repairing every index of one repository at once: what
//! `packages index check` and `index repair` do, computed once for the CLI's
//! direct mode and for the API route its remote mode calls, so both print
//! the same report.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{PublishError, Publisher};
use crate::core::RootProblem;
use crate::repo::{Arch, Family, RepoId};

/// The published index of one arch, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArchCheck {
    /// The arch.
    pub arch: String,
    /// What is wrong (empty: nothing); each is `{"problem": "<kind>", ...}`.
    #[schema(value_type = Vec<Object>)]
    pub problems: Vec<RootProblem>,
}

/// A Debian-style suite, checked (its components share one signed `InRelease`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SuiteCheck {
    /// The suite (`acme/debian/bookworm`).
    pub suite: String,
    /// What is wrong (empty: nothing); each is `{"problem": "<kind>", ...}`.
    #[schema(value_type = Vec<Object>)]
    pub problems: Vec<RootProblem>,
}

/// What `index check` found: one report per arch, or one for a Debian-style suite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum IndexCheck {
    /// A Debian-style suite.
    Suite(SuiteCheck),
    /// Each arch of an apk or RPM repository.
    Arches(Vec<ArchCheck>),
}

impl IndexCheck {
    /// How many indexes have a problem that is more than a warning (they need `index repair`).
    pub fn failing(&self) -> usize {
        let fails = |problems: &[RootProblem]| problems.iter().any(|p| !p.is_warning());
        match self {
            IndexCheck::Suite(suite) => usize::from(fails(&suite.problems)),
            IndexCheck::Arches(arches) => arches.iter().filter(|a| fails(&a.problems)).count(),
        }
    }
}

/// A record `index repair` dropped because clients cannot read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DroppedRecord {
    /// Its file name.
    pub file: String,
    /// Why clients cannot read it.
    pub reason: String,
}

/// One arch, republished from its records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArchRepair {
    /// The arch.
    pub arch: String,
    /// Packages in the republished index.
    pub packages: usize,
    /// Records dropped (apk only).
    pub dropped: Vec<DroppedRecord>,
}

/// A Debian-style suite, republished from its records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SuiteRepair {
    /// The suite.
    pub suite: String,
    /// Packages in the republished suite.
    pub packages: usize,
}

/// What `index repair` did: per arch, or for a Debian-style suite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum IndexRepair {
    /// A Debian-style suite.
    Suite(SuiteRepair),
    /// Each arch of an apk or RPM repository.
    Arches(Vec<ArchRepair>),
}

impl Publisher {
    /// Records a repair of `repo`'s indexes, with what it republished.
    async fn audit_repair(&self, repo: &RepoId, repaired: &IndexRepair) {
        let event = crate::audit::AuditEvent::new(
            crate::audit::action::INDEX_REPAIR,
            crate::audit::Target::repo(repo),
        )
        .detail("indexes", repaired);
        self.audit(event).await;
    }

    /// `arch`, or every arch of `repo`; an error when there is none.
    async fn arches_or(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
    ) -> Result<Vec<Arch>, PublishError> {
        let arches = match arch {
            Some(arch) => vec![arch.clone()],
            None => self.arches(repo).await?,
        };
        if arches.is_empty() {
            return Err(PublishError::NotFound(format!(
                "{repo} has no arches (name one with --arch)"
            )));
        }
        Ok(arches)
    }

    /// Compares the published indexes of `repo` (one arch, or all; a
    /// Debian-style distro: the whole suite) with their records.
    pub async fn check_repo_indexes(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
    ) -> Result<IndexCheck, PublishError> {
        if repo.distro.family() == Family::Deb {
            let suite = repo.suite()?;
            let problems = self.check_suite(&suite).await?;
            return Ok(IndexCheck::Suite(SuiteCheck {
                suite: suite.to_string(),
                problems,
            }));
        }
        let mut report = Vec::new();
        for arch in self.arches_or(repo, arch).await? {
            let repo_arch = repo.arch(arch.clone());
            let problems = if repo.distro.family() == Family::Rpm {
                self.check_rpm_arch(&repo_arch).await?
            } else {
                self.check_index(&repo_arch).await?
            };
            report.push(ArchCheck {
                arch: arch.to_string(),
                problems,
            });
        }
        Ok(IndexCheck::Arches(report))
    }

    /// Republishes the indexes of `repo` from their records (one arch, or
    /// all; a Debian-style distro: the whole suite), dropping apk records
    /// clients cannot read.
    pub async fn repair_repo_indexes(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
    ) -> Result<IndexRepair, PublishError> {
        if repo.distro.family() == Family::Deb {
            let suite = repo.suite()?;
            let done = self.repair_suite(&suite).await?;
            let repaired = IndexRepair::Suite(SuiteRepair {
                suite: suite.to_string(),
                packages: done.reindexed.packages,
            });
            self.audit_repair(repo, &repaired).await;
            return Ok(repaired);
        }
        let mut report = Vec::new();
        for arch in self.arches_or(repo, arch).await? {
            let repo_arch = repo.arch(arch.clone());
            let (packages, dropped) = if repo.distro.family() == Family::Rpm {
                let done = self.repair_rpm_arch(&repo_arch).await?;
                (done.reindexed.packages, Vec::new())
            } else {
                let done = self.repair_index(&repo_arch).await?;
                let dropped = done
                    .dropped
                    .into_iter()
                    .map(|d| DroppedRecord {
                        file: d.entry,
                        reason: d.reason,
                    })
                    .collect();
                (done.reindexed.packages, dropped)
            };
            report.push(ArchRepair {
                arch: arch.to_string(),
                packages,
                dropped,
            });
        }
        let repaired = IndexRepair::Arches(report);
        self.audit_repair(repo, &repaired).await;
        Ok(repaired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_keep_the_cli_shapes_and_read_back() {
        let check = IndexCheck::Arches(vec![ArchCheck {
            arch: "x86_64".into(),
            problems: vec![RootProblem::Missing, RootProblem::Pending { count: 2 }],
        }]);
        let json = serde_json::to_value(&check).unwrap();
        assert_eq!(
            json,
            serde_json::json!([{"arch": "x86_64", "problems": [
                {"problem": "missing"}, {"problem": "pending", "count": 2}
            ]}])
        );
        assert_eq!(serde_json::from_value::<IndexCheck>(json).unwrap(), check);
        assert_eq!(check.failing(), 1);
        let suite = IndexCheck::Suite(SuiteCheck {
            suite: "acme/debian/bookworm".into(),
            problems: vec![RootProblem::OverLimits { warnings: vec![] }],
        });
        let json = serde_json::to_value(&suite).unwrap();
        assert_eq!(serde_json::from_value::<IndexCheck>(json).unwrap(), suite);
        assert_eq!(suite.failing(), 0);
        let repair = IndexRepair::Suite(SuiteRepair {
            suite: "acme/debian/bookworm".into(),
            packages: 3,
        });
        let json = serde_json::to_value(&repair).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"suite": "acme/debian/bookworm", "packages": 3})
        );
        assert_eq!(serde_json::from_value::<IndexRepair>(json).unwrap(), repair);
    }
}
