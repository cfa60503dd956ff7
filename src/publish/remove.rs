//! Listing and removing packages.

use super::*;

impl Publisher {
    /// The packages of a repository (all arches, or one).
    pub async fn list(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
    ) -> Result<Vec<Listed>, PublishError> {
        match repo.distro.family() {
            crate::repo::Family::Deb => return self.list_deb(repo, arch).await,
            crate::repo::Family::Rpm => return self.list_rpm(repo, arch).await,
            crate::repo::Family::Apk => {}
        }
        self.require_org(&repo.org).await?;
        let arches = match arch {
            Some(arch) => vec![arch.clone()],
            None => self.arches(repo).await?,
        };
        let mut out = Vec::new();
        for arch in arches {
            let (state, _) = index::read_state(&self.stores, &repo.arch(arch.clone())).await?;
            out.extend(state.records.into_iter().map(|(file, record)| Listed {
                arch: arch.to_string(),
                file,
                record,
            }));
        }
        Ok(out)
    }

    /// Removes packages matching `what` (a file name `<name>-<version>.apk`,
    /// or a package name for all its versions) from the index at once; their
    /// files stay downloadable for the grace period.
    pub async fn remove(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
        what: &str,
    ) -> Result<Vec<Listed>, PublishError> {
        match repo.distro.family() {
            crate::repo::Family::Deb => return self.remove_deb(repo, arch, what).await,
            crate::repo::Family::Rpm => return self.remove_rpm(repo, arch, what).await,
            crate::repo::Family::Apk => {}
        }
        let listed = self.list(repo, arch).await?;
        let matching: Vec<Listed> = listed
            .into_iter()
            .filter(|l| l.file == what || l.record.name == what)
            .collect();
        if matching.is_empty() {
            return Err(PublishError::NotFound(format!(
                "no package `{what}` in {repo}"
            )));
        }
        let mut touched = BTreeSet::new();
        for listed in &matching {
            let repo_arch = repo.arch(Arch::parse(&listed.arch)?);
            let file = Segment::parse("file name", &listed.file)?;
            self.write_tombstone(&repo_arch, file, &listed.record.sha256)
                .await?;
            index::add_pending(
                &self.stores,
                &repo_arch,
                Change::Remove {
                    entry: listed.file.clone(),
                },
            )
            .await?;
            touched.insert(repo_arch);
        }
        // A removed noarch package must not come back in arches added later.
        self.forget_noarch(repo, &matching).await?;
        for repo_arch in &touched {
            let expect: Vec<Expect<'_>> = matching
                .iter()
                .filter(|l| repo_arch.arch.as_str() == l.arch)
                .map(|l| Expect::Removed(&l.file))
                .collect();
            self.publish_root(repo_arch, &expect).await?;
        }
        self.audit_remove(repo, &matching).await;
        Ok(matching)
    }

    /// Records that `file` left `arch`'s index now, so `gc` deletes it after
    /// the grace period.
    pub(super) async fn write_tombstone(
        &self,
        arch: &RepoArch,
        file: Segment,
        sha256: &str,
    ) -> Result<(), PublishError> {
        let tombstone = Tombstone {
            removed: unix_now(),
            sha256: sha256.to_owned(),
        };
        let body = serde_json::to_vec(&tombstone)
            .map_err(|e| StorageError::backend("encode", file.as_str(), e))?;
        self.stores
            .put(
                &Key::Tombstone {
                    arch: arch.clone(),
                    file,
                },
                body.into(),
                PutMode::Overwrite,
            )
            .await?;
        Ok(())
    }
}
