//! `packages repo`: create, list and delete versions, repositories and
//! architectures. Versions and repositories exist only once created (or
//! uploaded to with `--create`): a mistyped name is an error, not a new
//! repository.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::output::print_json;
use crate::publish::{Listed, Publisher};
use crate::repo::{Arch, Distro, Org, RepoId, Segment};

/// `packages repo ...`
#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Create a repository (and its version); idempotent
    Create {
        #[command(flatten)]
        at: RepoAt,
        /// Architectures it serves from the start (repeatable; uploads add theirs)
        #[arg(long)]
        arch: Vec<String>,
    },
    /// List an organization's distros, versions and repositories
    List {
        /// Organization
        #[arg(long)]
        org: String,
        /// Only this distro
        #[arg(long)]
        distro: Option<String>,
    },
    /// Delete a version (no `--repo`), a repository, or one architecture of it (`--arch`): every
    /// package is removed from the indexes; the files stay downloadable for the grace period
    Delete {
        /// Organization
        #[arg(long)]
        org: String,
        /// Distro
        #[arg(long, default_value = "alpine")]
        distro: String,
        /// Distro version (e.g. `v3.20`, `edge`)
        #[arg(long)]
        version: String,
        /// Repository (none: every repository of the version)
        #[arg(long)]
        repo: Option<String>,
        /// Only this architecture of the repository (needs `--repo`)
        #[arg(long, requires = "repo")]
        arch: Option<String>,
    },
}

/// A repository to create.
#[derive(Debug, Args)]
pub struct RepoAt {
    /// Organization
    #[arg(long)]
    pub org: String,
    /// Distro
    #[arg(long, default_value = "alpine")]
    pub distro: String,
    /// Distro version (e.g. `v3.20`, `edge`; a Debian suite such as `bookworm`)
    #[arg(long)]
    pub version: String,
    /// Repository (e.g. `main`; a Debian component)
    #[arg(long)]
    pub repo: String,
}

/// What `repo delete` removed, for `--json`.
#[derive(Debug, Serialize)]
struct Deleted {
    repositories: Vec<String>,
    removed: Vec<Listed>,
}

/// Runs `packages repo ...`.
pub(super) async fn repo(publisher: &Publisher, command: RepoCommand, json: bool) -> Result<()> {
    match command {
        RepoCommand::Create { at, arch } => {
            let repo = RepoId::parse(&at.org, &at.distro, &at.version, &at.repo)?;
            let arches = arch
                .iter()
                .map(|a| Arch::parse(a))
                .collect::<Result<Vec<_>, _>>()?;
            let created = publisher.create_repo_explicitly(&repo).await?;
            if !arches.is_empty() {
                publisher.add_arches(&repo, &arches).await?;
            }
            let arches = publisher.arches(&repo).await?;
            if json {
                return print_json(&serde_json::json!({
                    "repository": repo.to_string(),
                    "created": created,
                    "architectures": arches.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }));
            }
            let what = if created {
                "created"
            } else {
                "exists already:"
            };
            println!("{what} {repo}");
            Ok(())
        }
        RepoCommand::List { org, distro } => {
            let org = Org::parse(&org)?;
            publisher.get_org(&org).await?;
            let mut tree = publisher.org_tree(&org).await?;
            if let Some(distro) = distro {
                let distro = Distro::parse(&distro)?;
                tree.retain(|d, _| d == distro.as_str());
            }
            if json {
                return print_json(&tree);
            }
            for (distro, versions) in &tree {
                for (version, repos) in versions {
                    for repo in repos {
                        println!("{org}/{distro}/{version}/{repo}");
                    }
                }
            }
            Ok(())
        }
        RepoCommand::Delete {
            org,
            distro,
            version,
            repo,
            arch,
        } => {
            let deleted = match (repo, arch) {
                (Some(repo), Some(arch)) => {
                    let repo = RepoId::parse(&org, &distro, &version, &repo)?;
                    let arch = Arch::parse(&arch)?;
                    let removed = publisher
                        .delete_arch(&repo, &arch)
                        .await
                        .with_context(|| format!("deleting {repo}/{arch}"))?;
                    vec![(format!("{repo}/{arch}"), removed)]
                }
                (Some(repo), None) => {
                    let repo = RepoId::parse(&org, &distro, &version, &repo)?;
                    let removed = publisher
                        .delete_repo(&repo)
                        .await
                        .with_context(|| format!("deleting {repo}"))?;
                    vec![(repo.to_string(), removed)]
                }
                (None, _) => {
                    let org = Org::parse(&org)?;
                    let distro = Distro::parse(&distro)?;
                    let version = Segment::parse("version", &version)?;
                    publisher
                        .delete_version(&org, &distro, &version)
                        .await
                        .with_context(|| format!("deleting {org}/{distro}/{version}"))?
                        .into_iter()
                        .map(|(repo, removed)| (repo.to_string(), removed))
                        .collect()
                }
            };
            if json {
                let (repositories, removed) = deleted.into_iter().fold(
                    (Vec::new(), Vec::new()),
                    |(mut names, mut all), (name, removed)| {
                        names.push(name);
                        all.extend(removed);
                        (names, all)
                    },
                );
                return print_json(&Deleted {
                    repositories,
                    removed,
                });
            }
            for (name, removed) in &deleted {
                println!(
                    "deleted {name} ({} package file(s) removed from the index; \
                     downloadable until the grace period ends)",
                    removed.len()
                );
            }
            Ok(())
        }
    }
}
