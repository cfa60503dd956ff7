//! `packages import --from-dir DIR`: moves a tree of the old service
//! (atlascloud/packages) into the store; see [`crate::import`] and `docs/import.md`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::output::print_json;
use crate::import::{ImportOptions, Outcome, Report, import};
use crate::publish::Publisher;
use crate::tokens::Tokens;

/// `packages import ...`
#[derive(Debug, Args)]
#[command(after_help = "\
Imports what the old service (atlascloud/packages) kept under its directory (its `-dir`, \
default /srv/packages):
  static/<org>/...                   orgs; .apk files of static/<org>/alpine/<version>/<repo>/<arch>/
  config/<org>/tokens/<file>         org tokens (plaintext): stored hashed, same secret
  config/<org>/<distro>/<name>.rsa   the distro's signing key, kept as <name>.rsa.pub
Packages are checked again, published, indexed and signed with the imported key; installed \
clients keep trusting it and old tokens keep working (POST /api/<org>/...pkgs and /api/v1).
Running it again changes nothing (everything skipped); after a failure, run it again to resume.
Exit status: 0 everything imported or skipped, 1 something refused (each with its reason) or \
the import stopped.")]
pub struct ImportArgs {
    /// The old service's base directory, holding `static/` and `config/`
    #[arg(long, value_name = "DIR")]
    pub from_dir: PathBuf,
    /// Check everything and print the report; write nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `packages import`.
pub(super) async fn import_tree(publisher: &Publisher, args: ImportArgs, json: bool) -> Result<()> {
    let tokens = Tokens::new(publisher.stores().clone(), Duration::ZERO);
    let options = ImportOptions {
        from_dir: args.from_dir,
        dry_run: args.dry_run,
    };
    let report = import(publisher, &tokens, &options).await?;
    if json {
        print_json(&report)?;
    } else {
        print_report(&report);
    }
    if report.counts.refused > 0 {
        // The report (JSON included) is the output: the status says the rest.
        let n = report.counts.refused;
        eprintln!(
            "error: {n} entr{} refused (see the report): fix or remove them, then run the import again",
            if n == 1 { "y" } else { "ies" }
        );
        std::process::exit(1);
    }
    Ok(())
}

/// One line per entry, then the counts.
fn print_report(report: &Report) {
    for entry in &report.entries {
        let outcome = match (entry.outcome, report.dry_run) {
            (Outcome::Imported, true) => "would import",
            (Outcome::Imported, false) => "imported",
            (Outcome::Skipped, _) => "skipped",
            (Outcome::Refused, _) => "refused",
        };
        let kind = serde_json::to_value(entry.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut line = format!("{outcome:<12} {kind:<7} {}", entry.source);
        if let Some(target) = &entry.target {
            line.push_str(&format!(" -> {target}"));
        }
        if let Some(reason) = &entry.reason {
            line.push_str(&format!(": {reason}"));
        }
        println!("{line}");
    }
    let c = report.counts;
    let dry = if report.dry_run {
        " (dry run: nothing written)"
    } else {
        ""
    };
    println!(
        "{} imported, {} skipped, {} refused{dry}",
        c.imported, c.skipped, c.refused
    );
}
