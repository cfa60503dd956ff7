//! `packages index`: check, repair and rebuild the signed indexes of a
//! repository; in the store, or through a server in remote mode
//! ([`Backend`]), with the same reports.

use anyhow::{Result, bail};
use clap::Subcommand;
use serde::Serialize;

use super::args::RepoArgs;
use super::output::print_json;
use super::remote::Backend;
use crate::publish::repo_index::{IndexCheck, IndexRepair};
use crate::repo::{Arch, Family};

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

/// Runs `packages index check`: prints what is wrong, fails if anything is.
pub(super) async fn check_indexes<'a>(
    backend: impl Into<Backend<'a>>,
    args: RepoArgs,
    json: bool,
) -> Result<()> {
    let repo = args.repo()?;
    let report = backend
        .into()
        .check_indexes(&repo, args.arch()?.as_ref())
        .await?;
    print_check(&repo.to_string(), &report, json)?;
    let bad = report.failing();
    match &report {
        IndexCheck::Suite(suite) if bad > 0 => {
            bail!("{} needs `packages index repair`", suite.suite)
        }
        IndexCheck::Arches(_) if bad > 0 => {
            bail!("{bad} index(es) of {repo} need `packages index repair`")
        }
        _ => Ok(()),
    }
}

/// Prints an `index check` report: one line per index that is fine, one per
/// problem (an arch's warnings marked as such).
fn print_check(repo: &str, report: &IndexCheck, json: bool) -> Result<()> {
    if json {
        return print_json(report);
    }
    let (roots, mark_warnings) = match report {
        IndexCheck::Suite(suite) => (vec![(suite.suite.clone(), &suite.problems)], false),
        IndexCheck::Arches(arches) => (
            arches
                .iter()
                .map(|a| (format!("{repo}/{}", a.arch), &a.problems))
                .collect(),
            true,
        ),
    };
    for (root, problems) in roots {
        if !problems.iter().any(|p| !p.is_warning()) {
            println!("{root}: ok");
        }
        for problem in problems {
            let warning = if mark_warnings && problem.is_warning() {
                "warning: "
            } else {
                ""
            };
            println!("{root}: {warning}{}", serde_json::to_string(problem)?);
        }
    }
    Ok(())
}

/// Runs `packages index repair`.
pub(super) async fn repair_indexes<'a>(
    backend: impl Into<Backend<'a>>,
    args: RepoArgs,
    json: bool,
) -> Result<()> {
    let repo = args.repo()?;
    let report = backend
        .into()
        .repair_indexes(&repo, args.arch()?.as_ref())
        .await?;
    if json {
        return print_json(&report);
    }
    match &report {
        IndexRepair::Suite(suite) => {
            println!("repaired {}: {} package(s)", suite.suite, suite.packages);
        }
        IndexRepair::Arches(arches) => {
            for arch in arches {
                for d in &arch.dropped {
                    println!(
                        "dropped {repo}/{}/{}: apk cannot read it: {}",
                        arch.arch, d.file, d.reason
                    );
                }
                println!(
                    "repaired {repo}/{}: {} package(s)",
                    arch.arch, arch.packages
                );
            }
        }
    }
    Ok(())
}

/// One arch rebuilt.
#[derive(Debug, Serialize)]
struct Rebuilt {
    arch: String,
    packages: usize,
}

/// Runs `packages index rebuild`: records and indexes from the package files.
pub(super) async fn rebuild<'a>(
    backend: impl Into<Backend<'a>>,
    args: RepoArgs,
    json: bool,
) -> Result<()> {
    let backend = backend.into();
    let repo = args.repo()?;
    if repo.distro.family() == Family::Deb {
        bail!(
            "{repo}: a Debian suite's records name its pool files; republish it with `packages index repair`"
        );
    }
    let arches: Vec<Arch> = match args.arch()? {
        Some(arch) => vec![arch],
        None => backend.arches(&repo).await?,
    };
    if arches.is_empty() {
        bail!("{repo} has no arches: nothing to rebuild (name one with --arch)");
    }
    let mut summary = Vec::new();
    for arch in arches {
        let packages = match backend {
            Backend::Store(publisher) if repo.distro.family() == Family::Rpm => {
                publisher.rebuild_rpm_arch(&repo.arch(arch.clone())).await?
            }
            Backend::Store(publisher) => {
                publisher.rebuild(&repo.arch(arch.clone())).await?.packages
            }
            Backend::Server(client) => client.reindex(&repo, &arch, true).await?.packages,
        };
        if !json {
            println!("rebuilt {repo}/{arch}: {packages} package(s)");
        }
        summary.push(Rebuilt {
            arch: arch.to_string(),
            packages,
        });
    }
    if json {
        print_json(&summary)?;
    }
    Ok(())
}
