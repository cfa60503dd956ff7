//! A fault-injecting wrapper around any store, for deterministic crash tests
//! and request counting.
//!
//! [`FaultyStore`] forwards every call to its inner store; a cloneable
//! [`FaultHandle`] changes its behaviour at run time:
//! - **crash** at the N-th write (put, delete, copy) from now: from then on
//!   *every* operation fails with an injected-crash error, as if the process had
//!   died. [`CrashMode::BeforeWrite`]: the N-th write never reaches the store;
//!   [`CrashMode::AfterWrite`]: it is applied but its answer is lost. Calls
//!   already in flight when the crash happens may still reach the store, but
//!   their answers are lost too. [`FaultHandle::heal`] lets a new "process"
//!   work on the same data.
//! - **drop preconditions**: `Create`/`Update` are written as `Overwrite`, as
//!   Garage does; the store then reports [`Consistency::LastWriterWins`].
//! - **latency** added before every request.
//! - **fail the next N requests** with a backend error (not applied).
//! - **hold a put** to a key ending in a given suffix before it reaches the
//!   store, until the test releases it ([`FaultHandle::hold_put`]): a slow
//!   request, landing after other writers' requests.
//! - **request counters** per operation ([`RequestCounts`]), and the number of
//!   writes so far, both reset by [`FaultHandle::reset_counts`]. A `list` counts
//!   as one request whatever the number of pages. Requests a crashed store
//!   refuses are not counted. Over S3 (whose contract is probed) the
//!   [`super::Storage`] handle's one-time probe goes through the wrapper and is
//!   counted too, unless the consistency is configured.
//!
//! ```
//! # async fn demo() -> Result<(), packages::storage::StorageError> {
//! use std::sync::Arc;
//! use packages::storage::{CrashMode, FaultyStore, MemoryStore, Storage};
//!
//! let faulty = FaultyStore::new(Arc::new(MemoryStore::new()));
//! let faults = faulty.handle();
//! let storage = Storage::new(Arc::new(faulty));
//! faults.crash_at_write(2, CrashMode::AfterWrite);
//! // ... run an operation; it fails with an injected crash at its second write
//! assert_eq!(faults.counts().writes(), faults.writes_so_far());
//! faults.heal();
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::{
    Consistency, GetResult, ObjectMeta, ObjectStore, Payload, PutMode, PutOptions, StorageError,
    StoreFuture,
};

/// Where an injected crash hits the N-th write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// The process dies before the write reaches the store: it is not applied.
    BeforeWrite,
    /// The store applies the write, and the process dies before the answer.
    AfterWrite,
}

/// Requests made per operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// `get` requests.
    pub get: u64,
    /// `head` requests.
    pub head: u64,
    /// `put` requests.
    pub put: u64,
    /// `list` calls (one per call, whatever the pages).
    pub list: u64,
    /// `delete` requests.
    pub delete: u64,
    /// `copy` requests.
    pub copy: u64,
}

impl RequestCounts {
    /// Every request.
    pub fn total(&self) -> u64 {
        self.reads() + self.writes()
    }

    /// `get`, `head` and `list`.
    pub fn reads(&self) -> u64 {
        self.get + self.head + self.list
    }

    /// `put`, `delete` and `copy`.
    pub fn writes(&self) -> u64 {
        self.put + self.delete + self.copy
    }
}

impl std::fmt::Display for RequestCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests (get {}, head {}, put {}, list {}, delete {}, copy {})",
            self.total(),
            self.get,
            self.head,
            self.put,
            self.list,
            self.delete,
            self.copy
        )
    }
}

/// The message every injected crash error starts with.
pub const INJECTED_CRASH: &str = "injected crash";
/// The message every injected request failure starts with.
pub const INJECTED_FAILURE: &str = "injected failure";

/// Whether `error` is an injected crash of a [`FaultyStore`].
pub fn is_injected_crash(error: &StorageError) -> bool {
    matches!(error, StorageError::Backend { message, .. } if message.starts_with(INJECTED_CRASH))
}

/// Whether `error` is an injected request failure ([`FaultHandle::fail_next`]).
pub fn is_injected_failure(error: &StorageError) -> bool {
    matches!(error, StorageError::Backend { message, .. } if message.starts_with(INJECTED_FAILURE))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Get,
    Head,
    Put,
    List,
    Delete,
    Copy,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Head => "head",
            Op::Put => "put",
            Op::List => "list",
            Op::Delete => "delete",
            Op::Copy => "copy",
        }
    }

    fn is_write(self) -> bool {
        matches!(self, Op::Put | Op::Delete | Op::Copy)
    }
}

#[derive(Debug, Default)]
struct Faults {
    counts: RequestCounts,
    writes: u64,
    /// The absolute write number to crash at, and how.
    crash_at: Option<(u64, CrashMode)>,
    /// The write the store crashed at, once it has.
    crashed: Option<u64>,
    drop_preconditions: bool,
    latency: Duration,
    fail_next: u64,
    /// Puts to hold, by key suffix (each holds one put).
    holds: Vec<(String, HeldPut)>,
}

/// A put held before it reaches the store ([`FaultHandle::hold_put`]).
#[derive(Debug, Clone, Default)]
pub struct HeldPut {
    reached: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

impl HeldPut {
    /// Waits until the put to hold has been made (and is held).
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets the held put go on to the store (before or after it was made).
    pub fn release(&self) {
        self.release.notify_one();
    }
}

/// Controls a [`FaultyStore`] at run time; clones control the same store.
#[derive(Debug, Clone, Default)]
pub struct FaultHandle {
    faults: Arc<Mutex<Faults>>,
}

impl FaultHandle {
    fn lock(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Crashes at the `n`-th write from now (`n` ≥ 1; 0 is taken as 1).
    /// Replaces an earlier plan that has not fired.
    pub fn crash_at_write(&self, n: u64, mode: CrashMode) {
        let mut f = self.lock();
        f.crash_at = Some((f.writes + n.max(1), mode));
    }

    /// Crashes now: every operation fails until [`FaultHandle::heal`].
    pub fn crash_now(&self) {
        let mut f = self.lock();
        f.crashed = Some(f.writes);
        f.crash_at = None;
    }

    /// Whether the store has crashed (and not been healed).
    pub fn is_crashed(&self) -> bool {
        self.lock().crashed.is_some()
    }

    /// Lets a new "process" use the same data: clears the crash and any crash
    /// plan and pending failures. Latency, dropped preconditions and counters stay.
    pub fn heal(&self) {
        let mut f = self.lock();
        f.crashed = None;
        f.crash_at = None;
        f.fail_next = 0;
    }

    /// Writes `Create`/`Update` as `Overwrite` (like Garage) while `on`.
    pub fn drop_preconditions(&self, on: bool) {
        self.lock().drop_preconditions = on;
    }

    /// Waits `latency` before every request.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Fails the next `n` requests with a backend error; they are not applied.
    pub fn fail_next(&self, n: u64) {
        self.lock().fail_next = n;
    }

    /// Holds the next put to a key ending in `suffix` before it reaches the
    /// store (the request is counted once released), until
    /// [`HeldPut::release`].
    pub fn hold_put(&self, suffix: &str) -> HeldPut {
        let held = HeldPut::default();
        self.lock().holds.push((suffix.to_owned(), held.clone()));
        held
    }

    /// Writes (put, delete, copy) made since creation or [`FaultHandle::reset_counts`].
    pub fn writes_so_far(&self) -> u64 {
        self.lock().writes
    }

    /// Requests made per operation since creation or [`FaultHandle::reset_counts`].
    pub fn counts(&self) -> RequestCounts {
        self.lock().counts
    }

    /// Sets the counters and the write count to zero (a pending crash plan
    /// keeps its distance in writes).
    pub fn reset_counts(&self) {
        let mut f = self.lock();
        if let Some((at, mode)) = f.crash_at {
            f.crash_at = Some((at - f.writes, mode));
        }
        f.counts = RequestCounts::default();
        f.writes = 0;
    }
}

/// Wraps a store and injects the faults its [`FaultHandle`] asks for.
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    handle: FaultHandle,
}

impl FaultyStore {
    /// A pass-through wrapper around `inner` (no fault until asked for).
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            handle: FaultHandle::default(),
        }
    }

    /// The handle controlling this store.
    pub fn handle(&self) -> FaultHandle {
        self.handle.clone()
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// Counts the request and decides its fate: an error now, or go ahead (a
    /// crash set here with [`CrashMode::AfterWrite`] loses the answer later).
    async fn enter(&self, op: Op, key: &str) -> Result<(), StorageError> {
        let latency = {
            let mut f = self.handle.lock();
            if let Some(at) = f.crashed {
                return Err(crash_error(op, key, at));
            }
            match op {
                Op::Get => f.counts.get += 1,
                Op::Head => f.counts.head += 1,
                Op::Put => f.counts.put += 1,
                Op::List => f.counts.list += 1,
                Op::Delete => f.counts.delete += 1,
                Op::Copy => f.counts.copy += 1,
            }
            let mut lose_answer = false;
            if op.is_write() {
                f.writes += 1;
                if let Some((at, mode)) = f.crash_at {
                    if at == f.writes {
                        f.crash_at = None;
                        f.crashed = Some(at);
                        match mode {
                            CrashMode::BeforeWrite => return Err(crash_error(op, key, at)),
                            CrashMode::AfterWrite => lose_answer = true,
                        }
                    }
                }
            }
            if !lose_answer && f.fail_next > 0 {
                f.fail_next -= 1;
                return Err(StorageError::backend(
                    op.name(),
                    key,
                    format!("{INJECTED_FAILURE} (FaultyStore::fail_next)"),
                ));
            }
            f.latency
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        Ok(())
    }

    /// Runs one request through the faults; `call` makes the inner request
    /// only once the request is let through.
    async fn run<'a, T>(
        &'a self,
        op: Op,
        key: &str,
        call: impl FnOnce() -> StoreFuture<'a, T>,
    ) -> Result<T, StorageError> {
        self.enter(op, key).await?;
        let result = call().await;
        // A crash at this write, or while the call was in flight, loses the answer.
        if let Some(at) = self.handle.lock().crashed {
            return Err(crash_error(op, key, at));
        }
        result
    }
}

fn crash_error(op: Op, key: &str, at: u64) -> StorageError {
    StorageError::backend(
        op.name(),
        key,
        format!(
            "{INJECTED_CRASH}: the process died at write {at} (FaultyStore); heal() lets a new process continue"
        ),
    )
}

impl ObjectStore for FaultyStore {
    fn describe(&self) -> String {
        format!("fault-injecting wrapper of {}", self.inner.describe())
    }

    fn consistency(&self) -> Option<Consistency> {
        if self.handle.lock().drop_preconditions {
            Some(Consistency::LastWriterWins)
        } else {
            self.inner.consistency()
        }
    }

    fn local_root(&self) -> Option<&std::path::Path> {
        self.inner.local_root()
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, GetResult> {
        Box::pin(self.run(Op::Get, key, || self.inner.get(key)))
    }

    fn head<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<ObjectMeta>> {
        Box::pin(self.run(Op::Head, key, || self.inner.head(key)))
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        payload: Payload,
        options: &'a PutOptions,
        mode: PutMode,
    ) -> StoreFuture<'a, ObjectMeta> {
        Box::pin(async move {
            let held = {
                let mut f = self.handle.lock();
                let at = f.holds.iter().position(|(suffix, _)| key.ends_with(suffix));
                at.map(|i| f.holds.remove(i).1)
            };
            if let Some(held) = held {
                held.reached.notify_one();
                held.release.notified().await;
            }
            // Decided when the request is made, as a server would.
            let mode = if self.handle.lock().drop_preconditions {
                PutMode::Overwrite
            } else {
                mode
            };
            self.run(Op::Put, key, || self.inner.put(key, payload, options, mode))
                .await
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<ObjectMeta>> {
        Box::pin(self.run(Op::List, prefix, || self.inner.list(prefix)))
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.run(Op::Delete, key, || self.inner.delete(key)))
    }

    fn copy<'a>(&'a self, from: &'a str, to: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.run(Op::Copy, to, || self.inner.copy(from, to)))
    }
}

#[cfg(test)]
mod tests;
