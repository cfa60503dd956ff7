//! The command line: clap definitions and the commands behind them.
//!
//! Data goes to stdout (`--json` for scripts), messages and progress to
//! stderr. Every failure names the file or object and the problem.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::config::StoreConfig;
use crate::keys;
use crate::publish::{Publisher, Upload};
use crate::repo::{Arch, Distro, Org, RepoId, Scope, Segment};
use crate::stores::Stores;

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
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage organizations
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage signing keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// Publish packages (checked, stored, indexed and signed before this returns)
    Upload(UploadArgs),
    /// List the packages of a repository
    List(RepoArgs),
    /// Remove packages from a repository's index (files stay downloadable for the grace period)
    Remove(RemoveArgs),
    /// Maintain indexes
    #[command(subcommand)]
    Index(IndexCommand),
    /// Delete files of removed packages whose grace period is over
    Gc,
    /// Serve the public tree over HTTP (for `apk` with no cloud)
    Serve(ServeArgs),
}

/// `packages org ...`
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization
    Create {
        /// Its name (lowercase letters, digits, `-`, `_`, `.`)
        name: String,
    },
    /// List organizations
    List,
    /// Show an organization
    Show {
        /// Its name
        name: String,
    },
    /// Delete an organization (refused when it has packages, unless `--force`)
    Delete {
        /// Its name
        name: String,
        /// Delete everything in it too
        #[arg(long)]
        force: bool,
    },
}

/// `packages key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a signing key for a distro, version or repo (the most specific one signs)
    Generate {
        #[command(flatten)]
        scope: ScopeArgs,
        /// RSA key size
        #[arg(long, default_value_t = keys::DEFAULT_KEY_BITS)]
        bits: usize,
    },
    /// Import an existing PEM private key (e.g. from `abuild-keygen`)
    Import {
        #[command(flatten)]
        scope: ScopeArgs,
        /// The PEM file
        #[arg(long)]
        file: PathBuf,
    },
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

/// `packages upload ...`
#[derive(Debug, Args)]
pub struct UploadArgs {
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
    /// Target arch: must match the package; for a noarch package, the arches to publish it into (repeatable; default: every arch of the repo)
    #[arg(long)]
    pub arch: Vec<String>,
    /// The `.apk` files
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `packages remove ...`
#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Package names (every version) or file names (`<name>-<version>.apk`)
    #[arg(required = true)]
    pub packages: Vec<String>,
}

/// `packages index ...`
#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Recompute a repository's records and index from its `.apk` files (disaster recovery)
    Rebuild(RepoArgs),
    /// Find indexes that disagree with their records (stale, missing a package, bad signature); exit 1 if any
    Check(RepoArgs),
    /// Republish indexes from their records (fixes what `check` finds)
    Repair(RepoArgs),
}

/// `packages serve ...`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, env = "PACKAGES_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

impl RepoArgs {
    fn repo(&self) -> Result<RepoId> {
        Ok(RepoId::parse(
            &self.org,
            &self.distro,
            &self.version,
            &self.repo,
        )?)
    }

    fn arch(&self) -> Result<Option<Arch>> {
        Ok(self.arch.as_deref().map(Arch::parse).transpose()?)
    }
}

impl ScopeArgs {
    fn scope(&self) -> Result<Scope> {
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

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let config = StoreConfig::parse(
        Some(&cli.global.storage),
        cli.global.config_storage.as_deref(),
        cli.global.s3_virtual_hosted,
    )?;
    let stores = config.open().await.context("cannot open the store")?;
    let json = cli.global.json;
    match cli.command {
        Command::Org(command) => org(&stores, command, json).await,
        Command::Key(command) => key(&stores, command, json).await,
        Command::Upload(args) => upload(&stores, args, json).await,
        Command::List(args) => list(&stores, args, json).await,
        Command::Remove(args) => remove(&stores, args, json).await,
        Command::Index(IndexCommand::Rebuild(args)) => rebuild(&stores, args, json).await,
        Command::Index(IndexCommand::Check(args)) => check_indexes(&stores, args, json).await,
        Command::Index(IndexCommand::Repair(args)) => repair_indexes(&stores, args, json).await,
        Command::Gc => {
            let deleted = Publisher::new(stores).gc().await?;
            if json {
                print_json(&deleted)
            } else {
                for key in &deleted {
                    println!("deleted {key}");
                }
                eprintln!("{} expired file(s) deleted", deleted.len());
                Ok(())
            }
        }
        Command::Serve(args) => {
            eprintln!(
                "serving the public tree of {} on http://{}",
                stores.public().describe(),
                args.listen
            );
            crate::serve::run(crate::serve::router(stores), args.listen)
                .await
                .with_context(|| format!("cannot serve on {}", args.listen))
        }
    }
}

async fn org(stores: &Stores, command: OrgCommand, json: bool) -> Result<()> {
    let publisher = Publisher::new(stores.clone());
    match command {
        OrgCommand::Create { name } => {
            let record = publisher.create_org(&Org::parse(&name)?).await?;
            if json {
                print_json(&record)
            } else {
                println!("created organization {}", record.name);
                Ok(())
            }
        }
        OrgCommand::List => {
            let orgs = publisher.list_orgs().await?;
            if json {
                print_json(&orgs)
            } else {
                orgs.iter().for_each(|o| println!("{o}"));
                Ok(())
            }
        }
        OrgCommand::Show { name } => {
            let record = publisher.get_org(&Org::parse(&name)?).await?;
            if json {
                print_json(&record)
            } else {
                println!("{} (created {})", record.name, record.created);
                Ok(())
            }
        }
        OrgCommand::Delete { name, force } => {
            publisher.delete_org(&Org::parse(&name)?, force).await?;
            if !json {
                println!("deleted organization {name}");
            }
            Ok(())
        }
    }
}

async fn key(stores: &Stores, command: KeyCommand, json: bool) -> Result<()> {
    let (scope, generated) = match command {
        KeyCommand::Generate { scope, bits } => {
            let scope = scope.scope()?;
            Publisher::new(stores.clone()).get_org(&scope.org).await?;
            let generated = keys::generate(stores, &scope, bits).await?;
            (scope, generated)
        }
        KeyCommand::Import { scope, file } => {
            let scope = scope.scope()?;
            Publisher::new(stores.clone()).get_org(&scope.org).await?;
            let pem = std::fs::read_to_string(&file)
                .with_context(|| format!("{}: cannot read", file.display()))?;
            let generated = keys::import(stores, &scope, &pem)
                .await
                .with_context(|| format!("{}: cannot import", file.display()))?;
            (scope, generated)
        }
    };
    if json {
        return print_json(&generated);
    }
    eprintln!("signing key for {scope} stored; clients trust it with:");
    eprintln!(
        "  wget -O /etc/apk/keys/{} <BASE URL>/{}",
        generated.key_name, generated.public_path
    );
    println!("{}", generated.key_name);
    println!("{}", generated.public_path);
    Ok(())
}

async fn upload(stores: &Stores, args: UploadArgs, json: bool) -> Result<()> {
    let repo = RepoId::parse(&args.org, &args.distro, &args.version, &args.repo)?;
    let arches = args
        .arch
        .iter()
        .map(|a| Arch::parse(a))
        .collect::<Result<Vec<_>, _>>()?;
    // Check that every file is readable before publishing any.
    for file in &args.files {
        if !file.is_file() {
            bail!("{}: no such file", file.display());
        }
    }
    let publisher = Publisher::new(stores.clone());
    let progress = indicatif::ProgressBar::new(args.files.len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    progress.enable_steady_tick(std::time::Duration::from_millis(120));
    let mut results = Vec::new();
    for file in &args.files {
        let display = file.display().to_string();
        progress.set_message(display.clone());
        let (arch, extra) = match arches.split_first() {
            Some((first, rest)) => (Some(first.clone()), rest.to_vec()),
            None => (None, Vec::new()),
        };
        let published = publisher
            .upload(&Upload {
                repo: repo.clone(),
                arch,
                extra_arches: extra,
                path: file.clone(),
                display_name: display.clone(),
            })
            .await;
        let published = match published {
            Ok(p) => p,
            Err(e) => {
                progress.finish_and_clear();
                return Err(e.into());
            }
        };
        progress.inc(1);
        for p in &published {
            if !json {
                progress.suspend(|| {
                    println!(
                        "{} {} {} -> {}/{}{}",
                        display,
                        p.record.name,
                        p.record.version,
                        repo,
                        p.arch,
                        if p.unchanged {
                            " (already published)"
                        } else {
                            ""
                        }
                    );
                });
            }
        }
        results.extend(published);
    }
    progress.finish_and_clear();
    if json {
        print_json(&results)?;
    }
    Ok(())
}

async fn list(stores: &Stores, args: RepoArgs, json: bool) -> Result<()> {
    let listed = Publisher::new(stores.clone())
        .list(&args.repo()?, args.arch()?.as_ref())
        .await?;
    if json {
        return print_json(&listed);
    }
    for l in &listed {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            l.arch, l.record.name, l.record.version, l.record.file_size, l.record.checksum
        );
    }
    Ok(())
}

async fn remove(stores: &Stores, args: RemoveArgs, json: bool) -> Result<()> {
    let repo = args.repo.repo()?;
    let arch = args.repo.arch()?;
    let publisher = Publisher::new(stores.clone());
    let mut removed = Vec::new();
    for what in &args.packages {
        removed.extend(publisher.remove(&repo, arch.as_ref(), what).await?);
    }
    if json {
        return print_json(&removed);
    }
    for l in &removed {
        println!("removed {} from {}/{}", l.file, repo, l.arch);
    }
    Ok(())
}

async fn repo_arches(stores: &Stores, args: &RepoArgs) -> Result<(RepoId, Vec<Arch>)> {
    let repo = args.repo()?;
    let arches = match args.arch()? {
        Some(arch) => vec![arch],
        None => Publisher::new(stores.clone()).arches(&repo).await?,
    };
    if arches.is_empty() {
        bail!("{repo} has no arches (name one with --arch)");
    }
    Ok((repo, arches))
}

async fn check_indexes(stores: &Stores, args: RepoArgs, json: bool) -> Result<()> {
    let (repo, arches) = repo_arches(stores, &args).await?;
    let mut report = Vec::new();
    let mut bad = 0;
    for arch in arches {
        let problems = crate::index::check(stores, &repo.arch(arch.clone())).await?;
        if !problems.is_empty() {
            bad += 1;
        }
        if !json {
            if problems.is_empty() {
                println!("{repo}/{arch}: ok");
            }
            for problem in &problems {
                println!("{repo}/{arch}: {}", serde_json::to_string(problem)?);
            }
        }
        report.push(serde_json::json!({"arch": arch.to_string(), "problems": problems}));
    }
    if json {
        print_json(&report)?;
    }
    if bad > 0 {
        bail!("{bad} index(es) of {repo} need `packages index repair`");
    }
    Ok(())
}

async fn repair_indexes(stores: &Stores, args: RepoArgs, json: bool) -> Result<()> {
    let (repo, arches) = repo_arches(stores, &args).await?;
    let mut summary = Vec::new();
    for arch in arches {
        let done = crate::index::repair(stores, &repo.arch(arch.clone())).await?;
        if !json {
            println!(
                "repaired {repo}/{arch}: {} package(s)",
                done.state.records.len()
            );
        }
        summary.push(
            serde_json::json!({"arch": arch.to_string(), "packages": done.state.records.len()}),
        );
    }
    if json {
        print_json(&summary)?;
    }
    Ok(())
}

async fn rebuild(stores: &Stores, args: RepoArgs, json: bool) -> Result<()> {
    let repo = args.repo()?;
    let publisher = Publisher::new(stores.clone());
    let arches = match args.arch()? {
        Some(arch) => vec![arch],
        None => publisher.arches(&repo).await?,
    };
    if arches.is_empty() {
        bail!("{repo} has no arches: nothing to rebuild (name one with --arch)");
    }
    let mut summary = Vec::new();
    for arch in arches {
        let state = publisher.rebuild(&repo.arch(arch.clone())).await?;
        summary
            .push(serde_json::json!({"arch": arch.to_string(), "packages": state.records.len()}));
        if !json {
            println!("rebuilt {repo}/{arch}: {} package(s)", state.records.len());
        }
    }
    if json {
        print_json(&summary)?;
    }
    Ok(())
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
