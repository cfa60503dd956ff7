//! The command line: clap definitions and the dispatch to the commands, one
//! module per group of commands.
//!
//! Data goes to stdout (`--json` for scripts), messages and progress to
//! stderr. Every failure names the file or object and the problem.

mod alias;
mod args;
mod audit;
mod check;
mod failure;
mod import;
mod index;
mod init;
mod key;
mod org;
mod output;
mod packages;
mod quota;
mod remote;
mod remote_key;
mod repo;
mod retention;
mod service;
mod suite;
mod token;
mod verify;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::config::{OpenMode, StoreConfig};
use crate::publish::Publisher;

pub use args::{LevelArgs, RemoteArgs, RepoArgs, ScopeArgs};
pub use check::CheckArgs;
pub use failure::{error_code, failure_status, print_failure};
pub use import::ImportArgs;
pub use index::IndexCommand;

pub use key::KeyCommand;
pub use org::OrgCommand;
pub use packages::{RemoveArgs, UploadArgs};
pub use repo::RepoCommand;
pub use service::ServeArgs;
pub use token::{AdminCommand, TokenCommand};

/// Publish signed Alpine package repositories into an S3 bucket or a local directory.
#[derive(Debug, Parser)]
#[command(name = "packages", version, about, propagate_version = false)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where the repositories live: `s3://BUCKET[/PREFIX]`, `file:///path` or a path
    #[arg(
        long,
        global = true,
        env = "PACKAGES_STORAGE",
        default_value = "./packages-data"
    )]
    pub storage: String,
    /// A separate store for the private tree (signing keys, records, tokens); default: the same store, under `config/`
    #[arg(long, global = true, env = "PACKAGES_CONFIG_STORAGE")]
    pub config_storage: Option<String>,
    /// Use virtual-hosted-style S3 addressing even with a custom endpoint (`AWS_ENDPOINT_URL`)
    #[arg(long, global = true, env = "PACKAGES_S3_VIRTUAL_HOSTED")]
    pub s3_virtual_hosted: bool,
    /// Print results as JSON
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a store (a local directory or an S3 bucket prefix); other commands refuse a location without one
    Init,
    /// Manage organizations
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage signing keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// Create, list and delete versions, repositories and architectures
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Publish packages (checked, stored, indexed and signed before this returns)
    Upload(UploadArgs),
    /// List the packages of a repository
    List(RepoArgs),
    /// Remove packages from a repository's index (files stay downloadable for the grace period)
    Remove(RemoveArgs),
    /// Maintain indexes
    #[command(subcommand)]
    Index(IndexCommand),
    /// Version aliases of every distro (`latest -> v3.20`, `stable -> bookworm`)
    #[command(subcommand)]
    Alias(alias::AliasCommand),
    /// Debian-style suites: aliases (`stable -> bookworm`)
    #[command(subcommand)]
    Suite(suite::SuiteCommand),
    /// Quotas per org, distro, version and repo (bytes and packages)
    #[command(subcommand)]
    Quota(quota::QuotaCommand),
    /// Usage and quota limits of an org, distro, version or repo, and of every level below it
    Usage(quota::QuotaLevelArgs),
    /// Delete files of removed packages whose grace period is over (and old audit records, if asked)
    Gc {
        /// Delete audit records older than this many days (at least 1; default: keep them for good)
        #[arg(long, env = "PACKAGES_AUDIT_KEEP_DAYS", value_parser = clap::value_parser!(u64).range(1..))]
        audit_keep_days: Option<u64>,
    },
    /// Retention rules: keep the newest N versions, remove versions after D days
    #[command(subcommand)]
    Retention(retention::RetentionCommand),
    /// Show the audit log: who changed what, when and from where (newest first)
    Audit(audit::AuditArgs),
    /// Check the stores: reachable, credentials, conditional writes, clock skew, private-tree exposure
    Doctor {
        /// The public base URL clients use (bucket website or CDN); checks that the private tree is not readable through it
        #[arg(long, env = "PACKAGES_PUBLIC_URL")]
        public_url: Option<String>,
    },
    /// Create the first admin token (printed once)
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Manage API tokens (stored as hashes under `config/`)
    #[command(subcommand)]
    Token(TokenCommand),
    /// Tell whether a package version is already published (exit status 0: yes, 1: no, 2: error)
    Check(CheckArgs),
    /// Serve the HTTP API and the public tree (for CI uploads, and `apk` with no cloud)
    Serve(ServeArgs),
    /// Check a published repository over HTTP as a client would (exit status 0: good, 1: problems, 2: could not check)
    Verify(verify::VerifyArgs),
    /// Move a tree of the old service (atlascloud/packages) into the store: orgs, keys, tokens, packages
    Import(ImportArgs),
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    // Remote mode talks to a server and never opens a store.
    // `verify` reads a published repository over HTTP: no store, no server.
    if let Command::Verify(args) = &cli.command {
        return verify::verify(args, cli.global.json).await;
    }
    if remote::is_remote(&cli.global.remote) {
        return remote::run(&cli.global.remote, cli.command, cli.global.json).await;
    }
    let config = StoreConfig::parse(
        Some(&cli.global.storage),
        cli.global.config_storage.as_deref(),
        cli.global.s3_virtual_hosted,
    )?;
    eprintln!("store: {}", config.describe());
    let mode = match &cli.command {
        Command::Init => OpenMode::Init,
        Command::Admin(AdminCommand::Init { .. }) | Command::Org(OrgCommand::Create { .. }) => {
            OpenMode::CreateIfNew
        }
        _ => OpenMode::Existing,
    };
    let (stores, opened) = config.open_checked(mode).await?;
    if matches!(cli.command, Command::Init) {
        return init::report(&config, &opened, cli.global.json);
    }
    init::report_created(&config, &opened);
    let json = cli.global.json;
    let publisher = Publisher::new(stores.clone()).with_actor(crate::audit::Actor::cli());
    let publisher = &publisher;
    match cli.command {
        Command::Init => Ok(()),
        Command::Org(command) => org::org(publisher, command, json).await,
        Command::Key(command) => key::key(publisher, command, json).await,
        Command::Suite(command) => suite::suite(publisher, command, json).await,
        Command::Alias(command) => alias::alias(publisher, command, json).await,
        Command::Repo(command) => repo::repo(publisher, command, json).await,
        Command::Upload(args) => packages::upload(publisher, args, json).await,
        Command::List(args) => packages::list(publisher, args, json).await,
        Command::Remove(args) => packages::remove(publisher, args, json).await,
        Command::Index(IndexCommand::Rebuild(args)) => index::rebuild(publisher, args, json).await,
        Command::Index(IndexCommand::Check(args)) => {
            index::check_indexes(publisher, args, json).await
        }
        Command::Index(IndexCommand::Repair(args)) => {
            index::repair_indexes(publisher, args, json).await
        }
        Command::Doctor { public_url } => {
            service::doctor(&stores, public_url.as_deref(), json).await
        }
        Command::Quota(command) => quota::quota(publisher, command, json).await,
        Command::Usage(level) => quota::usage(publisher, level, json).await,
        Command::Gc { audit_keep_days } => {
            let publisher = publisher.clone().with_audit_keep_days(audit_keep_days);
            service::gc(&publisher, json).await
        }
        Command::Audit(args) => audit::audit(publisher.into(), &args, json).await,
        Command::Retention(command) => retention::retention(publisher.into(), command, json).await,
        Command::Admin(AdminCommand::Init { name }) => {
            token::admin_init(&stores, &name, json).await
        }
        Command::Token(command) => token::token(publisher, command, json).await,
        Command::Check(args) => check::check(publisher.into(), &args, json).await,
        Command::Serve(args) => service::serve(stores, args).await,
        Command::Import(args) => import::import_tree(publisher, args, json).await,
        Command::Verify(_) => unreachable!("verify opens no store"),
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
