//! The use cases shared by the CLI and the HTTP service: organizations,
//! upload, remove, list, rebuild and garbage collection.
//!
//! Nothing is written before a package has passed every check, and a call
//! returns only once the package is in the signed index clients fetch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::formats::apk::{ApkError, ApkLimits, ApkPackage, ApkRecord, read_package};
use crate::index::{self, Change, IndexError};
use crate::keys::{self, KeyError};
use crate::repo::{Arch, Key, NameError, Org, RepoArch, RepoId, Segment, Tree};
use crate::storage::{Payload, PutMode, StorageError};
use crate::stores::Stores;

mod batch;
pub mod commit;

pub use batch::Expect;

/// Default time a removed package's file stays downloadable.
pub const DEFAULT_DELETE_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Why a use case failed. Client mistakes and server failures are told apart
/// by [`PublishError::is_client_error`].
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The package file was refused.
    #[error("{file}: {reason}")]
    Package {
        /// The file as the user named it.
        file: String,
        /// Why.
        reason: ApkError,
    },
    /// A name is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The org does not exist.
    #[error("organization `{0}` does not exist (create it with `packages org create {0}`)")]
    OrgNotFound(String),
    /// The org exists already.
    #[error("organization `{0}` already exists")]
    OrgExists(String),
    /// The org still has packages.
    #[error("organization `{0}` is not empty (use --force to delete it with everything in it)")]
    OrgNotEmpty(String),
    /// The package is for another arch.
    #[error("{file}: package is for `{package}`, not `{target}`")]
    ArchMismatch {
        /// The file.
        file: String,
        /// Its arch.
        package: String,
        /// The arch asked for.
        target: String,
    },
    /// A noarch package with nowhere to go.
    #[error("{file}: noarch package and the repo has no arches yet: name them with --arch")]
    NoArchTargets {
        /// The file.
        file: String,
    },
    /// Same file name, different bytes.
    #[error(
        "{file}: {arch} already has a different package with this name and version (packages are immutable: remove it first)"
    )]
    Conflict {
        /// The file name.
        file: String,
        /// Where.
        arch: String,
    },
    /// A removed package's name is reused too soon.
    #[error(
        "{file}: was removed from {arch} less than the grace period ago; different bytes under this name are refused until {until} (Unix time)"
    )]
    RecentlyRemoved {
        /// The file name.
        file: String,
        /// Where.
        arch: String,
        /// When the name frees up.
        until: u64,
    },
    /// Nothing matched.
    #[error("{0}")]
    NotFound(String),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// A key problem.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl PublishError {
    /// Whether the caller is at fault (HTTP 4xx) rather than the server.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            PublishError::Index(_)
                | PublishError::Storage(_)
                | PublishError::Key(KeyError::Storage(_))
        ) && !matches!(
            self,
            PublishError::Package {
                reason: ApkError::Io(_),
                ..
            }
        )
    }
}

/// An organization's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgRecord {
    /// The name.
    pub name: String,
    /// Creation time, Unix seconds.
    pub created: u64,
}

/// A repository's settings: the arches it serves, and its noarch packages
/// (copied into every arch, including ones added later).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoSettings {
    /// Arches served.
    pub arches: BTreeSet<String>,
    /// Noarch packages, by file name (arch field `noarch`).
    #[serde(default)]
    pub noarch: BTreeMap<String, ApkRecord>,
}

/// A removed package kept for its grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// Removal time, Unix seconds.
    pub removed: u64,
    /// SHA-256 of the removed file.
    pub sha256: String,
}

/// One upload.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Where to.
    pub repo: RepoId,
    /// The arch asked for (must match the package, unless it is noarch).
    pub arch: Option<Arch>,
    /// More arches for a noarch package.
    pub extra_arches: Vec<Arch>,
    /// The package on local disk.
    pub path: PathBuf,
    /// How the user named the file, for messages.
    pub display_name: String,
}

/// What an upload did in one arch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Published {
    /// The arch.
    pub arch: String,
    /// The index record, as published.
    pub record: ApkRecord,
    /// Whether the identical package was there already.
    pub unchanged: bool,
}

/// A package as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// The arch it is indexed in.
    pub arch: String,
    /// The file name.
    pub file: String,
    /// The record.
    pub record: ApkRecord,
}

/// The publishing use cases over a pair of stores.
#[derive(Debug, Clone)]
pub struct Publisher {
    stores: Stores,
    limits: ApkLimits,
    delete_grace: Duration,
    orphan_grace: Duration,
    /// Publish rounds shared by this publisher's concurrent writers (and its clones').
    commits: std::sync::Arc<commit::CommitGate<RepoArch, index::Reindexed>>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl Publisher {
    /// A publisher with default limits.
    pub fn new(stores: Stores) -> Self {
        Self {
            stores,
            limits: ApkLimits::default(),
            delete_grace: DEFAULT_DELETE_GRACE,
            orphan_grace: index::PENDING_GRACE,
            commits: Default::default(),
        }
    }

    /// Sets the package limits.
    pub fn with_limits(mut self, limits: ApkLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets how long removed files stay downloadable.
    pub fn with_delete_grace(mut self, grace: Duration) -> Self {
        self.delete_grace = grace;
        self
    }

    /// Sets how old an unreferenced record chunk must be before `gc` deletes
    /// it (default [`index::PENDING_GRACE`]; shorter only in tests, where no
    /// other writer runs).
    pub fn with_orphan_grace(mut self, grace: Duration) -> Self {
        self.orphan_grace = grace;
        self
    }

    /// The stores.
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    // ---- organizations -------------------------------------------------

    /// Creates an organization.
    pub async fn create_org(&self, org: &Org) -> Result<OrgRecord, PublishError> {
        let record = OrgRecord {
            name: org.to_string(),
            created: unix_now(),
        };
        let body =
            serde_json::to_vec(&record).map_err(|e| StorageError::backend("encode", "org", e))?;
        let key = Key::Org(org.clone());
        if self.stores.head(&key).await?.is_some() {
            return Err(PublishError::OrgExists(org.to_string()));
        }
        match self.stores.put(&key, body.into(), PutMode::Create).await {
            Ok(_) => Ok(record),
            Err(StorageError::AlreadyExists { .. }) => {
                Err(PublishError::OrgExists(org.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The organization's record.
    pub async fn get_org(&self, org: &Org) -> Result<OrgRecord, PublishError> {
        let key = Key::Org(org.clone());
        let Some((bytes, _)) = self.stores.get_bytes_opt(&key).await? else {
            return Err(PublishError::OrgNotFound(org.to_string()));
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| StorageError::backend("decode", &key.path(), e).into())
    }

    /// Every organization, by name.
    pub async fn list_orgs(&self) -> Result<Vec<String>, PublishError> {
        let prefix = Key::orgs_prefix();
        let objects = self.stores.list(Tree::Private, &prefix).await?;
        Ok(objects
            .iter()
            .filter_map(|o| o.key.strip_prefix(&prefix)?.strip_suffix(".json"))
            .map(str::to_owned)
            .collect())
    }

    /// Deletes an organization; with `force`, everything in it too.
    pub async fn delete_org(&self, org: &Org, force: bool) -> Result<(), PublishError> {
        self.get_org(org).await?;
        let public = self
            .stores
            .list(Tree::Public, &Key::org_public_prefix(org))
            .await?;
        let has_packages = public.iter().any(|o| o.key.ends_with(".apk"));
        if has_packages && !force {
            return Err(PublishError::OrgNotEmpty(org.to_string()));
        }
        for object in public {
            self.stores.public().delete(&object.key).await?;
        }
        for object in self
            .stores
            .list(Tree::Private, &Key::org_private_prefix(org))
            .await?
        {
            self.stores.private().delete(&object.key).await?;
        }
        self.stores.delete(&Key::Org(org.clone())).await?;
        Ok(())
    }

    async fn require_org(&self, org: &Org) -> Result<(), PublishError> {
        if self.stores.head(&Key::Org(org.clone())).await?.is_none() {
            return Err(PublishError::OrgNotFound(org.to_string()));
        }
        Ok(())
    }

    // ---- repository settings -------------------------------------------

    /// The repository's settings (empty when it has none yet).
    pub async fn repo_settings(
        &self,
        repo: &RepoId,
    ) -> Result<(RepoSettings, Option<String>), PublishError> {
        let key = Key::RepoSettings(repo.clone());
        match self.stores.get_bytes_opt(&key).await? {
            None => Ok((RepoSettings::default(), None)),
            Some((bytes, meta)) => Ok((
                serde_json::from_slice(&bytes)
                    .map_err(|e| StorageError::backend("decode", &key.path(), e))?,
                Some(meta.etag),
            )),
        }
    }

    /// Adds arches and noarch records to the settings; returns the arches that are new.
    async fn extend_settings(
        &self,
        repo: &RepoId,
        arches: &[Arch],
        noarch: Option<&ApkRecord>,
    ) -> Result<(Vec<Arch>, RepoSettings), PublishError> {
        let key = Key::RepoSettings(repo.clone());
        loop {
            let (mut settings, etag) = self.repo_settings(repo).await?;
            let new: Vec<Arch> = arches
                .iter()
                .filter(|a| !settings.arches.contains(a.as_str()))
                .cloned()
                .collect();
            let noarch_new = noarch.is_some_and(|r| settings.noarch.get(&r.file_name()) != Some(r));
            if new.is_empty() && !noarch_new {
                return Ok((new, settings));
            }
            settings.arches.extend(new.iter().map(|a| a.to_string()));
            if let Some(record) = noarch {
                settings.noarch.insert(record.file_name(), record.clone());
            }
            let body = serde_json::to_vec(&settings)
                .map_err(|e| StorageError::backend("encode", &key.path(), e))?;
            let mode = etag.map_or(PutMode::Create, PutMode::Update);
            match self.stores.put(&key, body.into(), mode).await {
                Ok(_) => return Ok((new, settings)),
                Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The arches a repository serves.
    pub async fn arches(&self, repo: &RepoId) -> Result<Vec<Arch>, PublishError> {
        let (settings, _) = self.repo_settings(repo).await?;
        Ok(settings
            .arches
            .iter()
            .filter_map(|a| Arch::parse(a).ok())
            .collect())
    }

    /// Adds arches to a repository's configuration (noarch packages follow).
    pub async fn add_arches(&self, repo: &RepoId, arches: &[Arch]) -> Result<(), PublishError> {
        self.require_org(&repo.org).await?;
        let (new, settings) = self.extend_settings(repo, arches, None).await?;
        self.fill_new_arches(repo, &new, &settings).await
    }

    // ---- upload ---------------------------------------------------------

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
        self.require_org(&upload.repo.org).await?;
        let package = self.inspect(&upload.path, &upload.display_name).await?;
        let record = package.record.clone();
        let file = Segment::parse("file name", &record.file_name())?;

        let targets = self.targets(upload, &package).await?;
        // Fail before writing anything when no key can sign the index.
        keys::signing_key_for(&self.stores, &upload.repo).await?;

        let mut published = Vec::new();
        for arch in &targets {
            let repo_arch = upload.repo.arch(arch.clone());
            let record = record.clone().with_arch(arch.as_str());
            let unchanged = self
                .store_package(
                    &repo_arch,
                    &file,
                    &record,
                    Payload::File(upload.path.clone()),
                )
                .await?;
            published.push(Published {
                arch: arch.to_string(),
                record,
                unchanged,
            });
        }
        let noarch = package.is_noarch().then_some(&package.record);
        let (new_arches, settings) = self.extend_settings(&upload.repo, &targets, noarch).await?;
        for done in &published {
            let arch = upload.repo.arch(Arch::parse(&done.arch)?);
            self.publish_root(&arch, &[Expect::Added(&done.record)])
                .await?;
        }
        self.fill_new_arches(&upload.repo, &new_arches, &settings)
            .await?;
        Ok(published)
    }

    /// Where a package goes: its own arch, or for noarch the repo's arches plus those named.
    async fn targets(
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
    async fn fill_new_arches(
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
                let staged = self.download(&from).await?;
                let record = record.clone().with_arch(arch.as_str());
                self.store_package(
                    &target,
                    &file,
                    &record,
                    Payload::File(staged.path().to_owned()),
                )
                .await?;
            }
            self.publish_root(&target, &[]).await?;
        }
        Ok(())
    }

    /// Streams an object to a temporary file.
    async fn download(&self, key: &Key) -> Result<tempfile::NamedTempFile, PublishError> {
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
    /// Returns whether the identical package was already there.
    async fn store_package(
        &self,
        arch: &RepoArch,
        file: &Segment,
        record: &ApkRecord,
        payload: Payload,
    ) -> Result<bool, PublishError> {
        let key = Key::Package {
            arch: arch.clone(),
            file: file.clone(),
        };
        let tombstone_key = Key::Tombstone {
            arch: arch.clone(),
            file: file.clone(),
        };
        if let Some((bytes, _)) = self.stores.get_bytes_opt(&tombstone_key).await? {
            let tombstone: Tombstone = serde_json::from_slice(&bytes)
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
        let existing = self.stores.head(&key).await?;
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
            match self.stores.put(&key, payload, mode).await {
                Ok(_) => {}
                Err(StorageError::AlreadyExists { .. }) => {
                    self.check_same_bytes(&key, arch, file, record).await?;
                    unchanged = true;
                }
                Err(e) => return Err(e.into()),
            }
        }
        // A re-upload after removal (same bytes) revives the name.
        self.stores.delete(&tombstone_key).await?;
        if unchanged
            && index::record(&self.stores, arch, file.as_str())
                .await?
                .as_ref()
                == Some(record)
        {
            return Ok(true);
        }
        index::add_pending(&self.stores, arch, Change::Add(Box::new(record.clone()))).await?;
        Ok(unchanged)
    }

    /// Refuses a different package under an existing name (reads the stored bytes).
    async fn check_same_bytes(
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

    async fn hash_object(&self, key: &Key) -> Result<String, PublishError> {
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

    // ---- list, remove ---------------------------------------------------

    /// The packages of a repository (all arches, or one).
    pub async fn list(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
    ) -> Result<Vec<Listed>, PublishError> {
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
            index::add_pending(
                &self.stores,
                &repo_arch,
                Change::Remove {
                    file: listed.file.clone(),
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
        Ok(matching)
    }

    async fn forget_noarch(&self, repo: &RepoId, removed: &[Listed]) -> Result<(), PublishError> {
        let key = Key::RepoSettings(repo.clone());
        loop {
            let (mut settings, etag) = self.repo_settings(repo).await?;
            let before = settings.noarch.len();
            for listed in removed {
                // Only when removed from every arch it was in.
                settings.noarch.remove(&listed.file);
            }
            if settings.noarch.len() == before {
                return Ok(());
            }
            let body = serde_json::to_vec(&settings)
                .map_err(|e| StorageError::backend("encode", &key.path(), e))?;
            let mode = etag.map_or(PutMode::Create, PutMode::Update);
            match self.stores.put(&key, body.into(), mode).await {
                Ok(_) => return Ok(()),
                Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Deletes files of removed packages whose grace period is over, and
    /// record chunks no longer named by their repo arch's state (after the
    /// same grace a pending change gets); returns the deleted keys.
    pub async fn gc(&self) -> Result<Vec<String>, PublishError> {
        let mut deleted = Vec::new();
        let now = unix_now();
        let private = self
            .stores
            .list(Tree::Private, crate::repo::CONFIG_PREFIX)
            .await?;
        deleted.extend(self.gc_chunks(&private).await?);
        for object in private {
            let Some((arch, file)) = Key::parse_tombstone(&object.key) else {
                continue;
            };
            let (bytes, _) = match self.stores.private().get_bytes(&object.key).await {
                Ok(found) => found,
                Err(StorageError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let Ok(tombstone) = serde_json::from_slice::<Tombstone>(&bytes) else {
                continue;
            };
            if tombstone.removed + self.delete_grace.as_secs() > now {
                continue;
            }
            // Only if the name was not published again meanwhile.
            if index::record(&self.stores, &arch, file.as_str())
                .await?
                .is_none()
            {
                let package = Key::Package { arch, file };
                self.stores.delete(&package).await?;
                deleted.push(package.path());
            }
            self.stores.private().delete(&object.key).await?;
        }
        Ok(deleted)
    }

    /// Deletes chunk objects that no state names any more and that are older
    /// than [`index::PENDING_GRACE`] (a writer may have stored a chunk it has
    /// not yet named in the state).
    async fn gc_chunks(
        &self,
        private: &[crate::storage::ObjectMeta],
    ) -> Result<Vec<String>, PublishError> {
        let mut by_arch: BTreeMap<RepoArch, Vec<&crate::storage::ObjectMeta>> = BTreeMap::new();
        for object in private {
            if let Some(arch) = Key::parse_chunk(&object.key) {
                by_arch.entry(arch).or_default().push(object);
            }
        }
        let cutoff = SystemTime::now()
            .checked_sub(self.orphan_grace)
            .unwrap_or(UNIX_EPOCH);
        let mut deleted = Vec::new();
        for (arch, objects) in by_arch {
            let live = index::live_chunk_keys(&self.stores, &arch).await?;
            for object in objects {
                let old = object.last_modified.is_some_and(|t| t <= cutoff);
                if old && !live.contains(&object.key) {
                    self.stores.private().delete(&object.key).await?;
                    deleted.push(object.key.clone());
                }
            }
        }
        Ok(deleted)
    }

    // ---- rebuild ----------------------------------------------------------

    /// Recomputes the records of `arch` from its `.apk` files and republishes
    /// the index (disaster recovery). Removed packages (tombstoned) stay out.
    pub async fn rebuild(&self, arch: &RepoArch) -> Result<index::Reindexed, PublishError> {
        let prefix = Key::arch_public_prefix(arch);
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
            let Some(file) = object.key.strip_prefix(&prefix) else {
                continue;
            };
            if file.contains('/') || !file.ends_with(".apk") || tombstones.contains(file) {
                continue;
            }
            files.push(Segment::parse("file name", file)?);
        }
        // Every package is read and checked again, several at once.
        let records: BTreeMap<String, ApkRecord> = futures::stream::iter(files)
            .map(|file| async move {
                let key = Key::Package {
                    arch: arch.clone(),
                    file: file.clone(),
                };
                let staged = self.download(&key).await?;
                let package = self.inspect(staged.path(), &key.path()).await?;
                Ok::<_, PublishError>((
                    file.to_string(),
                    package.record.with_arch(arch.arch.as_str()),
                ))
            })
            .buffer_unordered(8)
            .try_collect()
            .await?;
        index::replace_records(&self.stores, arch, records).await?;
        self.publish_root(arch, &[]).await
    }
}
