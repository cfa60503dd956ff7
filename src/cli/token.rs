//! `packages admin init` and `packages token`: create, list and revoke API
//! tokens; in the store, or through a server in remote mode ([`Backend`]).

use std::time::Duration;

use anyhow::{Result, bail};
use clap::Subcommand;

use super::args::LevelArgs;
use super::output::print_json;
use super::remote::Backend;
use crate::stores::Stores;
use crate::tokens::{TokenInfo, TokenLevel, Tokens};
use crate::wire::client::ClientError;
use crate::wire::{CreatedToken, NewToken};

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
    /// Revoke a token, given by id (from `token list`, with its level), in plaintext, or by
    /// the secret of a token imported from the old service (with `--org`)
    Revoke {
        /// The token's id, or the token itself (not named `token`: that is `--token`'s id)
        #[arg(value_name = "TOKEN_OR_ID")]
        which: String,
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
    let (token, info) = tokens.create(&TokenLevel::Admin, name, false, None).await?;
    crate::publish::Publisher::new(stores.clone())
        .audit_token(crate::audit::action::TOKEN_CREATE, &info)
        .await;
    print_created(
        &CreatedToken {
            token: token.expose().to_owned(),
            info,
        },
        json,
    )
}

/// Prints a created token: its plaintext alone on the last line of stdout.
fn print_created(created: &CreatedToken, json: bool) -> Result<()> {
    if json {
        return print_json(created);
    }
    let info = &created.info;
    eprintln!(
        "created {}token `{}` for {} (id {}); it is shown only once, below:",
        if info.read_only { "read-only " } else { "" },
        info.name,
        info.level,
        info.id
    );
    println!("{}", created.token);
    Ok(())
}

/// Prints a token listing, one line per token.
fn print_list(listed: &[TokenInfo], json: bool) -> Result<()> {
    if json {
        return print_json(&listed);
    }
    for t in listed {
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

/// Creates a token of `level` (in the store, or through the server).
async fn create(
    backend: Backend<'_>,
    level: &LevelArgs,
    name: &str,
    read_only: bool,
    expires: Option<&str>,
) -> Result<CreatedToken> {
    let parsed = level.level()?;
    let lifetime = expires.map(crate::tokens::parse_duration).transpose()?;
    Ok(match backend {
        Backend::Store(publisher) => {
            let tokens = Tokens::new(publisher.stores().clone(), Duration::ZERO);
            let (token, info) = tokens.create(&parsed, name, read_only, lifetime).await?;
            publisher
                .audit_token(crate::audit::action::TOKEN_CREATE, &info)
                .await;
            CreatedToken {
                token: token.expose().to_owned(),
                info,
            }
        }
        Backend::Server(client) => {
            client
                .create_token(&NewToken {
                    name: name.to_owned(),
                    org: level.org.clone(),
                    distro: level.distro.clone(),
                    version: level.version.clone(),
                    repo: level.repo.clone(),
                    read_only,
                    expires_in: expires.map(str::to_owned),
                })
                .await?
        }
    })
}

/// The ids to try, in order, for `token` when it is not one of ours in
/// plaintext: the id `token list` shows, and the id of a token imported from
/// the old service (`packages import`) whose secret `token` is, its SHA-256
/// (an old secret may itself look like an id: 64 hex digits).
fn ids_of(token: &str) -> Vec<String> {
    let imported = crate::tokens::HashedToken::of(token).hex();
    match crate::tokens::HashedToken::from_id(token) {
        Ok(_) => vec![token.to_owned(), imported],
        Err(_) => vec![imported],
    }
}

/// Revokes a token given by id (of `level`), in plaintext, or by the secret
/// of an imported token (of its org's `level`).
async fn revoke(backend: Backend<'_>, token: &str, level: &LevelArgs) -> Result<TokenInfo> {
    let plain = token.starts_with(crate::tokens::TOKEN_PREFIX);
    Ok(match backend {
        Backend::Store(publisher) => {
            let tokens = Tokens::new(publisher.stores().clone(), Duration::ZERO);
            let revoked = if plain {
                tokens.revoke_plain(token).await?
            } else {
                let level = level.level()?;
                let ids = ids_of(token);
                let mut outcome = tokens.revoke(&level, &ids[0]).await;
                if let (Err(crate::tokens::TokenError::NotFound { .. }), Some(id)) =
                    (&outcome, ids.get(1))
                {
                    outcome = tokens.revoke(&level, id).await;
                }
                outcome?
            };
            publisher
                .audit_token(crate::audit::action::TOKEN_REVOKE, &revoked)
                .await;
            revoked
        }
        Backend::Server(client) => {
            // A plaintext token names its level and id: only those are sent.
            if plain {
                let (level, hash) = crate::tokens::parse(token)?;
                client.revoke_token(&level, &hash.hex()).await?
            } else {
                let level = level.level()?;
                let ids = ids_of(token);
                let mut outcome = client.revoke_token(&level, &ids[0]).await;
                if let (Err(ClientError::Api { status, .. }), Some(id)) = (&outcome, ids.get(1)) {
                    if *status == reqwest::StatusCode::NOT_FOUND {
                        outcome = client.revoke_token(&level, id).await;
                    }
                }
                outcome?
            }
        }
    })
}

/// Runs `packages token ...`.
pub(super) async fn token<'a>(
    backend: impl Into<Backend<'a>>,
    command: TokenCommand,
    json: bool,
) -> Result<()> {
    let backend = backend.into();
    match command {
        TokenCommand::Create {
            name,
            level,
            read_only,
            expires,
        } => {
            let created = create(backend, &level, &name, read_only, expires.as_deref()).await?;
            print_created(&created, json)
        }
        TokenCommand::List { level } => {
            let level = level.level()?;
            let listed = match backend {
                Backend::Store(publisher) => {
                    Tokens::new(publisher.stores().clone(), Duration::ZERO)
                        .list(&level)
                        .await?
                }
                Backend::Server(client) => client.list_tokens(&level).await?,
            };
            print_list(&listed, json)
        }
        TokenCommand::Revoke { which, level } => {
            let revoked = revoke(backend, &which, &level).await?;
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
