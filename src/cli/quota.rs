//! `packages quota set|show|unset` and `packages usage`: quotas per org,
//! distro, version and repo (`docs/quotas.md`); on the store, or through a
//! server in remote mode ([`Backend`]).

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use std::collections::BTreeMap;

use super::output::print_json;
use super::remote::Backend;
use crate::publish::quota::{Limit, UsageReport};
use crate::repo::{Distro, Org, Scope, Segment};

/// A quota level: an org, or a distro, version or repo of it.
#[derive(Debug, Args)]
pub struct QuotaLevelArgs {
    /// Organization
    #[arg(long)]
    pub org: String,
    /// Distro (e.g. `alpine`)
    #[arg(long)]
    pub distro: Option<String>,
    /// Distro version (e.g. `edge`; Debian: the suite); needs `--distro`
    #[arg(long, requires = "distro")]
    pub version: Option<String>,
    /// Repository (Debian: the component); needs `--version`
    #[arg(long, requires = "version")]
    pub repo: Option<String>,
}

impl QuotaLevelArgs {
    /// The level named.
    pub fn scope(&self) -> Result<Scope> {
        Ok(Scope::new(
            Org::parse(&self.org)?,
            self.distro.as_deref().map(Distro::parse).transpose()?,
            self.version
                .as_deref()
                .map(|v| Segment::parse("version", v))
                .transpose()?,
            self.repo
                .as_deref()
                .map(|r| Segment::parse("repo", r))
                .transpose()?,
        )?)
    }
}

/// `packages quota ...`
#[derive(Debug, Subcommand)]
pub enum QuotaCommand {
    /// Set the limits of a level (a limit not given keeps its value); uploads over them are refused
    Set {
        #[command(flatten)]
        level: QuotaLevelArgs,
        /// Most bytes of package files (`500M`, `2G`: K, M, G, T are powers of 1024)
        #[arg(long, value_parser = parse_size)]
        max_bytes: Option<u64>,
        /// Most packages (a noarch package counts once per arch it is copied into)
        #[arg(long)]
        max_packages: Option<u64>,
    },
    /// Show the limits of a level and of the levels below it
    Show(QuotaLevelArgs),
    /// Remove the limits of a level
    Unset(QuotaLevelArgs),
}

/// Parses a byte count: digits with an optional K, M, G or T suffix (powers
/// of 1024; `KB`, `KiB` and lowercase are accepted too).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a number of bytes, e.g. 500M"))?;
    let suffix = suffix.trim().to_ascii_lowercase();
    let unit = suffix
        .strip_suffix("ib")
        .or_else(|| suffix.strip_suffix('b'))
        .unwrap_or(&suffix);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(format!("`{text}`: unknown unit (use K, M, G or T)")),
    };
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{text}`: too large"))
}

/// A limit for humans: `-` when none.
fn show(limit: Option<u64>) -> String {
    limit.map_or_else(|| "-".to_owned(), |n| n.to_string())
}

/// Runs `packages quota ...`.
pub(super) async fn quota<'a>(
    backend: impl Into<Backend<'a>>,
    command: QuotaCommand,
    json: bool,
) -> Result<()> {
    let publisher = backend.into();
    match command {
        QuotaCommand::Set {
            level,
            max_bytes,
            max_packages,
        } => {
            let scope = level.scope()?;
            if max_bytes.is_none() && max_packages.is_none() {
                bail!("give --max-bytes and/or --max-packages");
            }
            let limit = Limit {
                max_bytes,
                max_packages,
            };
            let now = publisher
                .set_quota(&scope, limit)
                .await
                .with_context(|| format!("setting the quota of {scope}"))?;
            print_limit(&scope.to_string(), &now, json)?;
        }
        QuotaCommand::Show(level) => {
            let scope = level.scope()?;
            let name = scope.to_string();
            let shown = publisher.quota_levels(&scope).await?;
            if json {
                print_json(&shown)?;
            } else if shown.is_empty() {
                eprintln!("no quota at or below {name}");
            } else {
                for (level, limit) in &shown {
                    print_limit(level, limit, false)?;
                }
            }
        }
        QuotaCommand::Unset(level) => {
            let scope = level.scope()?;
            let was = publisher
                .unset_quota(&scope)
                .await
                .with_context(|| format!("removing the quota of {scope}"))?;
            if json {
                print_json(&serde_json::json!({"level": scope.to_string(), "removed": was}))?;
            } else {
                println!(
                    "removed the quota of {scope} (max bytes {}, max packages {})",
                    show(was.max_bytes),
                    show(was.max_packages)
                );
            }
        }
    }
    Ok(())
}

fn print_limit(level: &str, limit: &Limit, json: bool) -> Result<()> {
    if json {
        return print_json(&serde_json::json!({"level": level, "limit": limit}));
    }
    println!(
        "{level}: max bytes {}, max packages {}",
        show(limit.max_bytes),
        show(limit.max_packages)
    );
    Ok(())
}

/// Runs `packages usage ...`: one line per level, its usage and limits.
pub(super) async fn usage<'a>(
    backend: impl Into<Backend<'a>>,
    level: QuotaLevelArgs,
    json: bool,
) -> Result<()> {
    let publisher = backend.into();
    let scope = level.scope()?;
    let report: UsageReport = publisher
        .usage_report(&scope)
        .await
        .with_context(|| format!("reading the usage of {scope}"))?;
    if json {
        return print_json(&report);
    }
    println!("LEVEL\tBYTES\tMAX_BYTES\tPACKAGES\tMAX_PACKAGES");
    for level in &report.levels {
        let limit = level.limit.unwrap_or_default();
        println!(
            "{}\t{}\t{}\t{}\t{}",
            level.level,
            level.bytes,
            show(limit.max_bytes),
            level.packages,
            show(limit.max_packages)
        );
    }
    Ok(())
}

impl Backend<'_> {
    /// The limits of `level` and of the levels below it.
    async fn quota_levels(&self, level: &Scope) -> Result<BTreeMap<String, Limit>> {
        let name = level.to_string();
        let below = format!("{name}/");
        Ok(match self {
            Backend::Store(p) => {
                p.get_org(&level.org).await?;
                p.quotas(&level.org)
                    .await?
                    .levels
                    .into_iter()
                    .filter(|(l, _)| *l == name || l.starts_with(&below))
                    .collect()
            }
            Backend::Server(c) => c
                .quotas(level)
                .await?
                .into_iter()
                .map(|q| (q.level, q.limit))
                .collect(),
        })
    }

    async fn set_quota(&self, level: &Scope, limit: Limit) -> Result<Limit> {
        Ok(match self {
            Backend::Store(p) => p.set_quota(level, limit).await?,
            Backend::Server(c) => c.set_quota(level, &limit).await?,
        })
    }

    async fn unset_quota(&self, level: &Scope) -> Result<Limit> {
        Ok(match self {
            Backend::Store(p) => p.unset_quota(level).await?,
            Backend::Server(c) => c.unset_quota(level).await?,
        })
    }

    async fn usage_report(&self, level: &Scope) -> Result<UsageReport> {
        Ok(match self {
            Backend::Store(p) => p.usage_report(level).await?,
            Backend::Server(c) => c.usage(level).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("2m"), Ok(2 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("3 GB"), Ok(3 << 30));
        assert!(parse_size("1X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
