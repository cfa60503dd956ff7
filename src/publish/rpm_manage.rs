//! RPM use cases besides upload: list, remove, check, repair, republish.

use super::rpm::summary;
use super::*;
use crate::core;
use crate::formats::rpm::RpmRecord;
use crate::repo::RootId;
use crate::signing::Signer;

impl Publisher {
    /// Every package of an RPM repository (all arches, or one).
    pub async fn list_rpm(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
    ) -> Result<Vec<Listed>, PublishError> {
        self.require_org(&repo.org).await?;
        let format = self.rpm_format();
        let arches = match arch {
            Some(arch) => vec![arch.clone()],
            None => self.arches(repo).await?,
        };
        let mut out = Vec::new();
        for arch in arches {
            let root = RootId::Arch(repo.arch(arch.clone()));
            let (state, _) = core::read_state(&self.stores, &format, &root).await?;
            out.extend(state.records.into_values().map(|r| Listed {
                arch: arch.to_string(),
                file: r.file_name.clone(),
                record: summary(&r),
            }));
        }
        Ok(out)
    }

    /// Removes packages matching `what` (a file name, or a package name for
    /// every version) from an RPM repository; their files stay downloadable
    /// for the grace period.
    pub async fn remove_rpm(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
        what: &str,
    ) -> Result<Vec<Listed>, PublishError> {
        let matching: Vec<Listed> = self
            .list_rpm(repo, arch)
            .await?
            .into_iter()
            .filter(|l| l.file == what || l.record.name == what)
            .collect();
        if matching.is_empty() {
            return Err(PublishError::NotFound(format!(
                "no package `{what}` in {repo}"
            )));
        }
        let mut pending: BTreeMap<RepoArch, Vec<core::PendingChange<RpmRecord>>> = BTreeMap::new();
        for listed in &matching {
            let repo_arch = repo.arch(Arch::parse(&listed.arch)?);
            let file = Segment::parse("file name", &listed.file)?;
            let tombstone = Tombstone {
                removed: unix_now(),
                sha256: listed.record.sha256.clone(),
            };
            let body = serde_json::to_vec(&tombstone)
                .map_err(|e| StorageError::backend("encode", &listed.file, e))?;
            self.stores
                .put(
                    &Key::Tombstone {
                        arch: repo_arch.clone(),
                        file,
                    },
                    body.into(),
                    PutMode::Overwrite,
                )
                .await?;
            let change = core::add_pending::<RpmRecord>(
                &self.stores,
                &RootId::Arch(repo_arch.clone()),
                core::Change::Remove {
                    entry: listed.file.clone(),
                },
            )
            .await?;
            pending.entry(repo_arch).or_default().push(change);
        }
        let format = self.rpm_format();
        for (arch, changes) in pending {
            self.publish_rpm_arch(&format, &arch, changes, None).await?;
        }
        Ok(matching)
    }

    /// Compares an RPM repo arch's published files with its records, and
    /// checks that `repomd.xml.asc` is a signature of `repomd.xml` by a key
    /// of the repository's key set.
    pub async fn check_rpm_arch(
        &self,
        arch: &RepoArch,
    ) -> Result<Vec<core::RootProblem>, PublishError> {
        self.require_org(&arch.repo.org).await?;
        let format = self.rpm_format();
        let mut problems = core::check(&self.stores, &format, &RootId::Arch(arch.clone())).await?;
        let repodata = |name: &str| -> Result<Key, PublishError> {
            Ok(Key::Repodata {
                arch: arch.clone(),
                file: Segment::parse("file name", name)?,
            })
        };
        let repomd = self.stores.get_bytes_opt(&repodata("repomd.xml")?).await?;
        let asc = self.stores.get_bytes_opt(&repodata("repomd.xml.asc")?).await?;
        if let Some((repomd, _)) = repomd {
            let set = keys::key_set_for_scope(&self.stores, &arch.repo.scope()).await?;
            let good = asc.is_some_and(|(asc, _)| {
                set.keys().iter().any(|k| {
                    k.key
                        .verify(&repomd, &asc, crate::signing::SignatureFormat::Detached)
                })
            });
            if !good && !problems.contains(&core::RootProblem::BadSignature) {
                problems.push(core::RootProblem::BadSignature);
            }
        }
        Ok(problems)
    }

    /// Republishes an RPM repo arch from its records (see [`core::repair`]).
    pub async fn repair_rpm_arch(
        &self,
        arch: &RepoArch,
    ) -> Result<core::Repaired<RpmRecord>, PublishError> {
        self.require_org(&arch.repo.org).await?;
        let format = self.rpm_format();
        Ok(core::repair(&self.stores, &format, &RootId::Arch(arch.clone())).await?)
    }

    /// Re-signs and rewrites every metadata file of an RPM repo arch.
    pub async fn republish_rpm_arch(&self, arch: &RepoArch) -> Result<(), PublishError> {
        let format = self.rpm_format();
        core::republish(&self.stores, &format, &RootId::Arch(arch.clone())).await?;
        Ok(())
    }
}
