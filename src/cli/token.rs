//! `packages admin init` and `packages token`: create, list and revoke API tokens.

use std::time::Duration;

use anyhow::{Result, bail};
use clap::Subcommand;

use super::args::LevelArgs;
use super::output::print_json;
use crate::stores::Stores;
use crate::tokens::{TokenLevel, Tokens};

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

/// Runs `packages admin init`.
pub(super) async fn admin_init(stores: &Stores, name: &str, json: bool) -> Result<()> {
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
        return print_json(&crate::wire::CreatedToken {
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

pub(super) async fn token(stores: &Stores, command: TokenCommand, json: bool) -> Result<()> {
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
