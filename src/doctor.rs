//! Start-up checks of the stores: reachable, credentials, conditional writes,
//! clock skew, and whether the private tree is readable through the public URL.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::storage::{
    Consistency, Payload, PutMode, PutOptions, Storage, StorageError, random_hex,
};
use crate::stores::Stores;

/// What one store answered.
#[derive(Debug, Clone, Serialize)]
pub struct StoreReport {
    /// Which store.
    pub store: String,
    /// Whether a write, read and delete worked.
    pub reachable: bool,
    /// The error, when not.
    pub error: Option<String>,
    /// Whether `If-None-Match`/`If-Match` on PUT are enforced: the store's
    /// [`Consistency`], as configured (`PACKAGES_CONSISTENCY`) or else probed.
    pub conditional_writes: Option<bool>,
    /// The contract the store is used under (`conditional` / `last-writer-wins`).
    pub consistency: Option<Consistency>,
    /// Whether that contract was configured rather than known or probed.
    pub consistency_configured: bool,
    /// What the store itself does, when it contradicts the configured contract.
    pub consistency_mismatch: Option<String>,
    /// Store clock minus local clock, in seconds (from a fresh object's Last-Modified).
    pub clock_skew_seconds: Option<f64>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The public tree's store.
    pub public: StoreReport,
    /// The private tree's store, when separate.
    pub private: Option<StoreReport>,
    /// The guarantees that hold, in words.
    pub guarantees: Vec<String>,
    /// Set when the private tree is readable through the public URL.
    pub private_tree_exposed: Option<String>,
}

impl Report {
    /// Whether everything needed to publish safely holds.
    pub fn healthy(&self) -> bool {
        self.public.reachable
            && self.private.as_ref().is_none_or(|p| p.reachable)
            && self.private_tree_exposed.is_none()
            && !self.public.overwrites_despite_config()
            && !self
                .private
                .as_ref()
                .is_some_and(|p| p.overwrites_despite_config())
    }
}

impl StoreReport {
    /// Configured `conditional` on a store that ignores preconditions: `Create`
    /// and `Update` would silently overwrite.
    pub fn overwrites_despite_config(&self) -> bool {
        self.consistency_mismatch.is_some() && self.consistency == Some(Consistency::Conditional)
    }
}

async fn check_store(storage: &Storage) -> StoreReport {
    let mut report = StoreReport {
        store: storage.describe().to_owned(),
        reachable: false,
        error: None,
        conditional_writes: None,
        consistency: None,
        consistency_configured: storage.configured_consistency().is_some(),
        consistency_mismatch: None,
        clock_skew_seconds: None,
    };
    let key = format!("config/_probe/doctor-{}", random_hex(8));
    let result: Result<(), StorageError> = async {
        let before = SystemTime::now();
        storage
            .put(
                &key,
                Payload::from(b"doctor".to_vec()),
                &PutOptions::default(),
                PutMode::Overwrite,
            )
            .await?;
        let after = SystemTime::now();
        if let Some(meta) = storage.head(&key).await? {
            if let Some(modified) = meta.last_modified {
                // Last-Modified has one-second resolution: only report skew outside the request window.
                let skew = if modified + Duration::from_secs(1) < before {
                    -before
                        .duration_since(modified)
                        .unwrap_or_default()
                        .as_secs_f64()
                } else if modified > after + Duration::from_secs(1) {
                    modified
                        .duration_since(after)
                        .unwrap_or_default()
                        .as_secs_f64()
                } else {
                    0.0
                };
                report.clock_skew_seconds = Some(skew);
            }
        }
        storage.delete(&key).await?;
        let consistency = storage.consistency().await?;
        report.consistency = Some(consistency);
        report.conditional_writes = Some(consistency.is_conditional());
        if storage.configured_consistency().is_some() {
            // Configured: still ask the store, and say when it disagrees.
            let actual = storage.probe_consistency().await?;
            if actual != consistency {
                report.consistency_mismatch = Some(format!(
                    "configured {consistency}, but the store behaves as {actual}"
                ));
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => report.reachable = true,
        Err(e) => report.error = Some(e.to_string()),
    }
    report
}

/// Checks the stores and, given the URL clients use, whether the private tree leaks through it.
pub async fn diagnose(stores: &Stores, public_url: Option<&str>) -> Report {
    let public = check_store(stores.public()).await;
    let private = if stores.is_separate() {
        Some(check_store(stores.private()).await)
    } else {
        None
    };
    let conditional = public.conditional_writes.unwrap_or(false)
        && private
            .as_ref()
            .is_none_or(|p| p.conditional_writes.unwrap_or(false));
    let mut guarantees = vec![
        "every acknowledged package is in the signed index (re-list of pending changes after each write)".to_owned(),
    ];
    let configured = public.consistency_configured;
    let source = if configured {
        " (configured by PACKAGES_CONSISTENCY)"
    } else {
        ""
    };
    if conditional {
        guarantees.push(format!("conditional writes{source}: state and index replaced only if unchanged; the index never goes back"));
    } else {
        guarantees.push(format!(
            "no conditional writes{source}: last writer wins (Create/Update checked by a HEAD first), healed by re-merging pending changes; an index may briefly lack a just-acknowledged package"
        ));
    }
    for (tree, report) in [("public", Some(&public)), ("private", private.as_ref())] {
        if let Some(mismatch) = report.and_then(|r| r.consistency_mismatch.as_ref()) {
            guarantees.push(format!("WARNING: {tree} store: {mismatch}"));
        }
    }
    let skewed = [Some(&public), private.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|r| r.clock_skew_seconds)
        .any(|s| s.abs() > 30.0);
    if skewed {
        guarantees.push("WARNING: clock skew over 30 s: pending-change ordering and grace periods are off by that much".to_owned());
    }
    let private_tree_exposed = match public_url {
        Some(url) => check_exposure(stores, url).await,
        None => None,
    };
    Report {
        public,
        private,
        guarantees,
        private_tree_exposed,
    }
}

/// Puts a random canary object into the private tree and tries to fetch it
/// anonymously through `public_url`; returns the URL that served it, if any.
pub async fn check_exposure(stores: &Stores, public_url: &str) -> Option<String> {
    let name = format!("canary-{}.txt", random_hex(8));
    let key = format!("config/_canary/{name}");
    let body = random_hex(16);
    if let Err(e) = stores
        .private()
        .put(
            &key,
            Payload::from(body.clone().into_bytes()),
            &PutOptions::default(),
            PutMode::Overwrite,
        )
        .await
    {
        tracing::warn!(error = %e, "cannot write the canary object");
        return None;
    }
    let base = public_url.trim_end_matches('/');
    let mut candidates = vec![format!("{base}/{key}"), format!("{base}/%2e%2e/{key}")];
    if let Some(root) = base.strip_suffix("/static") {
        candidates.push(format!("{root}/{key}"));
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .ok();
    let mut exposed = None;
    if let Some(client) = client {
        for url in candidates {
            if let Ok(response) = client.get(&url).send().await {
                if response.status().is_success()
                    && response.text().await.is_ok_and(|t| t.contains(&body))
                {
                    exposed = Some(url);
                    break;
                }
            }
        }
    }
    let _ = stores.private().delete(&key).await;
    exposed
}

/// How to fix an exposed private tree, for messages.
pub const EXPOSURE_FIX: &str = "the private tree (signing keys, tokens) is publicly readable: keep it in a separate private bucket (--config-storage s3://PRIVATE-BUCKET), or restrict the public bucket with a bucket policy to `static/*`, or point the CDN's origin path at `/static`";

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::storage::MemoryStore;

    fn stores(store: MemoryStore, configured: Option<Consistency>) -> Stores {
        Stores::shared(Storage::new(Arc::new(store)).with_consistency(configured))
    }

    #[tokio::test]
    async fn reports_the_known_or_probed_consistency() {
        let report = diagnose(&stores(MemoryStore::new(), None), None).await;
        assert_eq!(report.public.conditional_writes, Some(true));
        assert_eq!(report.public.consistency, Some(Consistency::Conditional));
        assert!(!report.public.consistency_configured);
        assert!(report.healthy());
        let report = diagnose(&stores(MemoryStore::last_writer_wins(), None), None).await;
        assert_eq!(report.public.conditional_writes, Some(false));
        assert!(
            report
                .guarantees
                .iter()
                .any(|g| g.starts_with("no conditional writes:"))
        );
        assert!(report.healthy());
    }

    #[tokio::test]
    async fn configured_consistency_is_reported_and_checked() {
        // Configured safer than the store: fine, and said.
        let store = MemoryStore::new();
        let report = diagnose(
            &stores(store.clone(), Some(Consistency::LastWriterWins)),
            None,
        )
        .await;
        assert_eq!(report.public.conditional_writes, Some(false));
        assert!(report.public.consistency_configured);
        assert!(report.public.consistency_mismatch.is_some());
        assert!(
            report
                .guarantees
                .iter()
                .any(|g| g.contains("configured by PACKAGES_CONSISTENCY"))
        );
        assert!(report.healthy());
        assert!(store.is_empty(), "checks clean up");
        // Configured conditional on a store that overwrites: unhealthy.
        let report = diagnose(
            &stores(
                MemoryStore::last_writer_wins(),
                Some(Consistency::Conditional),
            ),
            None,
        )
        .await;
        assert_eq!(report.public.conditional_writes, Some(true));
        assert!(report.public.overwrites_despite_config());
        assert!(
            report
                .guarantees
                .iter()
                .any(|g| g.starts_with("WARNING: public store: configured conditional")),
            "{:?}",
            report.guarantees
        );
        assert!(!report.healthy());
    }
}
