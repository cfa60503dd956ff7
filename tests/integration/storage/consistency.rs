//! The conditional-write contract: what the handle guarantees on every
//! backend, and what each backend does by itself.

use std::sync::Arc;

use packages::storage::{Consistency, PutMode, Storage, StorageError};

use super::{bytes, keys, opts, read_all};
use crate::support::Ctx;

every_backend!(
    conditional_write_probe_matches_backend,
    create_never_overwrites_through_the_handle,
    update_checks_the_etag,
    configured_consistency_overrides_the_backend,
    concurrent_creates_have_one_winner,
);

async fn conditional_write_probe_matches_backend(ctx: Ctx) {
    let s = ctx.storage().await;
    let probed = s.conditional_writes().await.expect("probe");
    if let Some(expected) = ctx.backend.expected_conditional_writes() {
        assert_eq!(
            probed, expected,
            "{:?}: the conditional-write probe said {probed}",
            ctx.backend
        );
    }
    // Asking the backend itself agrees with what the handle uses.
    let asked = s.probe_consistency().await.expect("probe the backend");
    assert_eq!(asked.is_conditional(), probed, "{:?}", ctx.backend);
    // The probe cleans up after itself.
    assert!(keys(&s, "").await.is_empty(), "probe left objects behind");
    // Asked again, the answer is the same (and cached).
    assert_eq!(s.conditional_writes().await.unwrap(), probed);
    assert_eq!(s.consistency().await.unwrap(), asked);
}

/// A raw put on the backend, past the handle's checks.
async fn raw_put(s: &Storage, key: &str, data: &[u8], mode: PutMode) -> Result<(), StorageError> {
    s.object_store()
        .put(key, bytes(data), &opts(), mode)
        .await
        .map(|_| ())
}

async fn create_never_overwrites_through_the_handle(ctx: Ctx) {
    let s = ctx.storage().await;
    let conditional = s.conditional_writes().await.unwrap();
    s.put("c/key", bytes(b"first"), &opts(), PutMode::Create)
        .await
        .expect("create on a free key");
    match s
        .put("c/key", bytes(b"second"), &opts(), PutMode::Create)
        .await
    {
        Err(StorageError::AlreadyExists { key }) => assert_eq!(key, "c/key"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(read_all(&s, "c/key").await, b"first", "not overwritten");
    // The backend's own contract: only a conditional store refuses by itself.
    let raw = raw_put(&s, "c/key", b"raw", PutMode::Create).await;
    if conditional {
        assert!(
            matches!(raw, Err(StorageError::AlreadyExists { .. })),
            "{raw:?}"
        );
        assert_eq!(read_all(&s, "c/key").await, b"first");
    } else {
        // Garage ignores If-None-Match: the write goes through.
        raw.expect("a store without conditional writes overwrites");
        assert_eq!(read_all(&s, "c/key").await, b"raw");
    }
}

async fn update_checks_the_etag(ctx: Ctx) {
    let s = ctx.storage().await;
    let conditional = s.conditional_writes().await.unwrap();
    let first = s
        .put("u/key", bytes(b"v1"), &opts(), PutMode::Overwrite)
        .await
        .unwrap();
    let second = s
        .put(
            "u/key",
            bytes(b"v2"),
            &opts(),
            PutMode::Update(first.etag.clone()),
        )
        .await
        .expect("update with the current ETag");
    assert_eq!(read_all(&s, "u/key").await, b"v2");
    assert_ne!(second.etag, first.etag);

    let stale = s
        .put(
            "u/key",
            bytes(b"v3"),
            &opts(),
            PutMode::Update(first.etag.clone()),
        )
        .await;
    assert!(
        matches!(stale, Err(StorageError::Precondition { ref key }) if key == "u/key"),
        "stale ETag: {stale:?}"
    );
    assert_eq!(read_all(&s, "u/key").await, b"v2", "not overwritten");
    let on_missing = s
        .put(
            "u/missing",
            bytes(b"x"),
            &opts(),
            PutMode::Update(first.etag.clone()),
        )
        .await;
    assert!(
        matches!(on_missing, Err(StorageError::Precondition { .. })),
        "If-Match on a missing key: {on_missing:?}"
    );
    assert!(s.head("u/missing").await.unwrap().is_none());
    // The ETag a get returns is good for an update.
    let (_, meta) = s.get_bytes("u/key").await.unwrap();
    s.put("u/key", bytes(b"v4"), &opts(), PutMode::Update(meta.etag))
        .await
        .expect("update with the ETag from get");
    assert_eq!(read_all(&s, "u/key").await, b"v4");
    // The backend's own contract.
    let raw = raw_put(&s, "u/key", b"raw", PutMode::Update(first.etag.clone())).await;
    let raw_missing = raw_put(&s, "u/missing", b"raw", PutMode::Update(first.etag)).await;
    if conditional {
        assert!(
            matches!(raw, Err(StorageError::Precondition { .. })),
            "{raw:?}"
        );
        assert!(
            matches!(raw_missing, Err(StorageError::Precondition { .. })),
            "{raw_missing:?}"
        );
        assert_eq!(read_all(&s, "u/key").await, b"v4");
    } else {
        raw.expect("a store without conditional writes overwrites");
        raw_missing.expect("a store without conditional writes creates");
        assert_eq!(read_all(&s, "u/key").await, b"raw");
    }
}

async fn configured_consistency_overrides_the_backend(ctx: Ctx) {
    let s = ctx
        .storage()
        .await
        .with_consistency(Some(Consistency::LastWriterWins));
    assert_eq!(
        s.configured_consistency(),
        Some(Consistency::LastWriterWins)
    );
    assert!(
        !s.conditional_writes().await.unwrap(),
        "configured, not probed"
    );
    assert!(keys(&s, "").await.is_empty(), "nothing probed");
    // Checked with a HEAD first: still refused.
    let first = s
        .put("k", bytes(b"1"), &opts(), PutMode::Create)
        .await
        .unwrap();
    assert!(matches!(
        s.put("k", bytes(b"2"), &opts(), PutMode::Create).await,
        Err(StorageError::AlreadyExists { .. })
    ));
    assert!(matches!(
        s.put(
            "k",
            bytes(b"2"),
            &opts(),
            PutMode::Update("\"stale\"".into())
        )
        .await,
        Err(StorageError::Precondition { .. })
    ));
    s.put("k", bytes(b"3"), &opts(), PutMode::Update(first.etag))
        .await
        .expect("update with the current ETag");
    assert_eq!(read_all(&s, "k").await, b"3");
    // Back to the backend's own answer.
    let s = s.with_consistency(None);
    assert_eq!(s.configured_consistency(), None);
    if let Some(expected) = ctx.backend.expected_conditional_writes() {
        assert_eq!(s.conditional_writes().await.unwrap(), expected);
    }
}

async fn concurrent_creates_have_one_winner(ctx: Ctx) {
    let s = Arc::new(ctx.storage().await);
    if !s.conditional_writes().await.unwrap() {
        eprintln!(
            "{:?} has no conditional writes: nothing to race",
            ctx.backend
        );
        return;
    }
    const N: usize = 12;
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let (s, barrier) = (s.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                s.put(
                    "race/key",
                    bytes(format!("writer {i}").as_bytes()),
                    &opts(),
                    PutMode::Create,
                )
                .await
                .map(|_| i)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(i) => winners.push(i),
            Err(StorageError::AlreadyExists { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one Create wins: {winners:?}");
    assert_eq!(
        read_all(&s, "race/key").await,
        format!("writer {}", winners[0]).as_bytes()
    );

    // The same for Update with one ETag.
    let etag = s.head("race/key").await.unwrap().unwrap().etag;
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let (s, etag) = (s.clone(), etag.clone());
            tokio::spawn(async move {
                s.put(
                    "race/key",
                    bytes(format!("updater {i}").as_bytes()),
                    &opts(),
                    PutMode::Update(etag),
                )
                .await
                .map(|_| i)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(i) => winners.push(i),
            Err(StorageError::Precondition { .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one Update wins: {winners:?}");
    assert_eq!(
        read_all(&s, "race/key").await,
        format!("updater {}", winners[0]).as_bytes()
    );
}
