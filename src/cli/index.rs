//! `packages index`: check, repair and rebuild the signed indexes of a repository.

use anyhow::{Result, bail};
use clap::Subcommand;

use super::args::RepoArgs;
use super::output::print_json;
use crate::publish::Publisher;
use crate::repo::{Arch, Family, RepoId};

/// `packages index ...`
#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Recompute a repository's records and index from its `.apk` files (disaster recovery)
    Rebuild(RepoArgs),
    /// Find indexes that disagree with their records (stale, missing a package, bad signature) or that apk would refuse; exit 1 if any
    Check(RepoArgs),
    /// Republish indexes from their records, dropping records apk cannot read (fixes what `check` finds)
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

/// `index check` of a Debian-style suite (the version of `args`).
async fn check_suite(publisher: &Publisher, repo: &RepoId, json: bool) -> Result<()> {
    let suite = repo.suite()?;
    let problems = publisher.check_suite(&suite).await?;
    let failing = problems.iter().any(|p| !p.is_warning());
    if json {
        print_json(&serde_json::json!({"suite": suite.to_string(), "problems": problems}))?;
    } else {
        if !failing {
            println!("{suite}: ok");
        }
        for problem in &problems {
            println!("{suite}: {}", serde_json::to_string(problem)?);
        }
    }
    if failing {
        bail!("{suite} needs `packages index repair`");
    }
    Ok(())
}

pub(super) async fn check_indexes(publisher: &Publisher, args: RepoArgs, json: bool) -> Result<()> {
    let repo = args.repo()?;
    if repo.distro.family() == Family::Deb {
        return check_suite(publisher, &repo, json).await;
    }
    let rpm = repo.distro.family() == Family::Rpm;
    let (repo, arches) = repo_arches(publisher, &args).await?;
    let mut report = Vec::new();
    let mut bad = 0;
    for arch in arches {
        let problems = if rpm {
            publisher.check_rpm_arch(&repo.arch(arch.clone())).await?
        } else {
            publisher.check_index(&repo.arch(arch.clone())).await?
        };
        let failing = problems.iter().any(|p| !p.is_warning());
        if failing {
            bad += 1;
        }
        if !json {
            if !failing {
                println!("{repo}/{arch}: ok");
            }
            for problem in &problems {
                let warning = if problem.is_warning() {
                    "warning: "
                } else {
                    ""
                };
                println!(
                    "{repo}/{arch}: {warning}{}",
                    serde_json::to_string(problem)?
                );
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
    let repo = args.repo()?;
    if repo.distro.family() == Family::Deb {
        let suite = repo.suite()?;
        let done = publisher.repair_suite(&suite).await?;
        if json {
            print_json(
                &serde_json::json!({"suite": suite.to_string(), "packages": done.reindexed.packages}),
            )?;
        } else {
            println!("repaired {suite}: {} package(s)", done.reindexed.packages);
        }
        return Ok(());
    }
    let (repo, arches) = repo_arches(publisher, &args).await?;
    let mut summary = Vec::new();
    for arch in arches {
        if repo.distro.family() == Family::Rpm {
            let done = publisher.repair_rpm_arch(&repo.arch(arch.clone())).await?;
            if !json {
                println!(
                    "repaired {repo}/{arch}: {} package(s)",
                    done.reindexed.packages
                );
            }
            summary.push(serde_json::json!({
                "arch": arch.to_string(),
                "packages": done.reindexed.packages,
                "dropped": [],
            }));
            continue;
        }
        let done = publisher.repair_index(&repo.arch(arch.clone())).await?;
        let dropped: Vec<serde_json::Value> = done
            .dropped
            .iter()
            .map(|d| serde_json::json!({"file": d.entry, "reason": d.reason}))
            .collect();
        if !json {
            for d in &done.dropped {
                println!(
                    "dropped {repo}/{arch}/{}: apk cannot read it: {}",
                    d.entry, d.reason
                );
            }
            println!(
                "repaired {repo}/{arch}: {} package(s)",
                done.reindexed.packages
            );
        }
        summary.push(serde_json::json!({
            "arch": arch.to_string(),
            "packages": done.reindexed.packages,
            "dropped": dropped,
        }));
    }
    if json {
        print_json(&summary)?;
    }
    Ok(())
}

pub(super) async fn rebuild(publisher: &Publisher, args: RepoArgs, json: bool) -> Result<()> {
    let repo = args.repo()?;
    if repo.distro.family() == Family::Deb {
        bail!(
            "{repo}: a Debian suite's records name its pool files; republish it with `packages index repair`"
        );
    }
    let arches = match args.arch()? {
        Some(arch) => vec![arch],
        None => publisher.arches(&repo).await?,
    };
    if arches.is_empty() {
        bail!("{repo} has no arches: nothing to rebuild (name one with --arch)");
    }
    let mut summary = Vec::new();
    for arch in arches {
        let packages = if repo.distro.family() == Family::Rpm {
            publisher.rebuild_rpm_arch(&repo.arch(arch.clone())).await?
        } else {
            publisher.rebuild(&repo.arch(arch.clone())).await?.packages
        };
        summary.push(serde_json::json!({"arch": arch.to_string(), "packages": packages}));
        if !json {
            println!("rebuilt {repo}/{arch}: {packages} package(s)");
        }
    }
    if json {
        print_json(&summary)?;
    }
    Ok(())
}
