//! One test per fault of [`FaultyStore`].

use std::time::Duration;

use super::*;
use crate::storage::{MemoryStore, Storage};

fn setup() -> (MemoryStore, FaultHandle, Storage) {
    let memory = MemoryStore::new();
    let faulty = FaultyStore::new(Arc::new(memory.clone()));
    let handle = faulty.handle();
    (memory, handle, Storage::new(Arc::new(faulty)))
}

async fn put(
    s: &Storage,
    key: &str,
    data: &str,
    mode: PutMode,
) -> Result<ObjectMeta, StorageError> {
    s.put(
        key,
        Payload::from(data.as_bytes().to_vec()),
        &PutOptions::default(),
        mode,
    )
    .await
}

async fn body(memory: &MemoryStore, key: &str) -> Option<String> {
    let s = Storage::new(Arc::new(memory.clone()));
    s.get_bytes_opt(key)
        .await
        .unwrap()
        .map(|(b, _)| String::from_utf8(b.to_vec()).unwrap())
}

#[tokio::test]
async fn passes_everything_through_by_default() {
    let (memory, faults, s) = setup();
    put(&s, "a", "1", PutMode::Create).await.unwrap();
    s.copy("a", "b").await.unwrap();
    assert_eq!(s.list("").await.unwrap().len(), 2);
    s.delete("a").await.unwrap();
    assert!(s.head("a").await.unwrap().is_none());
    assert_eq!(&s.get_bytes("b").await.unwrap().0[..], b"1");
    assert_eq!(memory.keys(), ["b"]);
    assert!(
        s.conditional_writes().await.unwrap(),
        "the inner store's contract"
    );
    assert!(!faults.is_crashed());
}

#[tokio::test]
async fn counts_requests_per_operation_and_resets() {
    let (_, faults, s) = setup();
    put(&s, "a", "1", PutMode::Overwrite).await.unwrap();
    put(&s, "b", "2", PutMode::Create).await.unwrap();
    s.get_bytes("a").await.unwrap();
    s.head("a").await.unwrap();
    s.list("").await.unwrap();
    s.copy("a", "c").await.unwrap();
    s.delete("c").await.unwrap();
    let counts = faults.counts();
    assert_eq!(
        counts,
        RequestCounts {
            get: 1,
            head: 1,
            put: 2,
            list: 1,
            delete: 1,
            copy: 1
        }
    );
    assert_eq!((counts.total(), counts.reads(), counts.writes()), (7, 3, 4));
    assert_eq!(faults.writes_so_far(), 4);
    assert_eq!(
        counts.to_string(),
        "7 requests (get 1, head 1, put 2, list 1, delete 1, copy 1)"
    );
    faults.reset_counts();
    assert_eq!(faults.counts(), RequestCounts::default());
    assert_eq!(faults.writes_so_far(), 0);
}

#[tokio::test]
async fn crash_before_write_does_not_apply_it_and_kills_everything() {
    let (memory, faults, s) = setup();
    put(&s, "before", "x", PutMode::Overwrite).await.unwrap();
    faults.crash_at_write(2, CrashMode::BeforeWrite);
    put(&s, "one", "1", PutMode::Overwrite).await.unwrap();
    s.head("one").await.unwrap(); // reads do not count as writes
    let err = put(&s, "two", "2", PutMode::Overwrite).await.unwrap_err();
    assert!(is_injected_crash(&err), "{err}");
    assert!(err.to_string().contains("write 3"), "{err}");
    assert_eq!(body(&memory, "two").await, None, "not applied");
    assert!(faults.is_crashed());
    // Every operation fails now, reads too, and none reaches the store.
    let counted = faults.counts();
    assert!(is_injected_crash(&s.get("one").await.err().unwrap()));
    assert!(is_injected_crash(&s.head("one").await.unwrap_err()));
    assert!(is_injected_crash(&s.list("").await.unwrap_err()));
    assert!(is_injected_crash(&s.delete("one").await.unwrap_err()));
    assert!(is_injected_crash(&s.copy("one", "x").await.unwrap_err()));
    assert!(is_injected_crash(
        &put(&s, "three", "3", PutMode::Overwrite).await.unwrap_err()
    ));
    assert_eq!(faults.counts(), counted, "a dead process makes no requests");
    assert_eq!(memory.keys(), ["before", "one"]);
    // A new process sees the same data.
    faults.heal();
    assert_eq!(&s.get_bytes("one").await.unwrap().0[..], b"1");
    put(&s, "two", "2", PutMode::Create).await.unwrap();
    assert_eq!(body(&memory, "two").await.as_deref(), Some("2"));
}

#[tokio::test]
async fn crash_after_write_applies_it_and_loses_the_answer() {
    let (memory, faults, s) = setup();
    faults.crash_at_write(1, CrashMode::AfterWrite);
    let err = put(&s, "k", "v", PutMode::Create).await.unwrap_err();
    assert!(is_injected_crash(&err), "{err}");
    assert_eq!(body(&memory, "k").await.as_deref(), Some("v"), "applied");
    assert!(is_injected_crash(&s.head("k").await.unwrap_err()));
    faults.heal();
    assert!(matches!(
        put(&s, "k", "w", PutMode::Create).await,
        Err(StorageError::AlreadyExists { .. })
    ));
    // Deletes and copies are writes too.
    faults.crash_at_write(2, CrashMode::AfterWrite);
    s.copy("k", "k2").await.unwrap();
    assert!(is_injected_crash(&s.delete("k").await.unwrap_err()));
    assert_eq!(memory.keys(), ["k2"], "the delete was applied");
}

#[tokio::test]
async fn crash_loses_answers_of_calls_in_flight() {
    let (memory, faults, s) = setup();
    faults.set_latency(Duration::from_millis(200));
    let s = Arc::new(s);
    let slow = {
        let s = s.clone();
        tokio::spawn(async move { put(&s, "slow", "x", PutMode::Overwrite).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    faults.crash_now();
    let err = slow.await.unwrap().unwrap_err();
    assert!(is_injected_crash(&err), "{err}");
    // It was let through before the crash, so it may have landed.
    assert_eq!(memory.keys(), ["slow"]);
}

#[tokio::test]
async fn crash_plan_counts_from_when_it_is_set() {
    let (_, faults, s) = setup();
    for i in 0..5 {
        put(&s, &format!("k{i}"), "x", PutMode::Overwrite)
            .await
            .unwrap();
    }
    faults.crash_at_write(1, CrashMode::BeforeWrite);
    faults.reset_counts();
    assert!(is_injected_crash(&s.delete("k0").await.unwrap_err()));
    assert_eq!(faults.writes_so_far(), 1);
    faults.heal();
    // Healed: the plan is gone too.
    for i in 0..5 {
        s.delete(&format!("k{i}")).await.unwrap();
    }
}

#[tokio::test]
async fn dropped_preconditions_behave_like_garage() {
    let (memory, faults, s) = setup();
    put(&s, "k", "1", PutMode::Create).await.unwrap();
    faults.drop_preconditions(true);
    assert_eq!(
        s.consistency().await.unwrap(),
        Consistency::LastWriterWins,
        "the handle sees the new contract at once"
    );
    // Past the handle's HEAD check, the store itself overwrites.
    let raw = s.object_store();
    raw.put(
        "k",
        Payload::from(b"2".to_vec()),
        &PutOptions::default(),
        PutMode::Create,
    )
    .await
    .expect("a Create that overwrites");
    raw.put(
        "k",
        Payload::from(b"3".to_vec()),
        &PutOptions::default(),
        PutMode::Update("\"stale\"".into()),
    )
    .await
    .expect("an Update with a stale ETag that overwrites");
    assert_eq!(body(&memory, "k").await.as_deref(), Some("3"));
    // The handle still refuses what it can see is wrong.
    assert!(matches!(
        put(&s, "k", "4", PutMode::Create).await,
        Err(StorageError::AlreadyExists { .. })
    ));
    assert!(matches!(
        put(&s, "k", "4", PutMode::Update("\"stale\"".into())).await,
        Err(StorageError::Precondition { .. })
    ));
    faults.drop_preconditions(false);
    assert!(s.conditional_writes().await.unwrap());
    assert!(matches!(
        raw.put(
            "k",
            Payload::from(b"5".to_vec()),
            &PutOptions::default(),
            PutMode::Create
        )
        .await,
        Err(StorageError::AlreadyExists { .. })
    ));
}

#[tokio::test]
async fn latency_is_added_to_every_request() {
    let (_, faults, s) = setup();
    faults.set_latency(Duration::from_millis(250));
    let started = std::time::Instant::now();
    put(&s, "k", "v", PutMode::Overwrite).await.unwrap();
    s.head("k").await.unwrap();
    s.list("").await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(750),
        "{:?}",
        started.elapsed()
    );
    faults.set_latency(Duration::ZERO);
    let started = std::time::Instant::now();
    s.head("k").await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(250));
}

#[tokio::test]
async fn fails_the_next_requests_without_applying_them() {
    let (memory, faults, s) = setup();
    faults.fail_next(2);
    let err = put(&s, "k", "v", PutMode::Overwrite).await.unwrap_err();
    assert!(
        is_injected_failure(&err) && !is_injected_crash(&err),
        "{err}"
    );
    assert!(matches!(err, StorageError::Backend { op: "put", .. }));
    assert!(is_injected_failure(&s.head("k").await.unwrap_err()));
    assert!(memory.is_empty(), "a failed request is not applied");
    put(&s, "k", "v", PutMode::Overwrite).await.unwrap();
    assert_eq!(faults.counts().put, 2, "failed requests count as made");
    assert!(!faults.is_crashed());
    faults.fail_next(5);
    faults.heal();
    s.head("k").await.unwrap();
}

#[tokio::test]
async fn a_held_put_lands_only_when_released() {
    let (memory, faults, s) = setup();
    let s = Arc::new(s);
    let held = faults.hold_put("/slow");
    let s2 = s.clone();
    let task = tokio::spawn(async move { put(&s2, "a/slow", "late", PutMode::Overwrite).await });
    held.reached().await;
    // Other requests, even to the same key, go past it.
    put(&s, "a/slow", "early", PutMode::Overwrite)
        .await
        .unwrap();
    put(&s, "a/fast", "x", PutMode::Overwrite).await.unwrap();
    assert_eq!(body(&memory, "a/slow").await.as_deref(), Some("early"));
    held.release();
    task.await.unwrap().unwrap();
    assert_eq!(body(&memory, "a/slow").await.as_deref(), Some("late"));
    // Each hold holds one put.
    put(&s, "b/slow", "now", PutMode::Overwrite).await.unwrap();
}
