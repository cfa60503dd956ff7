//! `packages org`: create, list, show and delete organizations (in the store,
//! or through a server: [`Backend`]).

use anyhow::Result;
use clap::Subcommand;

use super::output::print_json;
use super::remote::Backend;
use crate::repo::Org;

/// `packages org ...`
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization
    Create {
        /// Its name (lowercase ASCII: `[a-z0-9]` first, then `[a-z0-9._+-]`, at most 64 bytes)
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

/// Runs `packages org ...`.
pub(super) async fn org<'a>(
    publisher: impl Into<Backend<'a>>,
    command: OrgCommand,
    json: bool,
) -> Result<()> {
    let publisher = publisher.into();
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
                println!(
                    "{} (created {})",
                    record.name,
                    super::init::rfc3339(record.created)
                );
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
