//! `packages key`: generate or import the signing key of a distro, version or repo.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;

use super::args::ScopeArgs;
use super::output::print_json;
use crate::keys::GeneratedKey;
use crate::publish::Publisher;
use crate::repo::Scope;

/// `packages key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a signing key for a distro, version or repo (the most specific one signs)
    Generate {
        #[command(flatten)]
        scope: ScopeArgs,
        /// RSA key size, 2048 to 4096 (default: 2048 for apk, 3072 for OpenPGP keys of
        /// Debian-style distros)
        #[arg(long)]
        bits: Option<usize>,
        /// Replace the level's key, or take over repositories a wider level's key signs
        /// today (refused without it; the old key stays published as retiring)
        #[arg(long)]
        replace: bool,
    },
    /// Import an existing PEM private key (e.g. from `abuild-keygen`)
    Import {
        #[command(flatten)]
        scope: ScopeArgs,
        /// The PEM file
        #[arg(long)]
        file: PathBuf,
        /// Replace the level's key, or take over repositories a wider level's key signs
        /// today (refused without it; the old key stays published as retiring)
        #[arg(long)]
        replace: bool,
    },
}

/// Runs `packages key ...`.
pub(super) async fn key(publisher: &Publisher, command: KeyCommand, json: bool) -> Result<()> {
    let (scope, generated) = match command {
        KeyCommand::Generate {
            scope,
            bits,
            replace,
        } => {
            let scope = scope.scope()?;
            publisher.get_org(&scope.org).await?;
            let generated = publisher.generate_key(&scope, bits, replace).await?;
            (scope, generated)
        }
        KeyCommand::Import {
            scope,
            file,
            replace,
        } => {
            let scope = scope.scope()?;
            publisher.get_org(&scope.org).await?;
            let pem = std::fs::read_to_string(&file)
                .with_context(|| format!("{}: cannot read", file.display()))?;
            let generated = publisher
                .import_key(&scope, &pem, replace)
                .await
                .with_context(|| format!("{}: cannot import", file.display()))?;
            (scope, generated)
        }
    };
    print_key(&scope, &generated, json)
}

/// Prints a generated or imported key: the same in direct and remote mode.
pub(super) fn print_key(scope: &Scope, generated: &GeneratedKey, json: bool) -> Result<()> {
    if json {
        return print_json(generated);
    }
    eprintln!("signing key for {scope} stored; clients trust it with:");
    let family = scope.distro.map(crate::repo::Distro::family);
    if family == Some(crate::repo::Family::Rpm) {
        // Each repository also publishes its keys as `RPM-GPG-KEY-<repo id>.asc` beside its arches.
        eprintln!(
            "  sudo rpm --import <BASE URL>/{}   (each repository's .repo file names its RPM-GPG-KEY-*.asc)",
            generated.public_path
        );
    } else if family == Some(crate::repo::Family::Deb) {
        // Each suite also publishes every key signing it as `dists/<suite>/archive-keyring.gpg`.
        let keyring = generated.public_path.replace(".asc", ".gpg");
        eprintln!(
            "  curl -fsSLo /etc/apt/keyrings/{}.gpg <BASE URL>/{keyring}   (then signed-by=/etc/apt/keyrings/{}.gpg)",
            scope.org, scope.org
        );
    } else {
        eprintln!(
            "  wget -O /etc/apk/keys/{} <BASE URL>/{}",
            generated.key_name, generated.public_path
        );
    }
    println!("{}", generated.key_name);
    println!("{}", generated.public_path);
    Ok(())
}
