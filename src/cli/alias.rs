//! `packages alias`: version aliases of every distro family (`latest -> v3.20`,
//! `stable -> bookworm`); in the store, or through a server in remote mode
//! ([`Backend`]).

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Subcommand;

use super::output::print_json;
use super::remote::Backend;
use crate::repo::{Distro, Org};

/// `packages alias ...`
#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Point an alias at a version (`latest -> v3.20`, `stable -> bookworm`), creating or
    /// moving it; clients switch to the new version's index in one step
    Set {
        /// Organization
        #[arg(long)]
        org: String,
        /// Distro (`alpine`, `fedora`, `debian`, ...)
        #[arg(long)]
        distro: String,
        /// The alias (`latest`, `stable`, `24.04`)
        alias: String,
        /// The version it points to (`v3.20`, `41`, `bookworm`)
        version: String,
    },
    /// Remove an alias: its signed indexes are deleted at once (clients stop using it), its
    /// copies of packages by `gc` after the grace period
    Unset {
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
    List {
        /// Organization
        #[arg(long)]
        org: String,
        /// Distro
        #[arg(long)]
        distro: String,
    },
}

/// Runs `packages alias ...`.
pub(super) async fn alias<'a>(
    backend: impl Into<Backend<'a>>,
    command: AliasCommand,
    json: bool,
) -> Result<()> {
    let backend = backend.into();
    match command {
        AliasCommand::Set {
            org,
            distro,
            alias,
            version,
        } => {
            let (org, distro) = (Org::parse(&org)?, Distro::parse(&distro)?);
            let previous = match backend {
                Backend::Store(p) => p.set_version_alias(&org, distro, &alias, &version).await?,
                Backend::Server(c) => c.set_alias(&org, distro, &alias, &version).await?,
            };
            if json {
                print_json(
                    &serde_json::json!({"alias": alias, "version": version, "previous": previous}),
                )?;
            } else {
                match previous {
                    Some(old) if old != version => println!("{alias} -> {version} (was -> {old})"),
                    _ => println!("{alias} -> {version}"),
                }
            }
        }
        AliasCommand::Unset { org, distro, alias } => {
            let (org, distro) = (Org::parse(&org)?, Distro::parse(&distro)?);
            let version = match backend {
                Backend::Store(p) => p.unset_version_alias(&org, distro, &alias).await?,
                Backend::Server(c) => c.remove_alias(&org, distro, &alias).await?,
            };
            if json {
                print_json(&serde_json::json!({"alias": alias, "version": version}))?;
            } else {
                println!("removed {alias} (was -> {version})");
            }
        }
        AliasCommand::List { org, distro } => {
            let (org, distro) = (Org::parse(&org)?, Distro::parse(&distro)?);
            let aliases: BTreeMap<String, String> = match backend {
                Backend::Store(p) => p.list_version_aliases(&org, distro).await?.0,
                Backend::Server(c) => c.list_aliases(&org, distro).await?,
            };
            if json {
                print_json(&aliases)?;
            } else {
                for (alias, version) in &aliases {
                    println!("{alias} -> {version}");
                }
            }
        }
    }
    Ok(())
}
