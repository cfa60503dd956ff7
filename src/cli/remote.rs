//! Remote mode: with `--server` (or `PACKAGES_SERVER`) every command that
//! reads or changes the repository goes through the server's v1 API, and
//! prints exactly what it prints against the store.
//!
//! Each command computes its result through a [`Backend`] (the store, or the
//! server) as one type, then one printer prints it: the two modes cannot
//! drift. Commands that only make sense where the store is (`serve`, `gc`,
//! `doctor`, `admin init`) refuse remote mode and say so.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use super::args::{RemoteArgs, remote_client};
use super::{Command, IndexCommand, check, index, org, packages, suite, token};
use crate::publish::Publisher;
use crate::publish::repo_index::{IndexCheck, IndexRepair};
use crate::repo::{Arch, Distro, Org, RepoId, SuiteId};
use crate::wire::PackageInfo;
use crate::wire::client::Client;

/// Where a command acts: on the store, or through a server (remote mode).
#[derive(Debug, Clone, Copy)]
pub(super) enum Backend<'a> {
    /// The store, directly.
    Store(&'a Publisher),
    /// A `packages serve` server, through its v1 API.
    Server(&'a Client),
}

impl<'a> From<&'a Publisher> for Backend<'a> {
    fn from(publisher: &'a Publisher) -> Self {
        Backend::Store(publisher)
    }
}

impl<'a> From<&'a Client> for Backend<'a> {
    fn from(client: &'a Client) -> Self {
        Backend::Server(client)
    }
}

/// Whether remote mode is on: a server is given (`--server` or `PACKAGES_SERVER`).
pub(super) fn is_remote(remote: &RemoteArgs) -> bool {
    remote.server.as_deref().is_some_and(|s| !s.is_empty())
}

/// The error of a command that works on the store only.
fn store_only(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "`packages {what}` works on the store itself, not through a server: run it where the \
         store is, with `--storage` and without `--server` (unset PACKAGES_SERVER)"
    )
}

/// Runs `command` through the server of `remote`.
pub(super) async fn run(remote: &RemoteArgs, command: Command, json: bool) -> Result<()> {
    let refused = match &command {
        Command::Serve(_) => Some("serve"),
        Command::Gc { .. } => Some("gc"),
        Command::Doctor { .. } => Some("doctor"),
        Command::Admin(_) => Some("admin init"),
        _ => None,
    };
    if let Some(what) = refused {
        return Err(store_only(what));
    }
    let client = remote_client(remote)?;
    let client = &client;
    match command {
        Command::Org(command) => org::org(client, command, json).await,
        Command::Key(command) => super::remote_key::key(client, command, json).await,
        Command::Suite(command) => suite::suite(client, command, json).await,
        Command::Alias(command) => super::alias::alias(client, command, json).await,
        Command::Quota(command) => super::quota::quota(client, command, json).await,
        Command::Usage(level) => super::quota::usage(client, level, json).await,
        Command::Upload(args) => packages::remote_upload(client, &args, json).await,
        Command::List(args) => packages::list(client, args, json).await,
        Command::Remove(args) => packages::remove(client, args, json).await,
        Command::Index(IndexCommand::Rebuild(args)) => index::rebuild(client, args, json).await,
        Command::Index(IndexCommand::Check(args)) => index::check_indexes(client, args, json).await,
        Command::Index(IndexCommand::Repair(args)) => {
            index::repair_indexes(client, args, json).await
        }
        Command::Token(command) => token::token(client, command, json).await,
        Command::Check(args) => check::check(client.into(), &args, json).await,
        Command::Audit(args) => super::audit::audit(client.into(), &args, json).await,
        Command::Retention(command) => {
            super::retention::retention(client.into(), command, json).await
        }
        // Commands added since: they work on the store until they get a remote mode.
        #[allow(unreachable_patterns)]
        _ => bail!(
            "this command has no remote mode: run it where the store is, with `--storage` and \
             without `--server` (unset PACKAGES_SERVER)"
        ),
    }
}

impl Backend<'_> {
    /// Creates an organization.
    pub(super) async fn create_org(&self, org: &Org) -> Result<crate::publish::OrgRecord> {
        Ok(match self {
            Backend::Store(p) => p.create_org(org).await?,
            Backend::Server(c) => org_record(c.create_org(org).await?),
        })
    }

    /// The organizations (remote: those the token may read).
    pub(super) async fn list_orgs(&self) -> Result<Vec<String>> {
        Ok(match self {
            Backend::Store(p) => p.list_orgs().await?,
            Backend::Server(c) => c.list_orgs().await?.into_iter().map(|o| o.name).collect(),
        })
    }

    /// One organization.
    pub(super) async fn get_org(&self, org: &Org) -> Result<crate::publish::OrgRecord> {
        Ok(match self {
            Backend::Store(p) => p.get_org(org).await?,
            Backend::Server(c) => org_record(c.get_org(org).await?),
        })
    }

    /// Deletes an organization.
    pub(super) async fn delete_org(&self, org: &Org, force: bool) -> Result<()> {
        match self {
            Backend::Store(p) => p.delete_org(org, force).await?,
            Backend::Server(c) => c.delete_org(org, force).await?,
        }
        Ok(())
    }

    /// The packages of a repository (one arch, or all).
    pub(super) async fn list(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
    ) -> Result<Vec<PackageInfo>> {
        Ok(match self {
            Backend::Store(p) => {
                p.require_repo(repo).await?;
                p.list(repo, arch)
                    .await?
                    .iter()
                    .map(PackageInfo::from)
                    .collect()
            }
            Backend::Server(c) => c.list_packages(repo, arch, None).await?,
        })
    }

    /// Removes a package (by name: every version; or by file name) from the index.
    pub(super) async fn remove(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
        what: &str,
    ) -> Result<Vec<PackageInfo>> {
        Ok(match self {
            Backend::Store(p) => {
                p.require_repo(repo).await?;
                p.remove(repo, arch, what)
                    .await?
                    .iter()
                    .map(PackageInfo::from)
                    .collect()
            }
            Backend::Server(c) => c.remove_package(repo, arch, what).await?,
        })
    }

    /// The arches of a repository.
    pub(super) async fn arches(&self, repo: &RepoId) -> Result<Vec<Arch>> {
        Ok(match self {
            Backend::Store(p) => p.arches(repo).await?,
            Backend::Server(c) => c
                .arches(repo)
                .await?
                .iter()
                .map(|a| Arch::parse(a))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Checks the indexes of a repository (one arch, or all; a suite).
    pub(super) async fn check_indexes(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
    ) -> Result<IndexCheck> {
        Ok(match self {
            Backend::Store(p) => p.check_repo_indexes(repo, arch).await?,
            Backend::Server(c) => c.check_indexes(repo, arch).await?,
        })
    }

    /// Republishes the indexes of a repository from their records.
    pub(super) async fn repair_indexes(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
    ) -> Result<IndexRepair> {
        Ok(match self {
            Backend::Store(p) => p.repair_repo_indexes(repo, arch).await?,
            Backend::Server(c) => c.repair_indexes(repo, arch).await?,
        })
    }

    /// Points an alias at a suite; the suite it pointed to before, if any.
    pub(super) async fn set_alias(&self, target: &SuiteId, alias: &str) -> Result<Option<String>> {
        Ok(match self {
            Backend::Store(p) => p.set_alias(target, alias).await?,
            Backend::Server(c) => {
                c.set_alias(&target.org, target.distro, alias, target.suite.as_str())
                    .await?
            }
        })
    }

    /// Removes an alias; the suite it pointed to.
    pub(super) async fn remove_alias(
        &self,
        org: &Org,
        distro: Distro,
        alias: &str,
    ) -> Result<String> {
        Ok(match self {
            Backend::Store(p) => p.remove_alias(org, distro, alias).await?,
            Backend::Server(c) => c.remove_alias(org, distro, alias).await?,
        })
    }

    /// A distro's aliases (alias → suite).
    pub(super) async fn list_aliases(
        &self,
        org: &Org,
        distro: Distro,
    ) -> Result<BTreeMap<String, String>> {
        Ok(match self {
            Backend::Store(p) => p.list_aliases(org, distro).await?.0,
            Backend::Server(c) => c.list_aliases(org, distro).await?,
        })
    }
}

/// The record part of an organization as the API shows it.
fn org_record(info: crate::wire::OrgInfo) -> crate::publish::OrgRecord {
    crate::publish::OrgRecord {
        name: info.name,
        created: info.created,
    }
}
