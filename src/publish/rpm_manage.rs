//! RPM use cases besides upload: list, remove, check, repair, republish.

use super::rpm::summary;
use super::*;
use crate::core;
use crate::formats::rpm::RpmRecord;
use crate::repo::RootId;

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
            self.write_tombstone(&repo_arch, file, &listed.record.sha256)
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
        self.audit_remove(repo, &matching).await;
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
        let (repomd, asc) = (repodata("repomd.xml")?, repodata("repomd.xml.asc")?);
        if !self
            .detached_signature_matches(&arch.repo.scope(), &repomd, &asc)
            .await?
            && !problems.contains(&core::RootProblem::BadSignature)
        {
            problems.push(core::RootProblem::BadSignature);
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
        let repaired = core::repair(&self.stores, &format, &RootId::Arch(arch.clone())).await?;
        self.sync_version_aliases(arch).await?;
        Ok(repaired)
    }

    /// Re-signs and rewrites every metadata file of an RPM repo arch.
    pub async fn republish_rpm_arch(&self, arch: &RepoArch) -> Result<(), PublishError> {
        let format = self.rpm_format();
        core::republish(&self.stores, &format, &RootId::Arch(arch.clone())).await?;
        self.sync_version_aliases(arch).await?;
        Ok(())
    }

    /// Recomputes the records of an RPM repo arch from its package files and
    /// republishes its metadata (disaster recovery, when the private tree
    /// is lost). Removed packages (tombstoned) stay out. The records know
    /// only the published bytes: an upload of the original (unsigned) file
    /// is still recognised, as signing it again gives the same bytes.
    pub async fn rebuild_rpm_arch(&self, arch: &RepoArch) -> Result<usize, PublishError> {
        use futures::{StreamExt, TryStreamExt};
        self.require_org(&arch.repo.org).await?;
        let format = self.rpm_format();
        let prefix = format!(
            "{}{}/Packages/",
            crate::repo::STATIC_PREFIX,
            crate::repo::rpm_arch_dir(arch)
        );
        let tombstones: BTreeSet<String> = self
            .stores
            .list(Tree::Private, &Key::tombstone_prefix(arch))
            .await?
            .iter()
            .filter_map(|o| {
                o.key
                    .rsplit('/')
                    .next()?
                    .strip_suffix(".json")
                    .map(str::to_owned)
            })
            .collect();
        let mut files = Vec::new();
        for object in self.stores.list(Tree::Public, &prefix).await? {
            let Some(rest) = object.key.strip_prefix(&prefix) else {
                continue;
            };
            // `<letter>/<file>.rpm`
            let Some((_, file)) = rest.split_once('/') else {
                continue;
            };
            if file.contains('/') || !file.ends_with(".rpm") || tombstones.contains(file) {
                continue;
            }
            files.push((Segment::parse("file name", file)?, object.last_modified));
        }
        let read: Vec<(String, RpmRecord)> = futures::stream::iter(files)
            .map(|(file, modified)| async move {
                let key = Key::RpmPackage {
                    arch: arch.clone(),
                    file: file.clone(),
                };
                let staged = self.download(&key).await?;
                let package = self.inspect_rpm(staged.path(), &key.path()).await?;
                let letter: String = file
                    .as_str()
                    .chars()
                    .take(1)
                    .flat_map(char::to_lowercase)
                    .collect();
                let facts = crate::formats::rpm::repodata::PublishedFile {
                    location_href: format!("Packages/{letter}/{file}"),
                    sha256: package.sha256.clone(),
                    size: package.size_package,
                    time_file: modified
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map_or_else(unix_now, |d| d.as_secs()),
                    header_start: package.header_start,
                    header_end: package.header_end,
                };
                let signed_by = None;
                let record =
                    super::rpm::record_for(&package, &facts, package.sha256.clone(), signed_by);
                Ok::<_, PublishError>((record.file_name.clone(), record))
            })
            .buffer_unordered(8)
            .try_collect()
            .await?;
        let records: BTreeMap<String, RpmRecord> = read.into_iter().collect();
        let count = records.len();
        let root = RootId::Arch(arch.clone());
        core::replace_records(&self.stores, &format, &root, records).await?;
        self.publish_rpm_arch(&format, arch, Vec::new(), None)
            .await?;
        self.audit_rebuild(arch, count).await;
        Ok(count)
    }
}
