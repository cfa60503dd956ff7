//! The import of each kind of thing: org, key, token, package. Each first
//! looks whether its result is already in the store (then: skipped), so a
//! run can be repeated or resumed; in a dry run each only checks and reads.

use std::path::Path;

use super::layout::{OldArch, OldDistro, OldOrg, entries, read_old_token};
use super::{Entry, ImportError, Kind, Outcome, Report, relative};
use crate::keys::{self, ChangeOptions, KeyError};
use crate::publish::{PublishError, Publisher, Upload};
use crate::repo::{Arch, Distro, Family, Org, RepoId, Scope};
use crate::signing::{Algorithm, PrivateKey, Signer as _};
use crate::tokens::{TokenError, Tokens, check_given_secret};

/// One import run.
pub(super) struct Run<'a> {
    pub publisher: &'a Publisher,
    pub tokens: &'a Tokens,
    pub root: &'a Path,
    pub dry_run: bool,
    pub report: Report,
}

/// A store failure stops the run; anything else refuses the entry.
fn fatal(message: impl std::fmt::Display) -> ImportError {
    ImportError::Store(message.to_string())
}

impl Run<'_> {
    fn entry(
        &mut self,
        kind: Kind,
        source: &Path,
        target: Option<String>,
        outcome: Outcome,
        reason: Option<String>,
    ) {
        let source = relative(self.root, source);
        self.report.push(Entry {
            kind,
            source,
            target,
            outcome,
            reason,
        });
    }

    /// Refuses an entry for a client error of a use case, or stops the run
    /// for a store failure.
    fn refuse_or_stop(
        &mut self,
        kind: Kind,
        source: &Path,
        target: Option<String>,
        error: PublishError,
    ) -> Result<(), ImportError> {
        if !error.is_client_error() {
            return Err(fatal(format!("{}: {error}", relative(self.root, source))));
        }
        self.entry(
            kind,
            source,
            target,
            Outcome::Refused,
            Some(error.to_string()),
        );
        Ok(())
    }

    /// Imports one org with its tokens, keys and packages.
    pub async fn org(&mut self, old: &OldOrg) -> Result<(), ImportError> {
        let source = self.root.join("static").join(&old.name);
        let org = match Org::parse(&old.name) {
            Ok(org) => org,
            Err(e) => {
                let reason =
                    format!("not a valid organization name here: {e}; nothing of it is imported");
                self.entry(Kind::Org, &source, None, Outcome::Refused, Some(reason));
                return Ok(());
            }
        };
        let exists = match self.publisher.get_org(&org).await {
            Ok(_) => true,
            Err(PublishError::OrgNotFound(_)) => false,
            Err(e) => return Err(fatal(e)),
        };
        let target = Some(org.to_string());
        if exists {
            let reason = Some("already exists".to_owned());
            self.entry(Kind::Org, &source, target, Outcome::Skipped, reason);
        } else {
            if !self.dry_run {
                match self.publisher.create_org(&org).await {
                    Ok(_) | Err(PublishError::OrgExists(_)) => {}
                    Err(e) => return self.refuse_or_stop(Kind::Org, &source, target, e),
                }
            }
            self.entry(Kind::Org, &source, target, Outcome::Imported, None);
        }
        for token in &old.tokens {
            self.token(&org, token).await?;
        }
        for distro in &old.distros {
            self.distro(&org, distro).await?;
        }
        Ok(())
    }

    /// Imports one token file of `config/<org>/tokens/`.
    async fn token(&mut self, org: &Org, path: &Path) -> Result<(), ImportError> {
        let secret = read_old_token(path).map_err(|source| ImportError::Read {
            path: path.display().to_string(),
            source,
        })?;
        if secret.is_empty() {
            let reason = "empty: the old service ignored it".to_owned();
            self.entry(Kind::Token, path, None, Outcome::Skipped, Some(reason));
            return Ok(());
        }
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        let name: String = format!("imported {file}").chars().take(64).collect();
        if let Err(reason) = check_given_secret(&secret) {
            let reason = format!(
                "token refused: {reason}; create a new one with `packages token create --org {org}`"
            );
            self.entry(Kind::Token, path, None, Outcome::Refused, Some(reason));
            return Ok(());
        }
        let id = crate::tokens::HashedToken::of(&secret).hex();
        let target = Some(format!("{org} token {}", &id[..12]));
        if self.dry_run {
            let known = self.tokens.list(&org_level(org)).await.map_err(fatal)?;
            let outcome = if known.iter().any(|t| t.id == id) {
                (Outcome::Skipped, Some("already imported".to_owned()))
            } else {
                (Outcome::Imported, None)
            };
            self.entry(Kind::Token, path, target, outcome.0, outcome.1);
            return Ok(());
        }
        match self.tokens.store_given(org, &name, &secret).await {
            Ok((_, true)) => self.entry(Kind::Token, path, target, Outcome::Imported, None),
            Ok((_, false)) => {
                let reason = Some("already imported".to_owned());
                self.entry(Kind::Token, path, target, Outcome::Skipped, reason);
            }
            Err(e) if e.is_client_error() && !matches!(e, TokenError::OrgNotFound(_)) => {
                self.entry(
                    Kind::Token,
                    path,
                    target,
                    Outcome::Refused,
                    Some(e.to_string()),
                );
            }
            Err(e) => return Err(fatal(e)),
        }
        Ok(())
    }

    /// Imports one distro: its key, then its packages.
    async fn distro(&mut self, org: &Org, old: &OldDistro) -> Result<(), ImportError> {
        let dir = self.root.join("static").join(org.as_str()).join(&old.name);
        let distro = match Distro::parse(&old.name) {
            Ok(d) if d.family() == Family::Apk => d,
            Ok(_) => {
                let reason = "the old service published only Alpine (apk) repositories: \
                              nothing of this distro is imported";
                self.entry(
                    Kind::Other,
                    &dir,
                    None,
                    Outcome::Refused,
                    Some(reason.to_owned()),
                );
                return Ok(());
            }
            Err(e) => {
                let reason = format!("not a distro name here: {e}; nothing of it is imported");
                self.entry(Kind::Other, &dir, None, Outcome::Refused, Some(reason));
                return Ok(());
            }
        };
        let scope = Scope::new(org.clone(), Some(distro), None, None).map_err(fatal)?;
        let signed = self.key(&scope, &old.keys).await?;
        for arch in &old.arches {
            self.arch(org, distro, arch, signed).await?;
        }
        Ok(())
    }

    /// Imports the distro's signing key under the name clients trust it by;
    /// returns whether the distro has a key now (in a dry run: would have).
    async fn key(
        &mut self,
        scope: &Scope,
        keys: &[std::path::PathBuf],
    ) -> Result<bool, ImportError> {
        let current = keys::read_set(self.publisher.stores(), scope)
            .await
            .map_err(fatal)?;
        if keys.len() > 1 {
            let names: Vec<String> = keys.iter().map(|k| relative(self.root, k)).collect();
            for key in keys {
                let reason = format!(
                    "several keys ({}): the old service signed with whichever its directory \
                     listing gave last, in no set order; keep only the one your clients trust \
                     and run the import again",
                    names.join(", ")
                );
                self.entry(Kind::Key, key, None, Outcome::Refused, Some(reason));
            }
            return Ok(current.is_some());
        }
        let Some(path) = keys.first() else {
            return Ok(current.is_some());
        };
        let pem = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
            path: path.display().to_string(),
            source,
        })?;
        // The old service signed as `<file name>.pub` (`keyName+".pub"`).
        let name = format!(
            "{}.pub",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let target = Some(format!("{scope}: {name}"));
        let key = PrivateKey::load(Algorithm::RsaSha256, scope.org.as_str(), &pem)
            .and_then(|k| k.with_kept_name(&name));
        if let Err(e) = key {
            self.entry(
                Kind::Key,
                path,
                target,
                Outcome::Refused,
                Some(e.to_string()),
            );
            return Ok(current.is_some());
        }
        if let Some((set, _)) = &current {
            if set.active_for(Algorithm::RsaSha256).map(|k| k.key_id()) == Some(name.as_str()) {
                let reason = Some("already the active key".to_owned());
                self.entry(Kind::Key, path, target, Outcome::Skipped, reason);
                return Ok(true);
            }
            if self.dry_run {
                let reason = format!(
                    "{scope} already has another key (`{}`): this one is not imported over it",
                    set.active().key_id()
                );
                self.entry(Kind::Key, path, target, Outcome::Refused, Some(reason));
                return Ok(true);
            }
        }
        if self.dry_run {
            self.entry(Kind::Key, path, target, Outcome::Imported, None);
            return Ok(true);
        }
        let options = ChangeOptions::default();
        match keys::import_keeping_name(self.publisher.stores(), scope, &pem, &name, &options).await
        {
            Ok(_) => self.entry(Kind::Key, path, target, Outcome::Imported, None),
            Err(KeyError::Storage(e)) => return Err(fatal(e)),
            Err(e) => {
                self.entry(
                    Kind::Key,
                    path,
                    target,
                    Outcome::Refused,
                    Some(e.to_string()),
                );
                return Ok(current.is_some());
            }
        }
        Ok(true)
    }

    /// Imports the packages of one arch folder, [`BATCH`] per signed publish.
    async fn arch(
        &mut self,
        org: &Org,
        distro: Distro,
        old: &OldArch,
        signed: bool,
    ) -> Result<(), ImportError> {
        let repo = RepoId::parse(org.as_str(), distro.as_str(), &old.version, &old.repo);
        let arch = Arch::parse(&old.arch);
        let (repo, arch) = match (repo, arch) {
            (Ok(repo), Ok(arch)) => (repo, arch),
            (Err(e), _) | (_, Err(e)) => {
                let reason = format!("not imported: {e}");
                self.entry(Kind::Other, &old.path, None, Outcome::Refused, Some(reason));
                return Ok(());
            }
        };
        // What the arch already publishes, read once (a re-run skips it all).
        let published = crate::index::read_state(self.publisher.stores(), &repo.arch(arch.clone()))
            .await
            .map_err(fatal)?
            .0
            .records;
        let mut batch = Vec::new();
        for (file, path, is_dir) in entries(&old.path)? {
            if is_dir {
                let reason = "ignored: the old service indexed only the arch folder's own files";
                self.entry(
                    Kind::Other,
                    &path,
                    None,
                    Outcome::Skipped,
                    Some(reason.to_owned()),
                );
            } else if file == "APKINDEX.tar.gz" {
                let reason = "the index is rebuilt and signed by this service";
                self.entry(
                    Kind::Other,
                    &path,
                    None,
                    Outcome::Skipped,
                    Some(reason.to_owned()),
                );
            } else if !file.ends_with(".apk") {
                let reason = "ignored: not an `.apk` file (the old service indexed only those)";
                self.entry(
                    Kind::Other,
                    &path,
                    None,
                    Outcome::Skipped,
                    Some(reason.to_owned()),
                );
            } else if let Some(ready) = self
                .package(&repo, &arch, &path, signed, &published)
                .await?
            {
                batch.push(ready);
                if batch.len() >= BATCH {
                    self.publish(std::mem::take(&mut batch)).await?;
                }
            }
        }
        self.publish(batch).await
    }

    /// Publishes checked packages of one arch folder in one signed publish
    /// ([`Publisher::upload_many`]); when the batch as a whole is refused
    /// (a quota, say), one at a time, so each file gets its own outcome.
    async fn publish(&mut self, batch: Vec<Ready>) -> Result<(), ImportError> {
        if batch.is_empty() {
            return Ok(());
        }
        let uploads: Vec<Upload> = batch.iter().map(|r| r.upload.clone()).collect();
        match self.publisher.upload_many(&uploads).await {
            Ok(results) => {
                for (ready, result) in batch.into_iter().zip(results) {
                    self.published(ready, result)?;
                }
            }
            Err(e) if e.is_client_error() && batch.len() > 1 => {
                for ready in batch {
                    let result = self.publisher.upload(&ready.upload).await;
                    self.published(ready, result)?;
                }
            }
            Err(e) => {
                let ready = &batch[0];
                let path = ready.upload.path.clone();
                self.refuse_or_stop(Kind::Package, &path, Some(ready.target.clone()), e)?;
            }
        }
        Ok(())
    }

    /// Reports what publishing `ready` gave.
    fn published<T>(
        &mut self,
        ready: Ready,
        result: Result<T, PublishError>,
    ) -> Result<(), ImportError> {
        let Ready { upload, target } = ready;
        match result {
            Ok(_) => {
                self.entry(
                    Kind::Package,
                    &upload.path,
                    Some(target),
                    Outcome::Imported,
                    None,
                );
                Ok(())
            }
            Err(e) => self.refuse_or_stop(Kind::Package, &upload.path, Some(target), e),
        }
    }

    /// Checks one package with our reader: `Some` when it is to be
    /// published (none when it is refused, or skipped because the index of
    /// its arch lists these very bytes already, or in a dry run).
    async fn package(
        &mut self,
        repo: &RepoId,
        arch: &Arch,
        path: &Path,
        signed: bool,
        published: &std::collections::BTreeMap<String, crate::formats::apk::ApkRecord>,
    ) -> Result<Option<Ready>, ImportError> {
        let display = relative(self.root, path);
        let package = match self.publisher.inspect(path, &display).await {
            Ok(package) => package,
            Err(e) => {
                return self
                    .refuse_or_stop(Kind::Package, path, None, e)
                    .map(|()| None);
            }
        };
        let file = package.record.file_name();
        let target = Some(format!("{repo}/{arch}/{file}"));
        let listed = published.get(&file);
        if listed.is_some_and(|r| r.sha256 == package.record.sha256) {
            let reason = Some("already published".to_owned());
            self.entry(Kind::Package, path, target, Outcome::Skipped, reason);
            return Ok(None);
        }
        if self.dry_run {
            let (outcome, reason) = if signed {
                (Outcome::Imported, None)
            } else {
                let reason =
                    format!("no signing key for {repo}: the distro's key was not imported");
                (Outcome::Refused, Some(reason))
            };
            self.entry(Kind::Package, path, target, outcome, reason);
            return Ok(None);
        }
        Ok(Some(Ready {
            upload: Upload {
                repo: repo.clone(),
                arch: Some(arch.clone()),
                extra_arches: Vec::new(),
                path: path.to_owned(),
                display_name: display,
            },
            target: format!("{repo}/{arch}/{file}"),
        }))
    }
}

/// Most packages of one arch folder published together.
const BATCH: usize = 256;

/// A package checked and ready to publish.
struct Ready {
    upload: Upload,
    /// Where it goes, for the report.
    target: String,
}

/// The org level of `org`.
fn org_level(org: &Org) -> crate::tokens::TokenLevel {
    crate::tokens::TokenLevel::Scoped(Scope {
        org: org.clone(),
        distro: None,
        version: None,
        repo: None,
    })
}
