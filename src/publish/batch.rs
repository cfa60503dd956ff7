//! Publish rounds shared by concurrent writers of one process (through
//! [`CommitGate`](super::commit::CommitGate)), and multi-file uploads that
//! publish each touched repo arch once.
//!
//! A multi-file upload runs in three phases:
//! 1. every file is read and checked (in parallel, bounded); if any file is
//!    refused, the call fails naming it and **nothing** is written;
//! 2. the files are stored with their pending changes (bounded parallel
//!    writes). A file refused by what the store holds (a different package
//!    under the same name, a name removed less than the grace period ago)
//!    is left out and reported; the other files go on;
//! 3. each touched repo arch is published once, in one round that merges all
//!    of its files.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, TryStreamExt};

use super::quota::Planned;
use super::upload::PackageSource;
use super::{PublishError, Published, Publisher, Upload};
use crate::formats::apk::{ApkPackage, ApkRecord};
use crate::index::{self, IndexError, IndexProblem, Reindexed};
use crate::keys;
use crate::repo::{Arch, RepoArch, RepoId, Segment};
use crate::storage::Payload;

/// Files stored at once by a multi-file upload (each is a few requests).
const STORE_CONCURRENCY: usize = 16;

/// What a caller expects a round to have published, to tell whether a round
/// that gave up ([`IndexError::Contended`]) published it anyway.
#[derive(Debug, Clone, Copy)]
pub enum Expect<'a> {
    /// This record is listed.
    Added(&'a ApkRecord),
    /// This file name is not listed.
    Removed(&'a str),
}

/// Files checked (in parallel) at once: the machine's cores, at least 2.
fn check_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2)
}

impl Publisher {
    /// Publishes `arch` in a round that starts after this call, shared with
    /// the concurrent callers of this publisher (group commit): returns once
    /// every change of `arch` stored before the call is in its signed index.
    /// If the round gives up under contention, the expected changes are
    /// looked up in the published state before the error is returned, so a
    /// writer never reports a failure for a change that was published.
    pub async fn publish_root(
        &self,
        arch: &RepoArch,
        expect: &[Expect<'_>],
    ) -> Result<Reindexed, PublishError> {
        let stores = self.stores.clone();
        let round = self
            .commits
            .commit(arch, || async move {
                let done = index::reindex(&stores, arch).await?;
                // Version aliases follow in the same round (version_alias.rs).
                self.sync_version_aliases(arch).await?;
                Ok(done)
            })
            .await;
        match round {
            Ok(done) => Ok(done.value),
            Err(IndexError::Contended(root)) => {
                if !expect.is_empty() && self.is_published(arch, expect).await? {
                    tracing::info!(%arch, "round gave up, but the changes are published");
                    let (manifest, _) = index::read_manifest(&self.stores, arch).await?;
                    return Ok(Reindexed {
                        generation: manifest.generation,
                        packages: manifest.packages(),
                        wrote_index: false,
                    });
                }
                Err(IndexError::Contended(root).into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the records hold every expected change and the signed index
    /// shows those records (other changes may still be pending).
    async fn is_published(
        &self,
        arch: &RepoArch,
        expect: &[Expect<'_>],
    ) -> Result<bool, PublishError> {
        for expected in expect {
            let (file, want) = match expected {
                Expect::Added(record) => (record.file_name(), Some(*record)),
                Expect::Removed(file) => ((*file).to_owned(), None),
            };
            if index::record(&self.stores, arch, &file).await?.as_ref() != want {
                return Ok(false);
            }
        }
        let problems = index::check(&self.stores, arch).await?;
        Ok(problems
            .iter()
            .all(|p| matches!(p, IndexProblem::Pending { .. })))
    }

    /// Publishes several packages: checks them all before writing anything,
    /// stores them, then publishes each touched repo arch once.
    ///
    /// Fails without writing anything when a file is refused by its checks
    /// (the error names the first such file in `uploads` order). A file
    /// refused by what the store holds ([`PublishError::Conflict`],
    /// [`PublishError::RecentlyRemoved`]) fails alone: its entry in the
    /// result, in `uploads` order, is the error, and the others are published.
    pub async fn upload_many(
        &self,
        uploads: &[Upload],
    ) -> Result<Vec<Result<Vec<Published>, PublishError>>, PublishError> {
        use crate::repo::Family;
        let families: BTreeSet<Family> = uploads.iter().map(|u| u.repo.distro.family()).collect();
        if families.len() > 1 {
            return Err(PublishError::NotFound(
                "one upload goes to one distro family: upload .apk, .deb and .rpm files separately"
                    .to_owned(),
            ));
        }
        if families.contains(&Family::Deb) {
            return self.upload_many_deb(uploads).await;
        }
        if families.contains(&Family::Rpm) {
            return self.upload_many_rpm(uploads).await;
        }
        for org in uploads.iter().map(|u| &u.repo.org).collect::<BTreeSet<_>>() {
            self.require_org(org).await?;
        }
        // 1. Check every file; nothing is written before all pass.
        let packages: Vec<ApkPackage> = futures::stream::iter(uploads)
            .map(|upload| async move {
                let package = self.inspect(&upload.path, &upload.display_name).await?;
                Segment::parse("file name", &package.record.file_name())?;
                Ok::<_, PublishError>(package)
            })
            .buffered(check_concurrency())
            .try_collect()
            .await?;
        // A noarch package with no arch named goes into every arch of its
        // repo, including those the batch's other packages bring.
        let mut brought: BTreeMap<&RepoId, BTreeSet<Arch>> = BTreeMap::new();
        for (upload, package) in uploads.iter().zip(&packages) {
            if let (false, Ok(arch)) = (package.is_noarch(), Arch::parse(package.arch())) {
                brought.entry(&upload.repo).or_default().insert(arch);
            }
        }
        let mut served: BTreeMap<&RepoId, Vec<Arch>> = BTreeMap::new();
        let mut checked: Vec<(ApkPackage, Vec<Arch>)> = Vec::with_capacity(packages.len());
        for (upload, package) in uploads.iter().zip(packages) {
            let everywhere =
                package.is_noarch() && upload.arch.is_none() && upload.extra_arches.is_empty();
            let targets = match brought.get(&upload.repo) {
                Some(extra) if everywhere => {
                    if !served.contains_key(&upload.repo) {
                        served.insert(&upload.repo, self.arches(&upload.repo).await?);
                    }
                    let mut all: BTreeSet<Arch> = extra.clone();
                    all.extend(served[&upload.repo].iter().cloned());
                    all.into_iter().collect()
                }
                _ => self.targets(upload, &package).await?,
            };
            checked.push((package, targets));
        }
        let repos: BTreeSet<&RepoId> = uploads.iter().map(|u| &u.repo).collect();
        for repo in &repos {
            // Fail before writing anything when no key can sign the index.
            keys::signing_key_for(&self.stores, repo).await?;
        }

        // Quotas: nothing is written over one (src/publish/quota.rs).
        let mut planned = Vec::new();
        for (upload, (package, targets)) in uploads.iter().zip(&checked) {
            let record = &package.record;
            planned.extend(Planned::apk(
                &upload.repo,
                targets,
                record,
                &upload.display_name,
            ));
        }
        let orgs: BTreeSet<crate::repo::Org> = uploads.iter().map(|u| u.repo.org.clone()).collect();
        for org in &orgs {
            if self.has_quotas(org).await? {
                for (upload, (_, targets)) in uploads.iter().zip(&checked) {
                    if &upload.repo.org == org {
                        let name = &upload.display_name;
                        planned.extend(self.planned_fill(&upload.repo, targets, name).await?);
                    }
                }
            }
        }
        let _quota = self.reserve_quota(&planned).await?;

        // 2. Store the files and their pending changes.
        let jobs = uploads.iter().zip(&checked).enumerate().flat_map(
            |(i, (upload, (package, targets)))| {
                targets
                    .iter()
                    .map(move |arch| (i, upload, &package.record, arch))
            },
        );
        let stored: Vec<(usize, Result<Published, PublishError>)> = futures::stream::iter(jobs)
            .map(|(i, upload, record, arch)| async move {
                let repo_arch = upload.repo.arch(arch.clone());
                let record = record.clone().with_arch(arch.as_str());
                let file = Segment::parse("file name", &record.file_name())?;
                let stored = self
                    .store_package(
                        &repo_arch,
                        &file,
                        &record,
                        PackageSource::Upload(Payload::File(upload.path.clone())),
                    )
                    .await;
                let published = match stored {
                    Ok((unchanged, _pending)) => Ok(Published {
                        file: record.file_name(),
                        arch: arch.to_string(),
                        record,
                        unchanged,
                    }),
                    Err(
                        e @ (PublishError::Conflict { .. } | PublishError::RecentlyRemoved { .. }),
                    ) => Err(e),
                    Err(e) => return Err(e),
                };
                Ok::<_, PublishError>((i, published))
            })
            .buffer_unordered(STORE_CONCURRENCY)
            .try_collect()
            .await?;
        let mut results: Vec<Result<Vec<Published>, PublishError>> =
            uploads.iter().map(|_| Ok(Vec::new())).collect();
        for (i, published) in stored {
            let slot = &mut results[i];
            match published {
                Ok(p) => {
                    if let Ok(list) = slot {
                        list.push(p);
                    }
                }
                Err(e) => {
                    if slot.is_ok() {
                        *slot = Err(e);
                    }
                }
            }
        }

        // Settings: the arches each repo now serves, and its noarch packages.
        let mut fill = Vec::new();
        for repo in &repos {
            let mut arches: BTreeSet<Arch> = BTreeSet::new();
            let mut noarch: Vec<&ApkRecord> = Vec::new();
            for ((upload, (package, targets)), result) in uploads.iter().zip(&checked).zip(&results)
            {
                if &&upload.repo != repo || result.is_err() {
                    continue;
                }
                arches.extend(targets.iter().cloned());
                if package.is_noarch() {
                    noarch.push(&package.record);
                }
            }
            let arches: Vec<Arch> = arches.into_iter().collect();
            let mut new_arches = BTreeSet::new();
            let (new, mut settings) = self.extend_settings(repo, &arches, None).await?;
            new_arches.extend(new);
            for record in noarch {
                let (new, now) = self.extend_settings(repo, &arches, Some(record)).await?;
                new_arches.extend(new);
                settings = now;
            }
            fill.push((*repo, new_arches.into_iter().collect::<Vec<_>>(), settings));
        }

        // 3. One round per touched repo arch, side by side.
        let mut expected: BTreeMap<RepoArch, Vec<&ApkRecord>> = BTreeMap::new();
        for (upload, result) in uploads.iter().zip(&results) {
            for published in result.iter().flatten() {
                let arch = Arch::parse(&published.arch)?;
                expected
                    .entry(upload.repo.arch(arch))
                    .or_default()
                    .push(&published.record);
            }
        }
        futures::future::try_join_all(expected.iter().map(|(arch, records)| async move {
            let expect: Vec<Expect<'_>> = records.iter().map(|r| Expect::Added(r)).collect();
            self.publish_root(arch, &expect).await
        }))
        .await?;
        for (repo, new, settings) in fill {
            self.fill_new_arches(repo, &new, &settings).await?;
        }
        self.audit_uploads(uploads, &results).await;
        Ok(results)
    }
}
