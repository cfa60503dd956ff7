//! `packages retention set|show|apply`: per-repository cleanup rules.

use anyhow::Result;
use clap::{Args, Subcommand};

use super::output::print_json;
use super::remote::Backend;
use crate::publish::{RetentionOutcome, RetentionRule};
use crate::repo::RepoId;

/// A repository, for retention.
#[derive(Debug, Args)]
pub struct RetentionRepo {
    /// Organization
    #[arg(long)]
    pub org: String,
    /// Distro
    #[arg(long, default_value = "alpine")]
    pub distro: String,
    /// Distro version (e.g. `edge`)
    #[arg(long)]
    pub version: String,
    /// Repository (e.g. `main`)
    #[arg(long)]
    pub repo: String,
}

impl RetentionRepo {
    fn repo(&self) -> Result<RepoId> {
        Ok(RepoId::parse(
            &self.org,
            &self.distro,
            &self.version,
            &self.repo,
        )?)
    }
}

/// `packages retention ...`
#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Set the rule of a repository (neither option: no rule); applied by `gc` and the service
    Set {
        #[command(flatten)]
        repo: RetentionRepo,
        /// Keep the newest N versions of each package (per arch)
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        keep: Option<u64>,
        /// Remove versions published more than D days ago (never a package's newest version)
        #[arg(long, value_name = "DAYS")]
        max_age: Option<u64>,
    },
    /// Show the rule of a repository
    Show {
        #[command(flatten)]
        repo: RetentionRepo,
    },
    /// Apply the rule of a repository now
    Apply {
        #[command(flatten)]
        repo: RetentionRepo,
        /// List what would be removed, remove nothing
        #[arg(long)]
        dry_run: bool,
    },
}

fn describe(rule: &RetentionRule) -> String {
    let mut parts = Vec::new();
    if let Some(keep) = rule.keep {
        parts.push(format!("keep the newest {keep} version(s) of each package"));
    }
    if let Some(days) = rule.max_age_days {
        parts.push(format!(
            "remove versions older than {days} day(s), never the newest"
        ));
    }
    if parts.is_empty() {
        "no retention rule".to_owned()
    } else {
        parts.join("; ")
    }
}

/// Prints what a rule removed (or would).
pub fn print_outcome(outcome: &RetentionOutcome, json: bool) -> Result<()> {
    if json {
        return print_json(outcome);
    }
    let verb = if outcome.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for r in &outcome.removed {
        println!(
            "{verb} {}/{} ({} {}, {})",
            r.arch, r.file, r.name, r.version, r.reason
        );
    }
    eprintln!(
        "{}: {} package(s) {verb}",
        outcome.repo,
        outcome.removed.len()
    );
    Ok(())
}

/// Runs `packages retention ...` on the store, or through the server.
pub(super) async fn retention(
    backend: Backend<'_>,
    command: RetentionCommand,
    json: bool,
) -> Result<()> {
    match command {
        RetentionCommand::Set {
            repo,
            keep,
            max_age,
        } => {
            let repo = repo.repo()?;
            let rule = RetentionRule {
                keep: keep.map(|k| usize::try_from(k).unwrap_or(usize::MAX)),
                max_age_days: max_age,
            };
            let rule = match backend {
                Backend::Store(publisher) => {
                    publisher.set_retention(&repo, &rule).await?;
                    rule
                }
                Backend::Server(client) => client.set_retention(&repo, &rule).await?,
            };
            if json {
                return print_json(&rule);
            }
            println!("{repo}: {}", describe(&rule));
            Ok(())
        }
        RetentionCommand::Show { repo } => {
            let repo = repo.repo()?;
            let rule = match backend {
                Backend::Store(publisher) => {
                    publisher.require_repo(&repo).await?;
                    publisher.retention(&repo).await?
                }
                Backend::Server(client) => client.retention(&repo).await?,
            };
            if json {
                return print_json(&rule);
            }
            println!("{repo}: {}", describe(&rule));
            Ok(())
        }
        RetentionCommand::Apply { repo, dry_run } => {
            let repo = repo.repo()?;
            let outcome = match backend {
                Backend::Store(publisher) => publisher.apply_retention(&repo, dry_run).await?,
                Backend::Server(client) => client.apply_retention(&repo, dry_run).await?,
            };
            print_outcome(&outcome, json)
        }
    }
}
