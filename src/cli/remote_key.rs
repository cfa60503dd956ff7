//! `packages key` in remote mode: generate or import a signing key through
//! the server, printed as in direct mode ([`super::key::print_key`]).

use anyhow::{Context, Result, bail};

use super::key::{KeyCommand, print_key};
use crate::keys::GeneratedKey;
use crate::wire::client::Client;
use crate::wire::{ImportKey, NewKey, PublicKeyInfo};

/// The key as direct mode reports it.
fn generated(info: PublicKeyInfo) -> GeneratedKey {
    GeneratedKey {
        key_name: info.name,
        public_path: info.path,
        public_pem: info.pem.unwrap_or_default(),
        retiring: info.retiring,
    }
}

/// Runs `packages key ...` through the server.
pub(super) async fn key(client: &Client, command: KeyCommand, json: bool) -> Result<()> {
    match command {
        KeyCommand::Generate {
            scope,
            bits,
            replace,
        } => {
            let parsed = scope.scope()?;
            let body = NewKey {
                distro: Some(scope.distro.clone()),
                version: scope.version.clone(),
                repo: scope.repo.clone(),
                bits,
                replace,
            };
            let info = client.generate_key(&parsed.org, &body).await?;
            print_key(&parsed, &generated(info), json)
        }
        KeyCommand::Import {
            scope,
            file,
            replace,
        } => {
            let parsed = scope.scope()?;
            let pem = std::fs::read_to_string(&file)
                .with_context(|| format!("{}: cannot read", file.display()))?;
            let body = ImportKey {
                distro: Some(scope.distro.clone()),
                version: scope.version.clone(),
                repo: scope.repo.clone(),
                pem,
                replace,
            };
            let info = client
                .import_key(&parsed.org, &body)
                .await
                .with_context(|| format!("{}: cannot import", file.display()))?;
            print_key(&parsed, &generated(info), json)
        }
        // Key commands added since: they work on the store until they get a remote mode.
        #[allow(unreachable_patterns)]
        _ => bail!(
            "this `packages key` command has no remote mode: run it where the store is, with \
             `--storage` and without `--server` (unset PACKAGES_SERVER)"
        ),
    }
}
