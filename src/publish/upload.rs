//! Upload: check a package, store it in every target arch, publish.

use super::*;

/// Where a stored package's bytes come from.
pub(super) enum PackageSource {
    /// The uploaded file.
    Upload(Payload),
    /// Another package object (noarch fan-out), copied in the store.
    CopyOf(Key),
}

impl Publisher {
    /// Checks and reads a package file without storing anything.
    pub async fn inspect(
        &self,
        path: &Path,
        display_name: &str,
    ) -> Result<ApkPackage, PublishError> {
        let limits = self.limits;
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path)?;
            read_package(std::io::BufReader::with_capacity(64 << 10, file), &limits)
        })
        .await
        .map_err(|e| StorageError::backend("read package", display_name, e))?
        .map_err(|reason| PublishError::Package {
            file: display_name.to_owned(),
            reason,
        })
    }

    /// Publishes one package: checks it, stores it in every target arch and
    /// returns once the signed indexes list it.
    #[tracing::instrument(skip(self, upload), fields(repo = %upload.repo, file = %upload.display_name))]
    pub async fn upload(&self, upload: &Upload) -> Result<Vec<Published>, PublishError> {
        match upload.repo.distro.family() {
            crate::repo::Family::Deb => return self.upload_deb(upload).await,
            crate::repo::Family::Rpm => return self.upload_rpm(upload).await,
            crate::repo::Family::Apk => {}
        }
        // The signing key signs this upload's publishes: one look-up. A
        // repo with a key has an org, so the org is checked only without one.
        let key = keys::signing_key_for(&self.stores, &upload.repo).await;
        if key.is_err() {
            self.require_org(&upload.repo.org).await?;
        }
        let package = self.inspect(&upload.path, &upload.display_name).await?;
        let record = package.record.clone();
        let file = Segment::parse("file name", &record.file_name())?;

        let targets = self.targets(upload, &package).await?;
        // Fail before writing anything when no key can sign the index.
        key?;
        // Quotas next: nothing is written over one (src/publish/quota.rs).
        let mut planned =
            quota::Planned::apk(&upload.repo, &targets, &record, &upload.display_name);
        if self.has_quotas(&upload.repo.org).await? {
            let fill = self.planned_fill(&upload.repo, &targets, &upload.display_name);
            planned.extend(fill.await?);
        }
        let _quota = self.reserve_quota(&planned).await?;
        // The arches next (refused over the cap before any package is written).
        let (new_arches, _) = self.extend_settings(&upload.repo, &targets, None).await?;

        let mut published = Vec::new();
        for arch in &targets {
            let repo_arch = upload.repo.arch(arch.clone());
            let record = record.clone().with_arch(arch.as_str());
            let (unchanged, _pending) = self
                .store_package(
                    &repo_arch,
                    &file,
                    &record,
                    PackageSource::Upload(Payload::File(upload.path.clone())),
                )
                .await?;
            published.push(Published {
                file: record.file_name(),
                arch: arch.to_string(),
                record,
                unchanged,
            });
        }
        if package.is_noarch() {
            self.extend_settings(&upload.repo, &[], Some(&package.record))
                .await?;
        }
        // Through the process's group commit: concurrent uploads to one arch
        // share publish rounds (src/publish/commit.rs).
        for done in &published {
            let arch = upload.repo.arch(Arch::parse(&done.arch)?);
            self.publish_root(&arch, &[Expect::Added(&done.record)])
                .await?;
        }
        if !new_arches.is_empty() {
            let (settings, _) = self.repo_settings(&upload.repo).await?;
            self.fill_new_arches(&upload.repo, &new_arches, &settings)
                .await?;
        }
        self.audit_published(&upload.repo, &published).await;
        Ok(published)
    }

    /// Where a package goes: its own arch, or for noarch the repo's arches plus those named.
    pub(super) async fn targets(
        &self,
        upload: &Upload,
        package: &ApkPackage,
    ) -> Result<Vec<Arch>, PublishError> {
        if !package.is_noarch() {
            let own = Arch::parse(package.arch())?;
            for asked in upload.arch.iter().chain(&upload.extra_arches) {
                if asked != &own {
                    return Err(PublishError::ArchMismatch {
                        file: upload.display_name.clone(),
                        package: own.to_string(),
                        target: asked.to_string(),
                    });
                }
            }
            return Ok(vec![own]);
        }
        let mut targets: BTreeSet<Arch> = upload
            .arch
            .iter()
            .chain(&upload.extra_arches)
            .cloned()
            .collect();
        // An explicit --arch on a noarch upload means "this arch"; without
        // one, the package goes everywhere the repo serves.
        if targets.is_empty() {
            targets.extend(self.arches(&upload.repo).await?);
        }
        if targets.is_empty() {
            return Err(PublishError::NoArchTargets {
                file: upload.display_name.clone(),
            });
        }
        Ok(targets.into_iter().collect())
    }

    /// Copies the repo's noarch packages into arches it just gained.
    pub(super) async fn fill_new_arches(
        &self,
        repo: &RepoId,
        new: &[Arch],
        settings: &RepoSettings,
    ) -> Result<(), PublishError> {
        if new.is_empty() || settings.noarch.is_empty() {
            return Ok(());
        }
        let Some(source_arch) = settings
            .arches
            .iter()
            .filter_map(|a| Arch::parse(a).ok())
            .find(|a| !new.contains(a))
        else {
            return Ok(());
        };
        for arch in new {
            let target = repo.arch(arch.clone());
            for (file, record) in &settings.noarch {
                let file = Segment::parse("file name", file)?;
                let from = Key::Package {
                    arch: repo.arch(source_arch.clone()),
                    file: file.clone(),
                };
                let record = record.clone().with_arch(arch.as_str());
                // A server-side copy where the store has one (issue 8 item 3).
                self.store_package(&target, &file, &record, PackageSource::CopyOf(from))
                    .await?;
            }
            self.publish_root(&target, &[]).await?;
        }
        Ok(())
    }

    /// Streams an object to a temporary file.
    pub(super) async fn download(
        &self,
        key: &Key,
    ) -> Result<tempfile::NamedTempFile, PublishError> {
        let path = key.path();
        let mut got = self.stores.store(key.tree()).get(&path).await?;
        let staged = tempfile::NamedTempFile::new()
            .map_err(|e| StorageError::backend("download", &path, e))?;
        let mut out = tokio::fs::File::create(staged.path())
            .await
            .map_err(|e| StorageError::backend("download", &path, e))?;
        tokio::io::copy(&mut got.body, &mut out)
            .await
            .map_err(|e| StorageError::backend("download", &path, e))?;
        Ok(staged)
    }

    /// Stores the package file (immutably) and records the pending index change.
    /// Returns whether the identical package was already there, and the
    /// pending change stored (none when the index already lists it).
    pub(super) async fn store_package(
        &self,
        arch: &RepoArch,
        file: &Segment,
        record: &ApkRecord,
        payload: PackageSource,
    ) -> Result<(bool, Option<PendingChange>), PublishError> {
        let key = Key::Package {
            arch: arch.clone(),
            file: file.clone(),
        };
        let tombstone_key = Key::Tombstone {
            arch: arch.clone(),
            file: file.clone(),
        };
        let tombstone = self.stores.get_bytes_opt(&tombstone_key).await?;
        if let Some((bytes, _)) = &tombstone {
            let tombstone: Tombstone = serde_json::from_slice(bytes)
                .map_err(|e| StorageError::backend("decode", &tombstone_key.path(), e))?;
            let until = tombstone.removed + self.delete_grace.as_secs();
            if tombstone.sha256 != record.sha256 && unix_now() < until {
                return Err(PublishError::RecentlyRemoved {
                    file: file.to_string(),
                    arch: arch.to_string(),
                    until,
                });
            }
        }
        let conditional = self.stores.conditional_writes().await?;
        let mut unchanged = false;
        // With conditional writes the `Create` below tells whether the name
        // exists; without, ask first (a blind write would replace it).
        let copy = matches!(payload, PackageSource::CopyOf(_));
        let existing = if conditional && !copy {
            None
        } else {
            // A copy replaces what is there: ask first.
            self.stores.head(&key).await?
        };
        let write = match existing {
            Some(_) => {
                self.check_same_bytes(&key, arch, file, record).await?;
                unchanged = true;
                false
            }
            None => true,
        };
        if write {
            let mode = if conditional {
                PutMode::Create
            } else {
                PutMode::Overwrite
            };
            let written = match payload {
                PackageSource::Upload(payload) => {
                    self.stores.put(&key, payload, mode).await.map(|_| ())
                }
                PackageSource::CopyOf(from) => self.stores.copy(&from, &key).await,
            };
            match written {
                Ok(_) => {}
                Err(StorageError::AlreadyExists { .. }) => {
                    self.check_same_bytes(&key, arch, file, record).await?;
                    unchanged = true;
                }
                Err(e) => return Err(e.into()),
            }
        }
        // A re-upload after removal (same bytes) revives the name.
        if tombstone.is_some() {
            self.stores.delete(&tombstone_key).await?;
        }
        if unchanged
            && index::record(&self.stores, arch, file.as_str())
                .await?
                .as_ref()
                == Some(record)
        {
            return Ok((true, None));
        }
        let pending =
            index::add_pending(&self.stores, arch, Change::Add(Box::new(record.clone()))).await?;
        // Not in the index (removed, or a crash before the index): published now.
        Ok((false, Some(pending)))
    }

    /// Refuses a different package under an existing name (reads the stored bytes).
    pub(super) async fn check_same_bytes(
        &self,
        key: &Key,
        arch: &RepoArch,
        file: &Segment,
        record: &ApkRecord,
    ) -> Result<(), PublishError> {
        let stored_sha = match index::record(&self.stores, arch, file.as_str()).await? {
            Some(existing) => existing.sha256,
            None => self.hash_object(key).await?,
        };
        if stored_sha == record.sha256 {
            Ok(())
        } else {
            Err(PublishError::Conflict {
                file: file.to_string(),
                arch: arch.to_string(),
            })
        }
    }

    pub(super) async fn hash_object(&self, key: &Key) -> Result<String, PublishError> {
        let path = key.path();
        let mut got = self.stores.store(key.tree()).get(&path).await?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = got
                .body
                .read(&mut buf)
                .await
                .map_err(|e| StorageError::backend("get", &path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hex::encode(hasher.finalize()))
    }
}
