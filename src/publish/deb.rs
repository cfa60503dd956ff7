//! Debian-style use cases: upload into a suite's component, list, remove.
//!
//! A `.deb` is stored once in the distro's pool (`pool/<component>/<prefix>/
//! <source>/<file>`), shared by every suite that lists it; its record goes
//! into the suite's root ([`RootId::Suite`]) through the publish core, which
//! signs one `InRelease` for every component and arch of the suite.

use futures::StreamExt;

use super::*;
use crate::core::{self, Known};
use crate::formats::deb::release::SuiteKeys;
use crate::formats::deb::{DebLimits, DebPackage, read_deb};
use crate::formats::deb::{DebRecord, DebSuite};
use crate::repo::{Family, RootId, SuiteId};

/// How many files of one upload are stored at once.
const STORE_CONCURRENCY: usize = 8;

/// What a pool file holds, kept in the private tree beside the pool: a
/// different file under the same pool name is refused naming the suite
/// that published the other bytes first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRecord {
    /// SHA-256 of the pool file.
    pub sha256: String,
    /// Its size.
    pub size: u64,
    /// The suite it was first published to.
    pub suite: String,
}

/// Fields of a `Packages` stanza, by (case-insensitive) name.
fn stanza_field<'a>(stanza: &'a str, name: &str) -> Option<&'a str> {
    stanza.lines().find_map(|line| {
        let (field, value) = line.split_once(':')?;
        field.eq_ignore_ascii_case(name).then(|| value.trim_start())
    })
}

/// A list field (`Depends`, `Provides`) split into its entries.
fn list_field(stanza: &str, name: &str) -> Vec<String> {
    stanza_field(stanza, name)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The fields every format shares (name, version, arch, sizes, dependencies,
/// SHA-256), in the shape uploads and listings report them.
pub fn summary(record: &DebRecord) -> ApkRecord {
    let stanza = &record.stanza;
    let text = |name| stanza_field(stanza, name).unwrap_or_default().to_owned();
    ApkRecord {
        name: record.package.clone(),
        version: record.version.clone(),
        arch: record.architecture.clone(),
        file_size: record.size,
        installed_size: stanza_field(stanza, "Installed-Size")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024),
        description: text("Description"),
        url: text("Homepage"),
        maintainer: text("Maintainer"),
        origin: record.source.clone(),
        depends: list_field(stanza, "Depends"),
        provides: list_field(stanza, "Provides"),
        sha256: record.sha256.clone(),
        ..ApkRecord::default()
    }
}

impl Publisher {
    /// The suite of a Debian-style repository, refusing a suite alias.
    async fn suite_of(&self, repo: &RepoId) -> Result<(SuiteId, DebSuite), PublishError> {
        let suite = repo.suite()?;
        let aliases = super::aliases::read_aliases(&self.stores, &suite.org, suite.distro).await?;
        if let Some(target) = aliases.0.get(suite.suite.as_str()) {
            return Err(PublishError::NotFound(format!(
                "`{}` is an alias of suite `{target}`: publish to `{target}`",
                suite.suite
            )));
        }
        let format = aliases.format_for(&suite);
        Ok((suite, format))
    }

    /// Checks and reads a `.deb` without storing anything.
    pub async fn inspect_deb(
        &self,
        path: &Path,
        display_name: &str,
    ) -> Result<DebPackage, PublishError> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path)?;
            read_deb(
                std::io::BufReader::with_capacity(64 << 10, file),
                &DebLimits::default(),
            )
        })
        .await
        .map_err(|e| StorageError::backend("read package", display_name, e))?
        .map_err(|reason| PublishError::Deb {
            file: display_name.to_owned(),
            reason,
        })
    }

    /// Publishes one `.deb` into the suite (version) and component (repo) of
    /// `upload.repo`; returns once the suite's signed `InRelease` lists it.
    pub async fn upload_deb(&self, upload: &Upload) -> Result<Vec<Published>, PublishError> {
        self.upload_many_deb(std::slice::from_ref(upload))
            .await?
            .pop()
            .expect("one result per upload")
    }

    /// Publishes `.deb` files: checks every file first (nothing is written
    /// if one is refused), stores them in the pool, then publishes each
    /// suite once. A file refused by what the store holds (a different file
    /// under its pool name) fails alone, as in [`Publisher::upload_many`].
    #[tracing::instrument(skip(self, uploads), fields(files = uploads.len()))]
    pub async fn upload_many_deb(
        &self,
        uploads: &[Upload],
    ) -> Result<Vec<Result<Vec<Published>, PublishError>>, PublishError> {
        let mut suites: BTreeMap<SuiteId, (DebSuite, Option<SuiteKeys>)> = BTreeMap::new();
        for upload in uploads {
            debug_assert_eq!(upload.repo.distro.family(), Family::Deb);
            let (suite, format) = self.suite_of(&upload.repo).await?;
            if suites.contains_key(&suite) {
                continue;
            }
            // Fail before writing anything when no key can sign the suite.
            let key = match keys::key_set_for_scope(&self.stores, &suite.scope()).await {
                Ok(set) => crate::formats::Format::pick_key(&format, &set)?,
                Err(e) => {
                    self.require_org(&upload.repo.org).await?;
                    return Err(e.into());
                }
            };
            suites.insert(suite, (format, Some(key)));
        }
        // 1. Check every file; nothing is written before all pass.
        let mut checked = Vec::with_capacity(uploads.len());
        for upload in uploads {
            checked.push(self.check_deb(upload).await?);
        }
        // Quotas: nothing is written over one (src/publish/quota.rs).
        let planned: Vec<super::quota::Planned> = uploads
            .iter()
            .zip(&checked)
            .map(|(upload, (suite, _, record, _))| super::quota::Planned {
                repo: upload.repo.clone(),
                root: RootId::Suite(suite.clone()),
                entry: record.entry(),
                sha256: record.sha256.clone(),
                bytes: record.size,
                file: upload.display_name.clone(),
            })
            .collect();
        let _quota = self.reserve_quota(&planned).await?;
        // 2. Store each in the pool and record its pending change.
        // Several files at a time: each costs a few sequential requests.
        let suites_ref = &suites;
        let stored: Vec<_> = futures::stream::iter(checked)
            .map(|(suite, pool, record, path)| async move {
                let format = &suites_ref[&suite].0;
                let root = RootId::Suite(suite.clone());
                let unchanged = self.store_pool_file(&suite, &pool, &record, &path).await?;
                let listed = core::record(&self.stores, format, &root, &record.entry()).await?;
                let mut change = None;
                if !(unchanged && listed.as_ref() == Some(&record)) {
                    change = Some(
                        core::add_pending(
                            &self.stores,
                            &root,
                            core::Change::Add(Box::new(record.clone())),
                        )
                        .await?,
                    );
                }
                Ok::<_, PublishError>((suite, published(&record, unchanged), change))
            })
            .buffered(STORE_CONCURRENCY)
            .collect()
            .await;
        let mut results = Vec::with_capacity(uploads.len());
        let mut pending: BTreeMap<SuiteId, Vec<core::PendingChange<DebRecord>>> = BTreeMap::new();
        for outcome in stored {
            match outcome {
                Ok((suite, done, change)) => {
                    if let Some(change) = change {
                        pending.entry(suite).or_default().push(change);
                    }
                    results.push(Ok(vec![done]));
                }
                Err(e @ PublishError::PoolConflict { .. }) => results.push(Err(e)),
                Err(e) => return Err(e),
            }
        }
        // 3. One publish per suite, through the process's group commit:
        // concurrent uploads to one suite share publish rounds.
        for (suite, changes) in pending {
            let (format, key) = suites.get_mut(&suite).expect("every suite was resolved");
            let (format, key) = (&*format, key.take());
            let root = RootId::Suite(suite.clone());
            self.suite_commits
                .commit(&suite, || async move {
                    let known = Known {
                        pending: changes,
                        key,
                    };
                    core::reindex_with(&self.stores, format, &root, known).await
                })
                .await?;
        }
        self.audit_uploads(uploads, &results).await;
        Ok(results)
    }

    /// Reads and checks one upload; returns its suite, pool key, record and file.
    async fn check_deb(
        &self,
        upload: &Upload,
    ) -> Result<(SuiteId, Key, DebRecord, PathBuf), PublishError> {
        let suite = upload.repo.suite()?;
        let package = self.inspect_deb(&upload.path, &upload.display_name).await?;
        if !package.is_all() {
            for asked in upload.arch.iter().chain(&upload.extra_arches) {
                if asked.as_str() != package.architecture {
                    return Err(PublishError::ArchMismatch {
                        file: upload.display_name.clone(),
                        package: package.architecture.clone(),
                        target: asked.to_string(),
                    });
                }
            }
        }
        // The arch becomes a folder name (`binary-<arch>`).
        if !package.is_all() {
            Arch::parse(&package.architecture)?;
        }
        let component = upload.repo.repo.clone();
        let file = Segment::parse("file name", &package.file_name())?;
        let source = Segment::parse("source package", &package.source)?;
        let pool = Key::Pool {
            org: suite.org.clone(),
            distro: suite.distro,
            component: component.clone(),
            source,
            file: file.clone(),
        };
        let pool_path = pool.path();
        let distro_prefix = format!("{}{}/", crate::repo::STATIC_PREFIX, suite.distro_path());
        let filename = pool_path
            .strip_prefix(&distro_prefix)
            .unwrap_or(&pool_path)
            .to_owned();
        let record = DebRecord {
            component: component.to_string(),
            package: package.package.clone(),
            version: package.version.clone(),
            architecture: package.architecture.clone(),
            file_name: file.to_string(),
            source: package.source.clone(),
            filename: filename.clone(),
            sha256: package.sha256.clone(),
            size: package.size,
            stanza: package.stanza(&filename),
        };
        Ok((suite, pool, record, upload.path.clone()))
    }

    /// Stores a pool file once (immutable); returns whether the same bytes
    /// were there already. Different bytes under the name are refused.
    async fn store_pool_file(
        &self,
        suite: &SuiteId,
        pool: &Key,
        record: &DebRecord,
        path: &Path,
    ) -> Result<bool, PublishError> {
        let Key::Pool {
            org,
            distro,
            component,
            source,
            file,
        } = pool
        else {
            unreachable!("store_pool_file takes a pool key");
        };
        let record_key = Key::PoolRecord {
            org: org.clone(),
            distro: *distro,
            component: component.clone(),
            source: source.clone(),
            file: file.clone(),
        };
        let conflict = |held: PoolRecord| PublishError::PoolConflict {
            file: record.filename.clone(),
            suite: held.suite,
        };
        if let Some((bytes, _)) = self.stores.get_bytes_opt(&record_key).await? {
            let held: PoolRecord = serde_json::from_slice(&bytes)
                .map_err(|e| StorageError::backend("decode", &record_key.path(), e))?;
            if held.sha256 != record.sha256 {
                return Err(conflict(held));
            }
            if self.stores.head(pool).await?.is_some() {
                // Rewritten so `gc` sees a recent upload of the file.
                self.stores
                    .put(&record_key, bytes.to_vec().into(), PutMode::Overwrite)
                    .await?;
                return Ok(true);
            }
        }
        let conditional = self.stores.conditional_writes().await?;
        let existing = if conditional {
            None
        } else {
            self.stores.head(pool).await?
        };
        let mut unchanged = existing.is_some();
        if existing.is_none() {
            let mode = if conditional {
                PutMode::Create
            } else {
                PutMode::Overwrite
            };
            match self
                .stores
                .put(pool, Payload::File(path.to_owned()), mode)
                .await
            {
                Ok(_) => {}
                Err(StorageError::AlreadyExists { .. }) => unchanged = true,
                Err(e) => return Err(e.into()),
            }
        }
        if unchanged && self.hash_object(pool).await? != record.sha256 {
            return Err(conflict(PoolRecord {
                sha256: String::new(),
                size: 0,
                suite: "another suite".to_owned(),
            }));
        }
        let held = PoolRecord {
            sha256: record.sha256.clone(),
            size: record.size,
            suite: suite.suite.to_string(),
        };
        let body = serde_json::to_vec(&held)
            .map_err(|e| StorageError::backend("encode", &record_key.path(), e))?;
        let mode = if conditional {
            PutMode::Create
        } else {
            PutMode::Overwrite
        };
        match self.stores.put(&record_key, body.into(), mode).await {
            Ok(_) | Err(StorageError::AlreadyExists { .. }) => Ok(unchanged),
            Err(e) => Err(e.into()),
        }
    }

    /// Every package of a Debian-style repository (one component of a suite).
    pub async fn list_deb(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
    ) -> Result<Vec<Listed>, PublishError> {
        self.require_org(&repo.org).await?;
        let (suite, format) = self.suite_of(repo).await?;
        self.list_in(repo, arch, &suite, &format).await
    }

    /// [`Publisher::list_deb`] once the suite and its format are known.
    async fn list_in(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
        suite: &SuiteId,
        format: &DebSuite,
    ) -> Result<Vec<Listed>, PublishError> {
        let root = RootId::Suite(suite.clone());
        let (state, _) = core::read_state(&self.stores, format, &root).await?;
        Ok(state
            .records
            .into_values()
            .filter(|r| r.component == repo.repo.as_str())
            .filter(|r| {
                arch.is_none_or(|a| r.architecture == a.as_str() || r.architecture == "all")
            })
            .map(|r| Listed {
                arch: r.architecture.clone(),
                file: r.file_name.clone(),
                record: summary(&r),
            })
            .collect())
    }

    /// Removes packages matching `what` (a file name, or a package name for
    /// every version) from one component of a suite. The pool file stays
    /// (other suites may list it); `gc` deletes unreferenced pool files.
    pub async fn remove_deb(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
        what: &str,
    ) -> Result<Vec<Listed>, PublishError> {
        self.require_org(&repo.org).await?;
        let (suite, format) = self.suite_of(repo).await?;
        let listed = self.list_in(repo, arch, &suite, &format).await?;
        let matching: Vec<Listed> = listed
            .into_iter()
            .filter(|l| l.file == what || l.record.name == what)
            .collect();
        if matching.is_empty() {
            return Err(PublishError::NotFound(format!(
                "no package `{what}` in {repo}"
            )));
        }
        let root = RootId::Suite(suite);
        let mut pending = Vec::new();
        for l in &matching {
            pending.push(
                core::add_pending::<DebRecord>(
                    &self.stores,
                    &root,
                    core::Change::Remove {
                        entry: format!("{}/{}", repo.repo, l.file),
                    },
                )
                .await?,
            );
        }
        core::reindex_with(&self.stores, &format, &root, Known { pending, key: None }).await?;
        self.audit_remove(repo, &matching).await;
        Ok(matching)
    }

    /// Compares a suite's published files with its records (see
    /// [`core::check`]), and checks that `Release.gpg` is a signature of
    /// `Release` by a key of the suite's key set.
    pub async fn check_suite(
        &self,
        suite: &SuiteId,
    ) -> Result<Vec<crate::core::RootProblem>, PublishError> {
        use crate::repo::DistsFile;
        self.require_org(&suite.org).await?;
        let aliases = super::aliases::read_aliases(&self.stores, &suite.org, suite.distro).await?;
        let format = aliases.format_for(suite);
        let mut problems =
            core::check(&self.stores, &format, &RootId::Suite(suite.clone())).await?;
        let dists = |file| Key::Dists {
            suite: suite.clone(),
            file,
        };
        let (release, gpg) = (dists(DistsFile::Release), dists(DistsFile::ReleaseGpg));
        if !self
            .detached_signature_matches(&suite.scope(), &release, &gpg)
            .await?
            && !problems.contains(&core::RootProblem::BadSignature)
        {
            problems.push(core::RootProblem::BadSignature);
        }
        Ok(problems)
    }

    /// Republishes a suite from its records (see [`core::repair`]).
    pub async fn repair_suite(
        &self,
        suite: &SuiteId,
    ) -> Result<core::Repaired<DebRecord>, PublishError> {
        self.require_org(&suite.org).await?;
        let aliases = super::aliases::read_aliases(&self.stores, &suite.org, suite.distro).await?;
        let format = aliases.format_for(suite);
        Ok(core::repair(&self.stores, &format, &RootId::Suite(suite.clone())).await?)
    }

    /// Re-signs and rewrites every index file of a suite from its records.
    pub async fn republish_suite(&self, suite: &SuiteId) -> Result<(), PublishError> {
        let aliases = super::aliases::read_aliases(&self.stores, &suite.org, suite.distro).await?;
        let format = aliases.format_for(suite);
        core::republish(&self.stores, &format, &RootId::Suite(suite.clone())).await?;
        Ok(())
    }
}

fn published(record: &DebRecord, unchanged: bool) -> Published {
    Published {
        file: record.file_name.clone(),
        arch: record.architecture.clone(),
        record: summary(record),
        unchanged,
    }
}
