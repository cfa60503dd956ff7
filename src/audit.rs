//! The audit log: one immutable object per change in the private tree.
//!
//! Every change (publish, remove, gc, org, key, token, alias, repo,
//! settings, retention, quota) is written as
//! `config/_audit/<yyyy>/<mm>/<dd>/<time-ns>-<random>[.<org>].json`
//! ([`AuditRecord`]): when, who ([`Actor`]: the token's id and name, or the
//! local user of a direct-to-store CLI, or the service itself), what
//! (`action`, [`Target`], details) and from where (the client address).
//! Each key is new (nanosecond time plus 64 random bits) and written with
//! [`PutMode::Create`], so concurrent instances never overwrite each other,
//! even on a store that ignores conditional writes. A token's secret is
//! never passed here: an actor carries the token's id (the SHA-256 of the
//! secret, as `token list` shows it) and name only.
//!
//! Use cases record through [`Publisher::audit`](crate::publish::Publisher::audit)
//! (the [`Actor`] travels with the publisher:
//! [`Publisher::with_actor`](crate::publish::Publisher::with_actor)); adding
//! an event for a new use case is one line on its success path:
//!
//! ```ignore
//! self.audit(AuditEvent::new(action::QUOTA_SET, Target::scope(&scope)).detail("bytes", limit)).await;
//! ```
//!
//! A failed audit write does not fail the change it records: the change is
//! already done, and an error would make the client retry something that
//! succeeded. The record is logged instead (`tracing::error!`, with the
//! whole record), so it is kept in the service log. See `docs/audit.md`.
//!
//! Listing ([`list`]) walks the day folders between `since` and `until`
//! only, filters by org from the key alone, and reads the bodies it needs.

pub mod expire;
mod hook;
mod list;
pub mod time;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::repo::{CONFIG_PREFIX, Org, RepoArch, RepoId, Scope, SuiteId};
use crate::storage::{PutMode, PutOptions, StorageError};
use crate::stores::Stores;
use crate::tokens::{Principal, TokenLevel};

pub use list::{AuditQuery, DEFAULT_LIMIT, MAX_LIMIT, list};

/// The folder of the audit log in the private tree.
pub fn audit_prefix() -> String {
    format!("{CONFIG_PREFIX}_audit/")
}

/// The action names recorded; `<resource>.<verb>`. Filters match a whole
/// name or a resource (`package` matches `package.publish`).
pub mod action {
    /// A package published (one event per uploaded file).
    pub const PACKAGE_PUBLISH: &str = "package.publish";
    /// Packages removed from an index (one event per remove call).
    pub const PACKAGE_REMOVE: &str = "package.remove";
    /// Expired files deleted by garbage collection.
    pub const GC: &str = "gc.run";
    /// An organization created.
    pub const ORG_CREATE: &str = "org.create";
    /// An organization deleted.
    pub const ORG_DELETE: &str = "org.delete";
    /// A token created.
    pub const TOKEN_CREATE: &str = "token.create";
    /// A token revoked.
    pub const TOKEN_REVOKE: &str = "token.revoke";
    /// A signing key generated.
    pub const KEY_GENERATE: &str = "key.generate";
    /// A signing key imported.
    pub const KEY_IMPORT: &str = "key.import";
    /// A Debian suite alias set or moved.
    pub const SUITE_ALIAS_SET: &str = "suite-alias.set";
    /// A Debian suite alias removed.
    pub const SUITE_ALIAS_REMOVE: &str = "suite-alias.remove";
    /// A version alias set or moved.
    pub const VERSION_ALIAS_SET: &str = "version-alias.set";
    /// A version alias removed.
    pub const VERSION_ALIAS_REMOVE: &str = "version-alias.remove";
    /// A repository created.
    pub const REPO_CREATE: &str = "repo.create";
    /// A repository deleted.
    pub const REPO_DELETE: &str = "repo.delete";
    /// Every repository of a version deleted.
    pub const VERSION_DELETE: &str = "version.delete";
    /// Arches added to a repository's settings.
    pub const ARCH_ADD: &str = "arch.add";
    /// An arch deleted from a repository.
    pub const ARCH_DELETE: &str = "arch.delete";
    /// An index rebuilt or regenerated.
    pub const INDEX_REBUILD: &str = "index.rebuild";
    /// Indexes repaired.
    pub const INDEX_REPAIR: &str = "index.repair";
    /// A quota set.
    pub const QUOTA_SET: &str = "quota.set";
    /// A quota removed.
    pub const QUOTA_REMOVE: &str = "quota.remove";
    /// A retention rule set or cleared.
    pub const RETENTION_SET: &str = "retention.set";
    /// Packages removed by a retention rule.
    pub const RETENTION_APPLY: &str = "retention.apply";
    /// Records older than the configured age deleted by `gc`.
    pub const AUDIT_EXPIRE: &str = "audit.expire";
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Actor {
    /// `token` (through the API), `cli` (the CLI on the store directly) or
    /// `service` (the service's own periodic work: gc, retention).
    pub kind: String,
    /// The token's id (the SHA-256 of the token, as `token list` shows it); never the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// The token's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_name: Option<String>,
    /// The token's level (`admin` or `org[/distro[/version[/repo]]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_level: Option<String>,
    /// The local user (`user@host`) of a direct-to-store CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The client's address (API): the peer, or behind a trusted proxy
    /// (`--trust-proxy`) the last `X-Forwarded-For` address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

impl Actor {
    fn kind(kind: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            token_id: None,
            token_name: None,
            token_level: None,
            user: None,
            client: None,
        }
    }

    /// A caller of the API, authenticated by `principal`, from `client`.
    pub fn token(principal: &Principal, client: Option<String>) -> Self {
        Self {
            token_id: Some(principal.id.clone()),
            token_name: Some(principal.name.clone()),
            token_level: Some(principal.level.to_string()),
            client,
            ..Self::kind("token")
        }
    }

    /// The CLI working on the store directly, as the local user
    /// (`$USER`/`$LOGNAME` at `$HOSTNAME` or `/etc/hostname`).
    pub fn cli() -> Self {
        let user = ["USER", "LOGNAME", "USERNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "unknown".to_owned());
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty());
        Self {
            user: Some(match host {
                Some(host) => format!("{user}@{host}"),
                None => user,
            }),
            ..Self::kind("cli")
        }
    }

    /// The service's own work (periodic gc and retention).
    pub fn service() -> Self {
        Self::kind("service")
    }

    /// Whether this actor is the token named or with an id starting with `token`.
    pub fn is_token(&self, token: &str) -> bool {
        self.token_name.as_deref() == Some(token)
            || (token.len() >= 8
                && self
                    .token_id
                    .as_deref()
                    .is_some_and(|i| i.starts_with(token)))
    }

    /// A short description (`token ci (acme)`, `cli alice@host`, `service`).
    pub fn describe(&self) -> String {
        match (&self.token_name, &self.user) {
            (Some(name), _) => format!(
                "token {name} ({})",
                self.token_level.as_deref().unwrap_or("?")
            ),
            (None, Some(user)) => format!("{} {user}", self.kind),
            (None, None) => self.kind.clone(),
        }
    }
}

impl Default for Actor {
    /// The CLI's local user: a publisher made without an actor records as the CLI.
    fn default() -> Self {
        Self::cli()
    }
}

/// What a change was made to; every part the change names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Target {
    /// The organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The distro.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro: Option<String>,
    /// The version (Debian: the suite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The repository (Debian: the component).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The arch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The package (name, or file name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

impl Target {
    /// The whole server (admin-level changes with no org).
    pub fn server() -> Self {
        Self::default()
    }

    /// An organization.
    pub fn org(org: &Org) -> Self {
        Self {
            org: Some(org.to_string()),
            ..Self::default()
        }
    }

    /// A level of the tree.
    pub fn scope(scope: &Scope) -> Self {
        Self {
            org: Some(scope.org.to_string()),
            distro: scope.distro.map(|d| d.to_string()),
            version: scope.version.as_ref().map(ToString::to_string),
            repo: scope.repo.as_ref().map(ToString::to_string),
            ..Self::default()
        }
    }

    /// A token level (admin: the server).
    pub fn level(level: &TokenLevel) -> Self {
        level.scope().map_or_else(Self::server, Self::scope)
    }

    /// A repository.
    pub fn repo(repo: &RepoId) -> Self {
        Self::scope(&repo.scope())
    }

    /// An arch of a repository.
    pub fn arch(arch: &RepoArch) -> Self {
        Self::repo(&arch.repo).with_arch(Some(arch.arch.as_str()))
    }

    /// A Debian suite.
    pub fn suite(suite: &SuiteId) -> Self {
        Self {
            org: Some(suite.org.to_string()),
            distro: Some(suite.distro.to_string()),
            version: Some(suite.suite.to_string()),
            ..Self::default()
        }
    }

    /// The same, narrowed to an arch.
    pub fn with_arch(mut self, arch: Option<&str>) -> Self {
        self.arch = arch.map(str::to_owned);
        self
    }

    /// The same, narrowed to a package.
    pub fn with_package(mut self, package: &str) -> Self {
        self.package = Some(package.to_owned());
        self
    }
}

/// A change to record: what was done, to what, with details.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// The action ([`action`]).
    pub action: String,
    /// What it was done to.
    pub target: Target,
    /// Details (an object): versions, files, counts, options.
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl AuditEvent {
    /// An event with no details.
    pub fn new(action: &str, target: Target) -> Self {
        Self {
            action: action.to_owned(),
            target,
            details: serde_json::Map::new(),
        }
    }

    /// Adds a detail (never pass a token's secret).
    pub fn detail(mut self, name: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.details.insert(name.to_owned(), value);
        self
    }
}

/// One recorded change, as stored and listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecord {
    /// Its id (`<time-ns>-<random>`), unique and sortable by time.
    pub id: String,
    /// When, RFC 3339 UTC.
    pub time: String,
    /// When, nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// Who.
    pub actor: Actor,
    /// What ([`action`] names: `package.publish`, `token.create`, ...).
    pub action: String,
    /// What to.
    pub target: Target,
    /// Details of the outcome.
    #[schema(value_type = Object)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// Length of a record id: 20 digits of nanoseconds, `-`, 16 hex digits.
const ID_LEN: usize = 37;

/// The object key of a record: its day folder, its id, and its org (so
/// listing by org needs no body).
pub fn record_key(record: &AuditRecord) -> String {
    let org = record
        .target
        .org
        .as_deref()
        .map(|o| format!(".{o}"))
        .unwrap_or_default();
    format!(
        "{}{}/{}{org}.json",
        audit_prefix(),
        time::day_path(record.time_ns),
        record.id
    )
}

/// The time and org of a record's key, if `key` is one.
pub(crate) fn parse_record_key(key: &str) -> Option<(u64, Option<&str>)> {
    let rest = key.strip_prefix(&audit_prefix())?;
    let name = rest.rsplit('/').next()?.strip_suffix(".json")?;
    let id = name.get(..ID_LEN)?;
    let ns: u64 = id.get(..20)?.parse().ok()?;
    let org = match &name[ID_LEN..] {
        "" => None,
        more => Some(more.strip_prefix('.')?),
    };
    Some((ns, org))
}

/// Writes one record of `event` by `actor`; returns it.
pub async fn record(
    stores: &Stores,
    actor: &Actor,
    event: AuditEvent,
) -> Result<AuditRecord, StorageError> {
    let time_ns = time::now_ns();
    let record = AuditRecord {
        id: format!("{time_ns:020}-{:016x}", rand::random::<u64>()),
        time: time::rfc3339_ns(time_ns),
        time_ns,
        actor: actor.clone(),
        action: event.action,
        target: event.target,
        details: event.details,
    };
    let key = record_key(&record);
    let body =
        serde_json::to_vec_pretty(&record).map_err(|e| StorageError::backend("encode", &key, e))?;
    stores
        .private()
        .put(&key, body.into(), &PutOptions::default(), PutMode::Create)
        .await?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_day_id_and_org() {
        let record = AuditRecord {
            id: format!("{:020}-{:016x}", 1_798_410_621_000_000_007u64, 42),
            time: String::new(),
            time_ns: 1_798_410_621_000_000_007,
            actor: Actor::service(),
            action: action::GC.to_owned(),
            target: Target::org(&Org::parse("acme.io").unwrap()),
            details: Default::default(),
        };
        let key = record_key(&record);
        assert_eq!(
            key,
            "config/_audit/2026/12/27/01798410621000000007-000000000000002a.acme.io.json"
        );
        assert_eq!(
            parse_record_key(&key),
            Some((1_798_410_621_000_000_007, Some("acme.io")))
        );
        let server = AuditRecord {
            target: Target::server(),
            ..record
        };
        assert_eq!(
            parse_record_key(&record_key(&server)),
            Some((1_798_410_621_000_000_007, None))
        );
        assert_eq!(parse_record_key("config/_audit/x.json"), None);
    }
}
