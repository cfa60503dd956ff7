//! `packages index`: check, repair and rebuild the signed indexes of a repository.

use anyhow::{Result, bail};
use clap::Subcommand;

use super::args::RepoArgs;
use super::output::print_json;
use crate::publish::Publisher;
use crate::repo::{Arch, RepoId};

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

async fn repo_arches(publisher: &Publisher, args: &RepoArgs) -> Result<(RepoId, Vec<Arch>)> {
    let repo = args.repo()?;
    let arches = match args.arch()? {
        Some(arch) => vec![arch],
        None => publisher.arches(&repo).await?,
    };
    if arches.is_empty() {
        bail!("{repo} has no arches (name one with --arch)");
    }
    Ok((repo, arches))
}

pub(super) async fn check_indexes(publisher: &Publisher, args: RepoArgs, json: bool) -> Result<()> {
    let (repo, arches) = repo_arches(publisher, &args).await?;
    let mut report = Vec::new();
    let mut bad = 0;
    for arch in arches {
        let problems = publisher.check_index(&repo.arch(arch.clone())).await?;
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

pub(super) async fn repair_indexes(
    publisher: &Publisher,
    args: RepoArgs,
    json: bool,
) -> Result<()> {
    let (repo, arches) = repo_arches(publisher, &args).await?;
    let mut summary = Vec::new();
    for arch in arches {
        let done = publisher.repair_index(&repo.arch(arch.clone())).await?;
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

pub(super) async fn rebuild(publisher: &Publisher, args: RepoArgs, json: bool) -> Result<()> {
    let repo = args.repo()?;
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
