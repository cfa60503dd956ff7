//! `packages suite`: suite aliases of Debian-style distros; in the store, or
//! through a server in remote mode ([`Backend`]).

use anyhow::Result;
use clap::Subcommand;

use super::output::print_json;
use super::remote::Backend;
use crate::repo::{Distro, Org, SuiteId};

/// `packages suite ...`
#[derive(Debug, Subcommand)]
pub enum SuiteCommand {
    /// Point an alias at a suite (`24.04 -> noble`, `stable -> bookworm`), creating or moving it;
    /// the alias gets its own signed `InRelease` serving the suite's indexes
    Alias {
        /// Organization
        #[arg(long)]
        org: String,
        /// Distro (Debian-style: `debian`, `ubuntu`, ...)
        #[arg(long)]
        distro: String,
        /// The alias (`stable`, `24.04`)
        alias: String,
        /// The suite it points to (`bookworm`, `noble`)
        suite: String,
    },
    /// Remove an alias: its signed files are deleted, so apt stops using it at once
    Unalias {
        /// Organization
        #[arg(long)]
        org: String,
        /// Distro
        #[arg(long)]
        distro: String,
        /// The alias
        alias: String,
    },
    /// List a distro's aliases
    Aliases {
        /// Organization
        #[arg(long)]
        org: String,
        /// Distro
        #[arg(long)]
        distro: String,
    },
}

/// Runs `packages suite ...`.
pub(super) async fn suite<'a>(
    backend: impl Into<Backend<'a>>,
    command: SuiteCommand,
    json: bool,
) -> Result<()> {
    let publisher = backend.into();
    match command {
        SuiteCommand::Alias {
            org,
            distro,
            alias,
            suite,
        } => {
            let target = SuiteId::new(Org::parse(&org)?, Distro::parse(&distro)?, &suite)?;
            let previous = publisher.set_alias(&target, &alias).await?;
            if json {
                print_json(
                    &serde_json::json!({"alias": alias, "suite": suite, "previous": previous}),
                )?;
            } else {
                match previous {
                    Some(old) if old != suite => println!("{alias} -> {suite} (was -> {old})"),
                    _ => println!("{alias} -> {suite}"),
                }
            }
        }
        SuiteCommand::Unalias { org, distro, alias } => {
            let target = publisher
                .remove_alias(&Org::parse(&org)?, Distro::parse(&distro)?, &alias)
                .await?;
            if json {
                print_json(&serde_json::json!({"alias": alias, "suite": target}))?;
            } else {
                println!("removed {alias} (was -> {target})");
            }
        }
        SuiteCommand::Aliases { org, distro } => {
            let aliases = publisher
                .list_aliases(&Org::parse(&org)?, Distro::parse(&distro)?)
                .await?;
            if json {
                print_json(&aliases)?;
            } else {
                for (alias, suite) in &aliases {
                    println!("{alias} -> {suite}");
                }
            }
        }
    }
    Ok(())
}
