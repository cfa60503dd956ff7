//! Listing the audit log with filters, newest first.
//!
//! Only the day folders between `since` and `until` are listed (a month
//! or year folder when the range is long), the org filter is applied to
//! the keys, and bodies are read (a few at a time) only until `limit`
//! records pass the other filters.

use super::time::{self, NANOS};
use super::{AuditRecord, audit_prefix, parse_record_key};
use crate::storage::{ObjectMeta, StorageError};
use crate::stores::Stores;

/// Records listed when no limit is given.
pub const DEFAULT_LIMIT: usize = 100;

/// Largest limit.
pub const MAX_LIMIT: usize = 10_000;

/// Bodies read at once.
const READ_CONCURRENCY: usize = 16;

/// Days walked one folder at a time; longer ranges list month folders.
const MAX_DAY_FOLDERS: u64 = 62;

/// Months walked one folder at a time; longer ranges list year folders.
const MAX_MONTH_FOLDERS: u64 = 36;

/// Which records to list.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only changes to this org (target org).
    pub org: Option<String>,
    /// Only at or after this time (nanoseconds since the Unix epoch).
    pub since: Option<u64>,
    /// Only before this time (nanoseconds).
    pub until: Option<u64>,
    /// Only this action, or this resource (`package` for `package.*`).
    pub action: Option<String>,
    /// Only changes by this token (its name, or at least 8 characters of its id).
    pub token: Option<String>,
    /// At most this many records (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]).
    pub limit: Option<usize>,
}

impl AuditQuery {
    fn matches_action(&self, action: &str) -> bool {
        self.action.as_deref().is_none_or(|want| {
            action == want
                || action
                    .strip_prefix(want)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }

    fn matches(&self, record: &AuditRecord) -> bool {
        self.matches_action(&record.action)
            && self
                .token
                .as_deref()
                .is_none_or(|t| record.actor.is_token(t))
            && self
                .org
                .as_deref()
                .is_none_or(|o| record.target.org.as_deref() == Some(o))
    }
}

/// The folders to list for `[since, until)`: day, month or year folders,
/// or the whole log without `since`.
fn folders(since: Option<u64>, until: u64) -> Vec<String> {
    let prefix = audit_prefix();
    let Some(since) = since else {
        return vec![prefix];
    };
    if since >= until {
        return Vec::new();
    }
    let day = 86_400 * NANOS;
    let (first, last) = (since / day, (until - 1) / day);
    let mut out: Vec<String> = Vec::new();
    let mut push = |folder: String| {
        if out.last() != Some(&folder) {
            out.push(folder);
        }
    };
    let span = last - first + 1;
    for d in first..=last {
        let path = time::day_path(d * day);
        let folder = if span <= MAX_DAY_FOLDERS {
            path
        } else if span <= MAX_MONTH_FOLDERS * 31 {
            path[..7].to_owned()
        } else {
            path[..4].to_owned()
        };
        push(format!("{prefix}{folder}/"));
    }
    out
}

/// The records matching `query`, newest first.
pub async fn list(stores: &Stores, query: &AuditQuery) -> Result<Vec<AuditRecord>, StorageError> {
    let until = query
        .until
        .unwrap_or(u64::MAX)
        .min(time::now_ns() + 3600 * NANOS);
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let mut keys: Vec<ObjectMeta> = Vec::new();
    for folder in folders(query.since, until) {
        keys.extend(stores.private().list(&folder).await?);
    }
    let mut candidates: Vec<(u64, String)> = keys
        .into_iter()
        .filter_map(|object| {
            let (ns, org) = parse_record_key(&object.key)?;
            let in_range = query.since.is_none_or(|s| ns >= s) && ns < until;
            let org_ok = query.org.as_deref().is_none_or(|o| org == Some(o));
            (in_range && org_ok).then_some((ns, object.key))
        })
        .collect();
    candidates.sort_unstable_by(|a, b| b.cmp(a));
    let mut out = Vec::new();
    for batch in candidates.chunks(READ_CONCURRENCY) {
        let reads = batch
            .iter()
            .map(|(_, key)| read_record(stores, key.clone()));
        for record in futures::future::join_all(reads).await {
            match record? {
                Some(record) if query.matches(&record) => out.push(record),
                _ => {}
            }
            if out.len() == limit {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

async fn read_record(stores: &Stores, key: String) -> Result<Option<AuditRecord>, StorageError> {
    match stores.private().get_bytes(&key).await {
        Ok((bytes, _)) => match serde_json::from_slice(&bytes) {
            Ok(record) => Ok(Some(record)),
            Err(e) => {
                tracing::warn!(key = %key, error = %e, "unreadable audit record skipped");
                Ok(None)
            }
        },
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_cover_the_range_at_the_right_grain() {
        let day = 86_400 * NANOS;
        let base = 20_785 * day; // 2026-11-28
        assert_eq!(folders(None, base), ["config/_audit/"]);
        assert_eq!(
            folders(Some(base + 5), base + day + 1),
            ["config/_audit/2026/11/28/", "config/_audit/2026/11/29/"]
        );
        assert_eq!(
            folders(Some(base), base + day),
            ["config/_audit/2026/11/28/"]
        );
        let months = folders(Some(base), base + 100 * day);
        assert_eq!(months.first().unwrap(), "config/_audit/2026/11/");
        assert_eq!(months.len(), 5);
        let years = folders(Some(base), base + 5 * 365 * day);
        assert_eq!(years.first().unwrap(), "config/_audit/2026/");
        assert_eq!(years.len(), 6);
        assert!(folders(Some(base), base).is_empty());
    }

    #[test]
    fn actions_match_whole_names_or_resources() {
        let query = AuditQuery {
            action: Some("package".to_owned()),
            ..AuditQuery::default()
        };
        assert!(query.matches_action("package.publish"));
        assert!(!query.matches_action("packages.x"));
        assert!(!query.matches_action("org.create"));
    }
}
