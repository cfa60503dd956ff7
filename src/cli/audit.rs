//! `packages audit`: the audit log of the store, newest first.

use anyhow::{Context, Result};
use clap::Args;

use super::output::print_json;
use super::remote::Backend;
use crate::audit::{AuditQuery, AuditRecord, time};
use crate::repo::Org;
use crate::wire::client::AuditFilters;

/// `packages audit ...`
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only changes to this organization
    #[arg(long)]
    pub org: Option<String>,
    /// Only changes at or after this time: RFC 3339, a date (2026-11-28), Unix seconds, or an age (30m, 12h, 7d)
    #[arg(long)]
    pub since: Option<String>,
    /// Only changes before this time (same forms as --since)
    #[arg(long)]
    pub until: Option<String>,
    /// Only this action (`package.publish`) or resource (`package`, `token`, ...)
    #[arg(long)]
    pub action: Option<String>,
    /// Only changes by this token (its name, or at least 8 characters of its id). Not
    /// `--token`: that is the token remote mode authenticates with (`PACKAGES_TOKEN`)
    #[arg(long = "by-token", id = "by_token", value_name = "NAME_OR_ID")]
    pub token: Option<String>,
    /// At most this many records (newest first)
    #[arg(long, default_value_t = crate::audit::DEFAULT_LIMIT)]
    pub limit: usize,
}

impl AuditArgs {
    /// The query these arguments ask for.
    pub fn query(&self) -> Result<AuditQuery> {
        let now = time::now_ns();
        let at = |text: &Option<String>, what: &str| {
            text.as_deref()
                .map(|t| time::parse_time(t, now))
                .transpose()
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("--{what}"))
        };
        if let Some(org) = &self.org {
            Org::parse(org)?;
        }
        Ok(AuditQuery {
            org: self.org.clone(),
            since: at(&self.since, "since")?,
            until: at(&self.until, "until")?,
            action: self.action.clone(),
            token: self.token.clone(),
            limit: Some(self.limit),
        })
    }
}

/// One line per record: time, actor, action, target, details.
pub fn print_records(records: &[AuditRecord], json: bool) -> Result<()> {
    if json {
        return print_json(&records);
    }
    for r in records {
        let t = &r.target;
        let target: Vec<&str> = [&t.org, &t.distro, &t.version, &t.repo, &t.arch]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .collect();
        let mut target = target.join("/");
        if let Some(package) = &t.package {
            target = format!("{target} {package}");
        }
        let client = r
            .actor
            .client
            .as_deref()
            .map(|c| format!(" from {c}"))
            .unwrap_or_default();
        println!(
            "{}\t{}{client}\t{}\t{}\t{}",
            r.time,
            r.actor.describe(),
            r.action,
            if target.is_empty() { "-" } else { &target },
            serde_json::Value::Object(r.details.clone())
        );
    }
    eprintln!("{} record(s)", records.len());
    Ok(())
}

/// Runs `packages audit` on the store, or through the server (the org's
/// log with `--org`, else the server's, which needs an admin token).
pub(super) async fn audit(backend: Backend<'_>, args: &AuditArgs, json: bool) -> Result<()> {
    // Checked here in both modes, so a bad filter is named the same way.
    let query = args.query()?;
    let records = match backend {
        Backend::Store(publisher) => crate::audit::list(publisher.stores(), &query).await,
        Backend::Server(client) => {
            let filters = AuditFilters {
                org: args.org.clone(),
                since: args.since.clone(),
                until: args.until.clone(),
                action: args.action.clone(),
                token: args.token.clone(),
                limit: Some(args.limit),
            };
            return print_records(&client.audit(&filters).await?, json);
        }
    }
    .context("cannot read the audit log")?;
    print_records(&records, json)
}
