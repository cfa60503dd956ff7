//! Expiring the audit log: `gc` deletes records older than the age an
//! operator configured (`--audit-keep-days`); by default records are kept
//! for good.

use futures::{StreamExt, TryStreamExt};

use super::time::NANOS;
use super::{audit_prefix, parse_record_key};
use crate::storage::StorageError;
use crate::stores::Stores;

/// Deletes at once.
const DELETE_CONCURRENCY: usize = 16;

/// Fewest days a record may be kept: a shorter log could not answer "who
/// did this yesterday".
pub const MIN_KEEP_DAYS: u64 = 1;

/// The time before which records go, for records kept `days` days at `now_ns`.
pub fn cutoff_ns(now_ns: u64, days: u64) -> u64 {
    now_ns.saturating_sub(days.saturating_mul(86_400).saturating_mul(NANOS))
}

/// Deletes the records written before `cutoff_ns`; returns their keys.
/// The log is listed once (its size is bounded by the age it keeps); a
/// record written meanwhile is newer than the cutoff and stays.
pub async fn expire(stores: &Stores, cutoff_ns: u64) -> Result<Vec<String>, StorageError> {
    let listed = stores.private().list(&audit_prefix()).await?;
    let old: Vec<String> = listed
        .into_iter()
        .filter(|o| parse_record_key(&o.key).is_some_and(|(ns, _)| ns < cutoff_ns))
        .map(|o| o.key)
        .collect();
    futures::stream::iter(old.clone())
        .map(|key| async move {
            match stores.private().delete(&key).await {
                Ok(()) | Err(StorageError::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .buffer_unordered(DELETE_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_whole_days_back() {
        let now = 100 * 86_400 * NANOS + 5;
        assert_eq!(cutoff_ns(now, 30), 70 * 86_400 * NANOS + 5);
        assert_eq!(cutoff_ns(now, 1_000), 0);
        assert_eq!(cutoff_ns(now, u64::MAX), 0);
    }
}
