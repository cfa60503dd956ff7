//! The command line: clap definitions and the commands behind them.
//!
//! Data goes to stdout (`--json` for scripts), messages and progress to
//! stderr. Every failure names the file or object and the problem.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::api::{ApiConfig, ApiState};
use crate::config::StoreConfig;
use crate::keys;
use crate::publish::{Publisher, Upload};
use crate::repo::{Arch, Distro, Org, RepoId, Scope, Segment};
use crate::stores::Stores;
use crate::tokens::{TokenLevel, Tokens};

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
    /// Tell whether a package version is already published (exit status 0: yes, 1: no)
    Check(CheckArgs),
    /// Serve the HTTP API and the public tree (for CI uploads, and `apk` with no cloud)
    Serve(ServeArgs),
}

/// `packages admin ...`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create the first server-wide admin token; refused once one exists (then use `token create`)
    Init {
        /// A name for the token
        #[arg(long, default_value = "admin")]
        name: String,
    },
}

/// `packages token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; without `--org`, an admin token. The token is printed once, alone on the last line of stdout
    Create {
        /// A name for people (e.g. `ci-main`)
        #[arg(long)]
        name: String,
        #[command(flatten)]
        level: LevelArgs,
        /// May only read (list), not publish or delete
        #[arg(long)]
        read_only: bool,
        /// Lifetime, e.g. `90d`, `12h`, `2w` (default: no expiry)
        #[arg(long)]
        expires: Option<String>,
    },
    /// List the tokens of one level (default: the admin level)
    List {
        #[command(flatten)]
        level: LevelArgs,
    },
    /// Revoke a token, given by id (from `token list`, with its level) or in plaintext
    Revoke {
        /// The token's id, or the token itself
        token: String,
        #[command(flatten)]
        level: LevelArgs,
    },
}

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

/// Where to reach a server instead of the store (remote mode).
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Talk to this `packages serve` server instead of the store (e.g. `https://packages.example.com`)
    #[arg(long, env = "PACKAGES_SERVER", requires = "token")]
    pub server: Option<String>,
    /// API token for `--server`
    #[arg(long, env = "PACKAGES_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// `packages check ...`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["apkbuild", "file"])))]
pub struct CheckArgs {
    /// An `APKBUILD`: checks `<pkgname>-<pkgver>-r<pkgrel>.apk`
    #[arg(long)]
    pub apkbuild: Option<PathBuf>,
    /// A package file: checks its name and version
    #[arg(long)]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub repo: RepoArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
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
    /// The `.apk` files. Every file is checked before any is stored: if one
    /// is refused, nothing is published. A file refused because the repo
    /// holds a different package under its name is reported and the others
    /// are published. Each arch's index is signed once for the whole batch.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub remote: RemoteArgs,
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
    /// Serve only the public tree, no API
    #[arg(long, env = "PACKAGES_NO_API")]
    pub no_api: bool,
    /// Largest request body (an upload), in MiB
    #[arg(long, env = "PACKAGES_MAX_BODY_MIB", default_value_t = crate::api::DEFAULT_MAX_BODY >> 20)]
    pub max_body_mib: u64,
    /// Longest time a request (upload included) may take, in seconds
    #[arg(long, env = "PACKAGES_REQUEST_TIMEOUT_SECS", default_value_t = crate::api::DEFAULT_REQUEST_TIMEOUT.as_secs())]
    pub request_timeout_secs: u64,
    /// How long token look-ups are cached, in seconds (a revocation takes effect within this time; 0: no cache)
    #[arg(long, env = "PACKAGES_TOKEN_CACHE_SECS", default_value_t = crate::tokens::DEFAULT_CACHE_TTL.as_secs())]
    pub token_cache_secs: u64,
    /// Where uploads are staged while they arrive (default: the system's temporary directory)
    #[arg(long, env = "PACKAGES_UPLOAD_DIR")]
    pub upload_dir: Option<PathBuf>,
    /// The public base URL clients use (bucket website or CDN): at start-up, refuse to run if the private tree is readable through it
    #[arg(long, env = "PACKAGES_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// How often to delete files of removed packages whose grace period is over, in seconds (0: never)
    #[arg(long, env = "PACKAGES_GC_INTERVAL_SECS", default_value_t = 3600)]
    pub gc_interval_secs: u64,
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

/// One line per arch a file was published into: the same in direct and remote mode.
/// Each item is `(name, version, arch, unchanged)`.
fn print_published<'a>(
    display: &str,
    repo: &RepoId,
    published: impl IntoIterator<Item = (&'a str, &'a str, &'a str, bool)>,
) {
    for (name, version, arch, unchanged) in published {
        let note = if unchanged {
            " (already published)"
        } else {
            ""
        };
        println!("{display} {name} {version} -> {repo}/{arch}{note}");
    }
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    // Remote mode talks to a server and never opens a store.
    match &cli.command {
        Command::Upload(args) if args.remote.server.is_some() => {
            return remote_upload(args, cli.global.json).await;
        }
        Command::Check(args) if args.remote.server.is_some() => {
            return check(None, args, cli.global.json).await;
        }
        _ => {}
    }
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
        Command::Doctor { public_url } => doctor(&stores, public_url.as_deref(), json).await,
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
        Command::Admin(AdminCommand::Init { name }) => admin_init(&stores, &name, json).await,
        Command::Token(command) => token(&stores, command, json).await,
        Command::Check(args) => check(Some(&stores), &args, json).await,
        Command::Serve(args) => serve(stores, args).await,
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
    let progress = indicatif::ProgressBar::new_spinner();
    progress.enable_steady_tick(std::time::Duration::from_millis(120));
    progress.set_message(format!(
        "checking and publishing {} file(s)",
        args.files.len()
    ));
    let (arch, extra) = match arches.split_first() {
        Some((first, rest)) => (Some(first.clone()), rest.to_vec()),
        None => (None, Vec::new()),
    };
    let uploads: Vec<Upload> = args
        .files
        .iter()
        .map(|file| Upload {
            repo: repo.clone(),
            arch: arch.clone(),
            extra_arches: extra.clone(),
            path: file.clone(),
            display_name: file.display().to_string(),
        })
        .collect();
    // One batch: every file is checked before any is stored, and each repo
    // arch is published once.
    let outcome = publisher.upload_many(&uploads).await;
    progress.finish_and_clear();
    let mut results = Vec::new();
    let mut refused = Vec::new();
    for (upload, result) in uploads.iter().zip(outcome?) {
        match result {
            Ok(published) => {
                if !json {
                    print_published(
                        &upload.display_name,
                        &repo,
                        published.iter().map(|p| {
                            (
                                p.record.name.as_str(),
                                p.record.version.as_str(),
                                p.arch.as_str(),
                                p.unchanged,
                            )
                        }),
                    );
                }
                results.extend(published);
            }
            Err(e) => refused.push(e),
        }
    }
    if json {
        print_json(&results)?;
    }
    match refused.len() {
        0 => Ok(()),
        1 => Err(refused.remove(0).into()),
        n => {
            for e in &refused {
                eprintln!("error: {e}");
            }
            bail!("{n} files were refused (the others are published)")
        }
    }
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

async fn doctor(stores: &Stores, public_url: Option<&str>, json: bool) -> Result<()> {
    let report = crate::doctor::diagnose(stores, public_url).await;
    if json {
        print_json(&report)?;
    } else {
        for (tree, r) in [
            ("public", Some(&report.public)),
            ("private", report.private.as_ref()),
        ] {
            let Some(r) = r else { continue };
            println!("{tree} store: {}", r.store);
            match &r.error {
                None => println!("  reachable, credentials ok"),
                Some(e) => println!("  NOT reachable: {e}"),
            }
            if let Some(c) = r.conditional_writes {
                println!(
                    "  conditional writes: {}",
                    if c {
                        "yes"
                    } else {
                        "no (ignored by this store)"
                    }
                );
            }
            if let Some(s) = r.clock_skew_seconds {
                println!("  clock skew: {s:+.0} s");
            }
        }
        if report.private.is_none() {
            println!("private tree: same store, under config/");
        }
        for g in &report.guarantees {
            println!("- {g}");
        }
        match (&report.private_tree_exposed, public_url) {
            (Some(url), _) => println!(
                "PRIVATE TREE EXPOSED at {url}: {}",
                crate::doctor::EXPOSURE_FIX
            ),
            (None, Some(url)) => println!("private tree not readable through {url}"),
            (None, None) => {
                println!("(give --public-url to check that the private tree is not public)")
            }
        }
    }
    if !report.healthy() {
        bail!("the store is not ready for publishing (see above)");
    }
    Ok(())
}

/// What the service checks before it starts: the store answers, which
/// guarantees hold, and (given the public URL) that the private tree is not public.
async fn startup_check(stores: &Stores, public_url: Option<&str>) -> Result<()> {
    let report = crate::doctor::diagnose(stores, public_url).await;
    for r in [Some(&report.public), report.private.as_ref()]
        .into_iter()
        .flatten()
    {
        if let Some(e) = &r.error {
            bail!("{}: not usable: {e}", r.store);
        }
        tracing::info!(
            store = %r.store,
            conditional_writes = ?r.conditional_writes,
            clock_skew_seconds = ?r.clock_skew_seconds,
            "store checked"
        );
    }
    for g in &report.guarantees {
        tracing::info!("{g}");
    }
    if let Some(url) = &report.private_tree_exposed {
        bail!(
            "refusing to start: {url} serves the private tree: {}",
            crate::doctor::EXPOSURE_FIX
        );
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
            println!("repaired {repo}/{arch}: {} package(s)", done.packages);
        }
        summary.push(serde_json::json!({"arch": arch.to_string(), "packages": done.packages}));
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
        summary.push(serde_json::json!({"arch": arch.to_string(), "packages": state.packages}));
        if !json {
            println!("rebuilt {repo}/{arch}: {} package(s)", state.packages);
        }
    }
    if json {
        print_json(&summary)?;
    }
    Ok(())
}

// ---- the service: tokens, remote mode, check, serve -------------------------

impl LevelArgs {
    fn level(&self) -> Result<TokenLevel> {
        Ok(TokenLevel::from_parts(
            self.org.as_deref(),
            self.distro.as_deref(),
            self.version.as_deref(),
            self.repo.as_deref(),
        )?)
    }
}

async fn admin_init(stores: &Stores, name: &str, json: bool) -> Result<()> {
    let tokens = Tokens::new(stores.clone(), Duration::ZERO);
    if tokens.has_admin().await? {
        bail!(
            "an admin token exists already: create more with `packages token create --name NAME`"
        );
    }
    create_token(&tokens, &TokenLevel::Admin, name, false, None, json).await
}

async fn create_token(
    tokens: &Tokens,
    level: &TokenLevel,
    name: &str,
    read_only: bool,
    lifetime: Option<Duration>,
    json: bool,
) -> Result<()> {
    let (token, info) = tokens.create(level, name, read_only, lifetime).await?;
    if json {
        return print_json(&crate::api::v1::CreatedToken {
            token: token.expose().to_owned(),
            info,
        });
    }
    eprintln!(
        "created {}token `{}` for {} (id {}); it is shown only once, below:",
        if read_only { "read-only " } else { "" },
        info.name,
        info.level,
        info.id
    );
    println!("{}", token.expose());
    Ok(())
}

async fn token(stores: &Stores, command: TokenCommand, json: bool) -> Result<()> {
    let tokens = Tokens::new(stores.clone(), Duration::ZERO);
    match command {
        TokenCommand::Create {
            name,
            level,
            read_only,
            expires,
        } => {
            let level = level.level()?;
            let lifetime = expires
                .as_deref()
                .map(crate::tokens::parse_duration)
                .transpose()?;
            create_token(&tokens, &level, &name, read_only, lifetime, json).await
        }
        TokenCommand::List { level } => {
            let listed = tokens.list(&level.level()?).await?;
            if json {
                return print_json(&listed);
            }
            for t in &listed {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.name,
                    t.level,
                    if t.read_only {
                        "read-only"
                    } else {
                        "read-write"
                    },
                    t.expires
                        .map_or_else(|| "no expiry".to_owned(), |e| format!("expires {e}"))
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { token, level } => {
            let revoked = if token.starts_with(crate::tokens::TOKEN_PREFIX) {
                tokens.revoke_plain(&token).await?
            } else {
                tokens.revoke(&level.level()?, &token).await?
            };
            if json {
                return print_json(&revoked);
            }
            println!(
                "revoked token `{}` of {} ({})",
                revoked.name, revoked.level, revoked.id
            );
            Ok(())
        }
    }
}

fn remote_client(remote: &RemoteArgs) -> Result<crate::api::client::Client> {
    let server = remote
        .server
        .as_deref()
        .context("no server given (`--server` or `PACKAGES_SERVER`)")?;
    let token = remote
        .token
        .as_deref()
        .context("`--server` needs a token (`--token` or `PACKAGES_TOKEN`)")?;
    Ok(crate::api::client::Client::new(server, token)?)
}

/// `upload --server`: the same checks and output as the direct mode, through the API.
async fn remote_upload(args: &UploadArgs, json: bool) -> Result<()> {
    let client = remote_client(&args.remote)?;
    let repo = RepoId::parse(&args.org, &args.distro, &args.version, &args.repo)?;
    let arches = args
        .arch
        .iter()
        .map(|a| Arch::parse(a))
        .collect::<Result<Vec<_>, _>>()?;
    for file in &args.files {
        if !file.is_file() {
            bail!("{}: no such file", file.display());
        }
    }
    let progress = indicatif::ProgressBar::new(0);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{bytes}/{total_bytes}] {bytes_per_sec} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    progress.enable_steady_tick(std::time::Duration::from_millis(120));
    let mut results = Vec::new();
    for file in &args.files {
        let display = file.display().to_string();
        progress.set_message(display.clone());
        progress.set_position(0);
        progress.set_length(std::fs::metadata(file).map(|m| m.len()).unwrap_or(0));
        let bar = progress.clone();
        let published = match client
            .upload(&repo, &arches, file, move |sent| bar.set_position(sent))
            .await
        {
            Ok(p) => p,
            Err(e) => {
                progress.finish_and_clear();
                return Err(anyhow::Error::new(e).context(format!("{display}: upload failed")));
            }
        };
        if !json {
            progress.suspend(|| {
                print_published(
                    &display,
                    &repo,
                    published.iter().map(|p| {
                        (
                            p.record.name.as_str(),
                            p.record.version.as_str(),
                            p.arch.as_str(),
                            p.unchanged,
                        )
                    }),
                )
            });
        }
        results.extend(published);
    }
    progress.finish_and_clear();
    if json {
        print_json(&results)?;
    }
    Ok(())
}

/// `packages check`: prints one line and exits 0 when published, 1 when not.
async fn check(stores: Option<&Stores>, args: &CheckArgs, json: bool) -> Result<()> {
    let repo = args.repo.repo()?;
    let mut arch = args.repo.arch()?;
    let (name, version) = if let Some(path) = &args.apkbuild {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let parsed = crate::apkbuild::parse(&text)
            .with_context(|| format!("{}: cannot read the package version", path.display()))?;
        (parsed.pkgname.clone(), parsed.version())
    } else {
        let path = args.file.clone().context("give `--apkbuild` or `--file`")?;
        let display = path.display().to_string();
        let package = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path)?;
            crate::formats::apk::read_package(
                std::io::BufReader::new(file),
                &crate::formats::apk::ApkLimits::default(),
            )
        })
        .await?
        .with_context(|| format!("{display}: not a valid package"))?;
        if arch.is_none() && !package.is_noarch() {
            arch = Some(Arch::parse(package.arch())?);
        }
        (package.record.name.clone(), package.record.version.clone())
    };
    let file = format!("{name}-{version}.apk");
    let found: Vec<String> = match stores {
        Some(stores) => match Publisher::new(stores.clone())
            .list(&repo, arch.as_ref())
            .await
        {
            Ok(listed) => listed
                .into_iter()
                .filter(|l| l.file == file)
                .map(|l| l.arch)
                .collect(),
            Err(crate::publish::PublishError::OrgNotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        },
        None => {
            let client = remote_client(&args.remote)?;
            match client
                .list_packages(&repo, arch.as_ref(), Some(&name))
                .await
            {
                Ok(listed) => listed
                    .into_iter()
                    .filter(|p| p.file == file)
                    .map(|p| p.arch)
                    .collect(),
                // No such org, repo or arch: nothing is published there.
                Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => Vec::new(),
                Err(e) => return Err(e.into()),
            }
        }
    };
    let published = !found.is_empty();
    let place = match &arch {
        Some(arch) => format!("{repo}/{arch}"),
        None => repo.to_string(),
    };
    if json {
        print_json(&serde_json::json!({
            "file": file,
            "repo": repo.to_string(),
            "arch": arch.as_ref().map(ToString::to_string),
            "published": published,
            "arches": found,
        }))?;
    } else if published {
        println!("published: {file} in {repo}/{}", found.join(","));
    } else {
        println!("not published: {file} in {place}");
    }
    if !published {
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        // The answer is the exit status; this is not an error.
        std::process::exit(1);
    }
    Ok(())
}

async fn serve(stores: Stores, args: ServeArgs) -> Result<()> {
    startup_check(&stores, args.public_url.as_deref()).await?;
    if args.gc_interval_secs > 0 && !args.no_api {
        let publisher = Publisher::new(stores.clone());
        let every = Duration::from_secs(args.gc_interval_secs);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                match publisher.gc().await {
                    Ok(deleted) if !deleted.is_empty() => {
                        tracing::info!(deleted = deleted.len(), "garbage collected");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
                }
            }
        });
    }
    if args.no_api {
        eprintln!(
            "serving the public tree of {} on http://{}",
            stores.public().describe(),
            args.listen
        );
        return crate::serve::run(crate::serve::router(stores), args.listen)
            .await
            .with_context(|| format!("cannot serve on {}", args.listen));
    }
    let max_body = args
        .max_body_mib
        .checked_mul(1 << 20)
        .context("--max-body-mib is too large")?;
    if let Some(dir) = &args.upload_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the upload directory", dir.display()))?;
    }
    let config = ApiConfig {
        max_body,
        request_timeout: Duration::from_secs(args.request_timeout_secs),
        token_cache_ttl: Duration::from_secs(args.token_cache_secs),
        upload_dir: args.upload_dir.clone(),
    };
    let tokens = Tokens::new(stores.clone(), Duration::ZERO);
    if !tokens.has_admin().await? {
        eprintln!("no admin token yet: create one with `packages admin init`");
    }
    eprintln!(
        "serving the API and the public tree of {} on http://{}",
        stores.public().describe(),
        args.listen
    );
    let state = ApiState::new(Publisher::new(stores), config);
    crate::serve::run(crate::api::router(state), args.listen)
        .await
        .with_context(|| format!("cannot serve on {}", args.listen))
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
