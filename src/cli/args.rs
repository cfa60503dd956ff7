//! Arguments shared by several commands: a repository, a key scope, a token
//! level, and the server of remote mode.

use anyhow::{Context, Result};
use clap::Args;

use crate::repo::{Arch, Distro, Org, RepoId, Scope, Segment};
use crate::tokens::TokenLevel;
use crate::wire::client::Client;

/// The level of a token: none (admin), an org, or a distro, version or repo of it.
#[derive(Debug, Args)]
pub struct LevelArgs {
    /// Organization (none: the server-wide admin level)
    #[arg(long)]
    pub org: Option<String>,
    /// Distro (e.g. `alpine`); needs `--org`
    #[arg(long, requires = "org")]
    pub distro: Option<String>,
    /// Distro version (e.g. `edge`); needs `--distro`
    #[arg(long, requires = "distro")]
    pub version: Option<String>,
    /// Repository (e.g. `main`); needs `--version`
    #[arg(long, requires = "version")]
    pub repo: Option<String>,
}

/// Where to reach a server instead of the store (remote mode), for every command.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Work through this `packages serve` server instead of the store (e.g.
    /// `https://packages.example.com`): every command that reads or changes
    /// the repository, with the same output
    #[arg(long, global = true, env = "PACKAGES_SERVER")]
    pub server: Option<String>,
    /// API token for `--server`
    #[arg(long, global = true, env = "PACKAGES_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// A level of the tree for keys.
#[derive(Debug, Args)]
pub struct ScopeArgs {
    /// Organization
    #[arg(long)]
    pub org: String,
    /// Distro
    #[arg(long, default_value = "alpine")]
    pub distro: String,
    /// Distro version (e.g. `v3.20`, `edge`)
    #[arg(long)]
    pub version: Option<String>,
    /// Repository (e.g. `main`); needs `--version`
    #[arg(long, requires = "version")]
    pub repo: Option<String>,
}

/// Names a repository.
#[derive(Debug, Args)]
pub struct RepoArgs {
    /// Organization
    #[arg(long)]
    pub org: String,
    /// Distro
    #[arg(long, default_value = "alpine")]
    pub distro: String,
    /// Distro version (e.g. `v3.20`, `edge`)
    #[arg(long)]
    pub version: String,
    /// Repository (e.g. `main`)
    #[arg(long)]
    pub repo: String,
    /// Architecture (default: every arch of the repo)
    #[arg(long)]
    pub arch: Option<String>,
}

impl RepoArgs {
    pub(super) fn repo(&self) -> Result<RepoId> {
        Ok(RepoId::parse(
            &self.org,
            &self.distro,
            &self.version,
            &self.repo,
        )?)
    }

    pub(super) fn arch(&self) -> Result<Option<Arch>> {
        Ok(self.arch.as_deref().map(Arch::parse).transpose()?)
    }
}

impl ScopeArgs {
    pub(super) fn scope(&self) -> Result<Scope> {
        Ok(Scope::new(
            Org::parse(&self.org)?,
            Some(Distro::parse(&self.distro)?),
            self.version
                .as_deref()
                .map(|v| Segment::parse("version", v))
                .transpose()?,
            self.repo
                .as_deref()
                .map(|r| Segment::parse("repo", r))
                .transpose()?,
        )?)
    }
}

impl LevelArgs {
    pub(super) fn level(&self) -> Result<TokenLevel> {
        Ok(TokenLevel::from_parts(
            self.org.as_deref(),
            self.distro.as_deref(),
            self.version.as_deref(),
            self.repo.as_deref(),
        )?)
    }
}

/// The API client of remote mode, for `--server` and `--token`.
pub(super) fn remote_client(remote: &RemoteArgs) -> Result<Client> {
    let server = remote
        .server
        .as_deref()
        .context("no server given (`--server` or `PACKAGES_SERVER`)")?;
    let token = remote
        .token
        .as_deref()
        .context("`--server` needs a token (`--token` or `PACKAGES_TOKEN`)")?;
    Ok(Client::new(server, token)?)
}
