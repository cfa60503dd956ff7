//! RPM use cases: upload into a repo arch (noarch into every arch), list,
//! remove, check and repair.
//!
//! One root per repo arch ([`RootId::Arch`]), as for Alpine; the files live
//! under the arch's RPM folder (`Packages/<letter>/<file>`, `repodata/`).
//! Uploaded packages are signed with the repository's active OpenPGP key
//! unless the repository publishes them as uploaded (`PACKAGES_RPM_SIGN=0`):
//! then `gpgcheck` is off in the `.repo` file and the bytes stored are the
//! uploaded ones.

use futures::StreamExt;

use super::*;
use crate::core::{self, Known};
use crate::formats::deb::release::{SuiteKeys, pgp_keys};
use crate::formats::rpm::repodata::{PublishedFile, forbidden_chars, package_xml};
use crate::formats::rpm::sign::sign_rpm;
use crate::formats::rpm::{RpmLimits, RpmPackage, RpmRecord, RpmRepo, read_rpm};
use crate::repo::{Family, RootId};

mod quota;

/// How many files of one upload are stored at once.
const STORE_CONCURRENCY: usize = 8;

/// The environment variable that turns package signing off (`0`): RPMs are
/// then published byte for byte as uploaded.
pub const RPM_SIGN_ENV: &str = "PACKAGES_RPM_SIGN";

/// The fields every format shares, in the shape uploads and listings report them.
pub fn summary(record: &RpmRecord) -> ApkRecord {
    let version = if record.epoch == 0 {
        format!("{}-{}", record.version, record.release)
    } else {
        format!("{}:{}-{}", record.epoch, record.version, record.release)
    };
    ApkRecord {
        name: record.name.clone(),
        version,
        arch: record.arch.clone(),
        file_size: record.size,
        installed_size: record.installed_size,
        description: record.summary.clone(),
        url: record.url.clone(),
        license: record.license.clone(),
        maintainer: record.packager.clone(),
        origin: record.source_rpm.clone(),
        depends: record.requires.clone(),
        provides: record.provides.clone(),
        sha256: record.sha256.clone(),
        ..ApkRecord::default()
    }
}

/// A dependency as listings show it: `name`, or `name >= [epoch:]version[-release]`.
fn dependency_text(dep: &crate::formats::rpm::Dependency) -> String {
    let op = match dep.flags.as_deref() {
        Some("EQ") => "=",
        Some("LT") => "<",
        Some("GT") => ">",
        Some("LE") => "<=",
        Some("GE") => ">=",
        _ => return dep.name.clone(),
    };
    let mut version = String::new();
    if let Some(epoch) = dep.epoch.as_deref().filter(|e| *e != "0") {
        version.push_str(epoch);
        version.push(':');
    }
    version.push_str(dep.version.as_deref().unwrap_or_default());
    if let Some(release) = &dep.release {
        version.push('-');
        version.push_str(release);
    }
    format!("{} {op} {version}", dep.name)
}

/// One checked upload, ready to store: the package, the file to publish
/// (signed or as uploaded) and its record.
struct Checked {
    index: usize,
    repo: RepoId,
    targets: Vec<Arch>,
    record: RpmRecord,
    path: PathBuf,
    /// The signed copy (kept alive until stored).
    _signed: Option<tempfile::NamedTempFile>,
}

/// The record of a package published as `facts` (its location, checksum,
/// size and header range as published), uploaded as a file with SHA-256
/// `source_sha256`.
pub(super) fn record_for(
    package: &RpmPackage,
    facts: &PublishedFile,
    source_sha256: String,
    signed_by: Option<String>,
) -> RpmRecord {
    let xml = package_xml(package, facts);
    RpmRecord {
        name: package.name.clone(),
        epoch: package.epoch,
        version: package.version.clone(),
        release: package.release.clone(),
        arch: package.arch.clone(),
        file_name: package.file_name(),
        location: facts.location_href.clone(),
        sha256: facts.sha256.clone(),
        size: facts.size,
        source_sha256,
        signed_by,
        summary: package.summary.clone(),
        url: package.url.clone().unwrap_or_default(),
        license: package.license.clone().unwrap_or_default(),
        packager: package.packager.clone().unwrap_or_default(),
        source_rpm: package.sourcerpm.clone(),
        installed_size: package.size_installed,
        requires: package
            .primary_requires()
            .iter()
            .map(dependency_text)
            .collect(),
        provides: package.provides.iter().map(dependency_text).collect(),
        primary: xml.primary,
        filelists: xml.filelists,
        other: xml.other,
    }
}

fn published(record: &RpmRecord, arch: &Arch, unchanged: bool) -> Published {
    Published {
        file: record.file_name.clone(),
        arch: arch.to_string(),
        record: summary(record),
        unchanged,
    }
}

impl Publisher {
    /// The format of an RPM repository's arches.
    pub(super) fn rpm_format(&self) -> RpmRepo {
        RpmRepo {
            public_url: self.public_url.clone(),
            signs_packages: self.sign_rpms,
        }
    }

    /// Checks and reads an `.rpm` without storing anything.
    pub async fn inspect_rpm(
        &self,
        path: &Path,
        display_name: &str,
    ) -> Result<RpmPackage, PublishError> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path)?;
            read_rpm(
                std::io::BufReader::with_capacity(64 << 10, file),
                &RpmLimits::default(),
            )
        })
        .await
        .map_err(|e| StorageError::backend("read package", display_name, e))?
        .map_err(|reason| PublishError::Rpm {
            file: display_name.to_owned(),
            reason,
        })
    }

    /// Publishes one `.rpm`; returns once every target arch's signed
    /// `repomd.xml` lists it.
    pub async fn upload_rpm(&self, upload: &Upload) -> Result<Vec<Published>, PublishError> {
        self.upload_many_rpm(std::slice::from_ref(upload))
            .await?
            .pop()
            .expect("one result per upload")
    }

    /// Publishes `.rpm` files: checks (and signs) every file first, nothing
    /// is written if one is refused; then stores them and publishes each
    /// touched repo arch once. A file refused by what the store holds (a
    /// different file under its name) fails alone.
    #[tracing::instrument(skip(self, uploads), fields(files = uploads.len()))]
    pub async fn upload_many_rpm(
        &self,
        uploads: &[Upload],
    ) -> Result<Vec<Result<Vec<Published>, PublishError>>, PublishError> {
        let format = self.rpm_format();
        let mut keys: BTreeMap<RepoId, SuiteKeys> = BTreeMap::new();
        for upload in uploads {
            debug_assert_eq!(upload.repo.distro.family(), Family::Rpm);
            if keys.contains_key(&upload.repo) {
                continue;
            }
            // Fail before writing anything when no key can sign the repository.
            let key = match keys::key_set_for_scope(&self.stores, &upload.repo.scope()).await {
                Ok(set) => crate::formats::Format::pick_key(&format, &set)?,
                Err(e) => {
                    self.require_org(&upload.repo.org).await?;
                    return Err(e.into());
                }
            };
            keys.insert(upload.repo.clone(), key);
        }
        // 1. Check (and sign) every file; nothing is written before all pass.
        let mut packages = Vec::with_capacity(uploads.len());
        for upload in uploads {
            packages.push(self.inspect_rpm(&upload.path, &upload.display_name).await?);
        }
        // A noarch package with no arch named goes into every arch of its
        // repo, including those the batch's other packages bring.
        let mut brought: BTreeMap<&RepoId, BTreeSet<Arch>> = BTreeMap::new();
        for (upload, package) in uploads.iter().zip(&packages) {
            if let (false, Ok(arch)) = (package.is_noarch(), Arch::parse(&package.arch)) {
                brought.entry(&upload.repo).or_default().insert(arch);
            }
        }
        let mut checked = Vec::with_capacity(uploads.len());
        for (index, (upload, package)) in uploads.iter().zip(packages).enumerate() {
            let key = keys.get(&upload.repo).expect("every repo was resolved");
            let brought = brought.get(&upload.repo).cloned().unwrap_or_default();
            checked.push(
                self.check_rpm(index, upload, package, &brought, &format, key)
                    .await?,
            );
        }
        // Quotas: nothing is written over one (src/publish/quota.rs).
        let _quota = self.reserve_rpm_quota(uploads, &checked).await?;
        // The arches first (refused over the cap before any package is written).
        let mut new_arches: BTreeMap<RepoId, Vec<Arch>> = BTreeMap::new();
        for c in &checked {
            let (new, _) = self.extend_settings(&c.repo, &c.targets, None).await?;
            new_arches.entry(c.repo.clone()).or_default().extend(new);
        }
        // 2. Store each file in each target arch and record its pending change.
        let format_ref = &format;
        let checked_ref = &checked;
        let jobs: Vec<(usize, RepoArch)> = checked
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.targets.iter().map(move |a| (i, c.repo.arch(a.clone()))))
            .collect();
        let stored: Vec<_> = futures::stream::iter(jobs)
            .map(|(i, arch)| async move {
                let c = &checked_ref[i];
                let outcome = self.store_rpm(format_ref, &arch, &c.record, &c.path).await;
                (i, arch, outcome)
            })
            .buffered(STORE_CONCURRENCY)
            .collect()
            .await;
        let mut results: Vec<Result<Vec<Published>, PublishError>> =
            (0..uploads.len()).map(|_| Ok(Vec::new())).collect();
        let mut pending: BTreeMap<RepoArch, Vec<core::PendingChange<RpmRecord>>> = BTreeMap::new();
        for (i, arch, outcome) in stored {
            let c = &checked[i];
            let index = c.index;
            match outcome {
                Ok((unchanged, change)) => {
                    if let Some(change) = change {
                        pending.entry(arch.clone()).or_default().push(change);
                    }
                    if let Ok(list) = &mut results[index] {
                        list.push(published(&c.record, &arch.arch, unchanged));
                    }
                }
                Err(e @ (PublishError::Conflict { .. } | PublishError::RecentlyRemoved { .. })) => {
                    results[index] = Err(e)
                }
                Err(e) => return Err(e),
            }
        }
        // 3. One publish per repo arch, through the process's group commit.
        for (arch, changes) in pending {
            let key = keys.get(&arch.repo).cloned();
            self.publish_rpm_arch(&format, &arch, changes, key).await?;
        }
        for (repo, arches) in new_arches {
            let key = keys.get(&repo).cloned();
            self.fill_new_rpm_arches(&format, &repo, &arches, key)
                .await?;
        }
        self.audit_uploads(uploads, &results).await;
        Ok(results)
    }

    /// Publishes one RPM repo arch with `changes` known to be pending.
    pub(super) async fn publish_rpm_arch(
        &self,
        format: &RpmRepo,
        arch: &RepoArch,
        changes: Vec<core::PendingChange<RpmRecord>>,
        key: Option<SuiteKeys>,
    ) -> Result<(), PublishError> {
        let root = RootId::Arch(arch.clone());
        self.commits
            .commit(arch, || async move {
                let known = Known {
                    pending: changes,
                    key,
                };
                let done = core::reindex_with(&self.stores, format, &root, known).await?;
                // Version aliases follow in the same round (version_alias.rs).
                self.sync_version_aliases(arch).await?;
                Ok::<_, core::IndexError>(done)
            })
            .await?;
        Ok(())
    }

    /// Checks where one read upload goes and (when the repository signs
    /// packages) signs it; `brought` are the arches the batch's other
    /// packages bring to its repository.
    async fn check_rpm(
        &self,
        index: usize,
        upload: &Upload,
        package: RpmPackage,
        brought: &BTreeSet<Arch>,
        format: &RpmRepo,
        key: &SuiteKeys,
    ) -> Result<Checked, PublishError> {
        if let Some((field, c)) = forbidden_chars(&package) {
            return Err(PublishError::Rpm {
                file: upload.display_name.clone(),
                reason: crate::formats::rpm::RpmError::Field {
                    field: "metadata",
                    problem: format!(
                        "{field} holds {c:?}, a character XML 1.0 forbids (createrepo_c refuses such a package too)"
                    ),
                },
            });
        }
        let targets = if package.is_noarch() {
            let mut targets: BTreeSet<Arch> = upload
                .arch
                .iter()
                .chain(&upload.extra_arches)
                .cloned()
                .collect();
            if targets.is_empty() {
                targets.extend(self.arches(&upload.repo).await?);
                targets.extend(brought.iter().cloned());
            }
            if targets.is_empty() {
                return Err(PublishError::NoArchTargets {
                    file: upload.display_name.clone(),
                });
            }
            targets.into_iter().collect()
        } else {
            let own = Arch::parse(&package.arch)?;
            for asked in upload.arch.iter().chain(&upload.extra_arches) {
                if asked != &own {
                    return Err(PublishError::ArchMismatch {
                        file: upload.display_name.clone(),
                        package: own.to_string(),
                        target: asked.to_string(),
                    });
                }
            }
            vec![own]
        };
        let file_name = package.file_name();
        let file = Segment::parse("file name", &file_name)?;
        let letter: String = file_name
            .chars()
            .take(1)
            .flat_map(char::to_lowercase)
            .collect();
        let location = format!("Packages/{letter}/{file}");
        let mut facts = PublishedFile {
            location_href: location.clone(),
            sha256: package.sha256.clone(),
            size: package.size_package,
            time_file: unix_now(),
            header_start: package.header_start,
            header_end: package.header_end,
        };
        let mut signed_by = None;
        let mut path = upload.path.clone();
        let mut signed_file = None;
        if format.signs_packages {
            let pgp = *pgp_keys(key)
                .first()
                .expect("pick_key returns an active OpenPGP key");
            let pgp = pgp.clone();
            let input = upload.path.clone();
            let display = upload.display_name.clone();
            let (out, signed) = tokio::task::spawn_blocking(move || {
                let out = tempfile::NamedTempFile::new()?;
                let reader =
                    std::io::BufReader::with_capacity(64 << 10, std::fs::File::open(&input)?);
                let writer = std::io::BufWriter::with_capacity(64 << 10, out.reopen()?);
                let signed = sign_rpm(reader, writer, &pgp, &RpmLimits::default())?;
                Ok::<_, crate::formats::rpm::RpmError>((
                    out,
                    (signed, pgp.fingerprint().to_owned()),
                ))
            })
            .await
            .map_err(|e| StorageError::backend("sign package", &display, e))?
            .map_err(|reason| PublishError::Rpm {
                file: upload.display_name.clone(),
                reason,
            })?;
            let (signed, fingerprint) = signed;
            facts.sha256 = signed.sha256;
            facts.size = signed.size;
            facts.header_start = signed.header_start;
            facts.header_end = signed.header_end;
            signed_by = Some(fingerprint);
            path = out.path().to_owned();
            signed_file = Some(out);
        }
        let record = record_for(&package, &facts, package.sha256.clone(), signed_by);
        Ok(Checked {
            index,
            repo: upload.repo.clone(),
            targets,
            record,
            path,
            _signed: signed_file,
        })
    }

    /// Stores a package file in one arch (immutably) and records its pending
    /// change; returns whether it was published already, and the change.
    async fn store_rpm(
        &self,
        format: &RpmRepo,
        arch: &RepoArch,
        record: &RpmRecord,
        path: &Path,
    ) -> Result<(bool, Option<core::PendingChange<RpmRecord>>), PublishError> {
        let root = RootId::Arch(arch.clone());
        let file = Segment::parse("file name", &record.file_name)?;
        let conflict = || PublishError::Conflict {
            file: record.file_name.clone(),
            arch: arch.to_string(),
        };
        let listed = core::record(&self.stores, format, &root, &record.file_name).await?;
        if let Some(listed) = &listed {
            // Signing is deterministic, so the same upload signed again is
            // the same published file (this also recognises uploads after a
            // `rebuild`, whose records know only the published bytes).
            if listed.source_sha256 != record.source_sha256 && listed.sha256 != record.sha256 {
                return Err(conflict());
            }
            // The same upload again: the published file stays as it is.
            return Ok((true, None));
        }
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
        let key = Key::RpmPackage {
            arch: arch.clone(),
            file,
        };
        let conditional = self.stores.conditional_writes().await?;
        let existing = if conditional {
            None
        } else {
            self.stores.head(&key).await?
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
                .put(&key, Payload::File(path.to_owned()), mode)
                .await
            {
                Ok(_) => {}
                Err(StorageError::AlreadyExists { .. }) => unchanged = true,
                Err(e) => return Err(e.into()),
            }
        }
        if unchanged && self.hash_object(&key).await? != record.sha256 {
            return Err(conflict());
        }
        if tombstone.is_some() {
            self.stores.delete(&tombstone_key).await?;
        }
        let change = core::add_pending(
            &self.stores,
            &root,
            core::Change::Add(Box::new(record.clone())),
        )
        .await?;
        // Not listed (new, or removed before): published now, not "unchanged".
        Ok((false, Some(change)))
    }

    /// Copies the noarch packages of a repository into arches it just gained.
    async fn fill_new_rpm_arches(
        &self,
        format: &RpmRepo,
        repo: &RepoId,
        new: &[Arch],
        key: Option<SuiteKeys>,
    ) -> Result<(), PublishError> {
        if new.is_empty() {
            return Ok(());
        }
        let Some(source) = self
            .arches(repo)
            .await?
            .into_iter()
            .find(|a| !new.contains(a))
        else {
            return Ok(());
        };
        let from = repo.arch(source);
        let (state, _) =
            core::read_state(&self.stores, format, &RootId::Arch(from.clone())).await?;
        let noarch: Vec<RpmRecord> = state
            .records
            .into_values()
            .filter(|r| r.arch == "noarch")
            .collect();
        if noarch.is_empty() {
            return Ok(());
        }
        for arch in new {
            let target = repo.arch(arch.clone());
            let mut changes = Vec::new();
            for record in &noarch {
                let file = Segment::parse("file name", &record.file_name)?;
                let to = Key::RpmPackage {
                    arch: target.clone(),
                    file: file.clone(),
                };
                if self.stores.head(&to).await?.is_none() {
                    let from = Key::RpmPackage {
                        arch: from.clone(),
                        file,
                    };
                    self.stores.copy(&from, &to).await?;
                }
                changes.push(
                    core::add_pending(
                        &self.stores,
                        &RootId::Arch(target.clone()),
                        core::Change::Add(Box::new(record.clone())),
                    )
                    .await?,
                );
            }
            self.publish_rpm_arch(format, &target, changes, key.clone())
                .await?;
        }
        Ok(())
    }
}

/// The environment variable naming the URL the public tree is served at:
/// RPM repositories publish a `.repo` file pointing there.
pub const PUBLIC_URL_ENV: &str = "PACKAGES_PUBLIC_URL";
