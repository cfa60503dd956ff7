//! Group commit: concurrent publishes to one signed root inside one process
//! share publish rounds.
//!
//! A publish stores its change (a pending object) and then needs one publish
//! round (`reindex`) that *starts after* the change was stored: such a round
//! merges everything pending, so it covers the change. Without coordination
//! every concurrent writer runs its own round, and the rounds fight over the
//! same manifest and index (each loses the conditional write to the others
//! and starts over), so one process gets slower as writers are added.
//!
//! [`CommitGate::commit`] runs at most one round per root at a time. A writer
//! that arrives while no round runs leads one; a writer that arrives while a
//! round runs waits for it to end and then either is covered by the round
//! that a later arrival started, or leads the next one itself. Every writer
//! that arrived during a round is covered by the *next* round, so N
//! concurrent writers cost about two rounds, not N. A writer is never
//! acknowledged by a round that started before it called `commit`: that
//! round may have listed the pending changes before its change was stored.
//!
//! A round that fails fails only its leader. The writers that waited for it
//! are not covered, so one of them leads the next round: each writer leads
//! at most one round and gets that round's own error, which keeps the
//! number of rounds bounded and needs no shared error values. A leader that
//! is cancelled (its request dropped) ends its round as failed the same way.
//!
//! The gate is per process and per [`Publisher`](super::Publisher): writers
//! in other processes are coordinated by the store, as before (see
//! `docs/publishing.md`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// Rounds of one root.
#[derive(Debug)]
struct Root<T> {
    state: Mutex<RootState<T>>,
    /// Woken whenever a round ends (successfully or not).
    ended: Notify,
}

#[derive(Debug)]
struct RootState<T> {
    /// How many rounds have started; the running round, if any, is this one.
    started: u64,
    /// Whether round `started` is running.
    running: bool,
    /// The latest round that succeeded, with its value (0: none yet).
    covered: u64,
    value: Option<T>,
    /// Writers inside `commit` for this root (the root is dropped at zero).
    users: usize,
}

/// What [`CommitGate::commit`] returns for a covered writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed<T> {
    /// The value of the round that covered the writer (that round or a later one).
    pub value: T,
    /// The number of that round (per root and gate, counting from 1).
    pub round: u64,
    /// Whether this writer led that round.
    pub led: bool,
}

/// Per-root publish rounds shared by the writers of one process. Cheap to
/// share: hold it in an `Arc` (the [`Publisher`](super::Publisher) does).
#[derive(Debug)]
pub struct CommitGate<K, T> {
    roots: Mutex<BTreeMap<K, Arc<Root<T>>>>,
}

impl<K, T> Default for CommitGate<K, T> {
    fn default() -> Self {
        Self {
            roots: Mutex::new(BTreeMap::new()),
        }
    }
}

fn lock<S>(mutex: &Mutex<S>) -> MutexGuard<'_, S> {
    // The state stays consistent on every path (no panics while it is held).
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<K: Ord + Clone, T: Clone> CommitGate<K, T> {
    /// An empty gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns once a round of `root` that started after this call has
    /// succeeded, running `round` (the caller's publish round: merge every
    /// pending change of `root` and publish it) if this writer has to lead
    /// one. Call it after the change is stored. An error is the error of the
    /// round this writer led; writers whose round was led by another never
    /// see that round's error (they lead the next round instead).
    pub async fn commit<E, F, Fut>(&self, root: &K, round: F) -> Result<Committed<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let entry = self.enter(root);
        let shared = entry.root.clone();
        let mut round = Some(round);
        // The first round that can cover this writer: any round started later.
        let need = lock(&shared.state).started + 1;
        loop {
            let ended = shared.ended.notified();
            tokio::pin!(ended);
            // Decided under the lock; the guard must not live across an await.
            let lead = {
                let mut state = lock(&shared.state);
                if state.covered >= need {
                    let value = state.value.clone().expect("a covered round has a value");
                    return Ok(Committed {
                        value,
                        round: state.covered,
                        led: false,
                    });
                }
                if state.running {
                    // Registered before the lock is released: the end of
                    // the running round cannot be missed.
                    ended.as_mut().enable();
                    None
                } else {
                    state.started += 1;
                    state.running = true;
                    Some(state.started)
                }
            };
            match lead {
                Some(number) => {
                    let round = round.take().expect("a writer leads at most one round");
                    return Self::lead(&shared, number, round).await;
                }
                None => ended.as_mut().await,
            }
        }
    }

    async fn lead<E, F, Fut>(root: &Root<T>, number: u64, round: F) -> Result<Committed<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut guard = LeaderGuard { root, done: false };
        let result = round().await;
        {
            let mut state = lock(&root.state);
            state.running = false;
            if let Ok(value) = &result {
                // Rounds of one root run one at a time: `number` is the latest.
                state.covered = number;
                state.value = Some(value.clone());
            }
        }
        guard.done = true;
        root.ended.notify_waiters();
        result.map(|value| Committed {
            value,
            round: number,
            led: true,
        })
    }

    fn enter(&self, root: &K) -> Entry<'_, K, T> {
        let mut roots = lock(&self.roots);
        let shared = roots
            .entry(root.clone())
            .or_insert_with(|| {
                Arc::new(Root {
                    state: Mutex::new(RootState {
                        started: 0,
                        running: false,
                        covered: 0,
                        value: None,
                        users: 0,
                    }),
                    ended: Notify::new(),
                })
            })
            .clone();
        lock(&shared.state).users += 1;
        Entry {
            gate: self,
            key: root.clone(),
            root: shared,
        }
    }

    /// How many roots have writers inside [`commit`](Self::commit) now.
    pub fn active_roots(&self) -> usize {
        lock(&self.roots).len()
    }
}

/// A writer inside `commit`; forgets the root when its last writer leaves.
struct Entry<'a, K: Ord, T> {
    gate: &'a CommitGate<K, T>,
    key: K,
    root: Arc<Root<T>>,
}

impl<K: Ord, T> Drop for Entry<'_, K, T> {
    fn drop(&mut self) {
        // Lock order: the map, then the root (as in `enter`).
        let mut roots = lock(&self.gate.roots);
        let mut state = lock(&self.root.state);
        state.users -= 1;
        if state.users == 0 {
            drop(state);
            roots.remove(&self.key);
        }
    }
}

/// Ends a leader's round as failed if the leader is dropped mid-round, so
/// the writers waiting for it lead the next one instead of hanging.
struct LeaderGuard<'a, T> {
    root: &'a Root<T>,
    done: bool,
}

impl<T> Drop for LeaderGuard<'_, T> {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.root.state).running = false;
            self.root.ended.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A toy store: changes are pending until a round publishes what it listed.
    #[derive(Default)]
    struct Toy {
        pending: Mutex<BTreeSet<u64>>,
        published: Mutex<BTreeSet<u64>>,
        rounds: AtomicUsize,
    }

    impl Toy {
        /// A round: lists pending changes, takes a while, publishes them.
        async fn round(&self, delay: Duration) -> Result<usize, String> {
            self.rounds.fetch_add(1, Ordering::SeqCst);
            let listed: Vec<u64> = lock(&self.pending).iter().copied().collect();
            tokio::time::sleep(delay).await;
            let mut published = lock(&self.published);
            published.extend(listed);
            Ok(published.len())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_share_rounds_and_each_is_covered() {
        let gate = Arc::new(CommitGate::<&str, usize>::new());
        let toy = Arc::new(Toy::default());
        let mut tasks = tokio::task::JoinSet::new();
        for id in 0..64u64 {
            let (gate, toy) = (gate.clone(), toy.clone());
            tasks.spawn(async move {
                // Stagger arrivals so some land while a round runs.
                tokio::time::sleep(Duration::from_millis(id % 7)).await;
                lock(&toy.pending).insert(id);
                let toy2 = toy.clone();
                let done = gate
                    .commit(&"x86_64", || async move {
                        toy2.round(Duration::from_millis(10)).await
                    })
                    .await
                    .expect("rounds do not fail here");
                // Acknowledged only when a round that listed it published it.
                assert!(
                    lock(&toy.published).contains(&id),
                    "{id} acknowledged early"
                );
                done
            });
        }
        let mut led = 0;
        while let Some(done) = tasks.join_next().await {
            led += usize::from(done.expect("task").led);
        }
        let rounds = toy.rounds.load(Ordering::SeqCst);
        assert_eq!(led, rounds);
        assert!(rounds <= 12, "64 writers took {rounds} rounds");
        assert_eq!(gate.active_roots(), 0, "idle roots are forgotten");
    }

    #[tokio::test]
    async fn a_writer_arriving_during_a_round_waits_for_the_next() {
        let gate = Arc::new(CommitGate::<u8, u64>::new());
        let release = Arc::new(Notify::new());
        let first = {
            let (gate, release) = (gate.clone(), release.clone());
            tokio::spawn(async move {
                gate.commit(&1, || async move {
                    release.notified().await;
                    Ok::<_, ()>(1)
                })
                .await
            })
        };
        // Let the first round start, then arrive during it.
        while lock(&gate.roots)
            .get(&1)
            .is_none_or(|r| !lock(&r.state).running)
        {
            tokio::task::yield_now().await;
        }
        let second = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.commit(&1, || async { Ok::<_, ()>(2) }).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !second.is_finished(),
            "covered by a round that started before it"
        );
        release.notify_one();
        let first = first.await.expect("task").expect("round");
        assert_eq!((first.round, first.value, first.led), (1, 1, true));
        let second = second.await.expect("task").expect("round");
        assert_eq!((second.round, second.value, second.led), (2, 2, true));
    }

    #[tokio::test]
    async fn a_failed_round_fails_only_its_leader_and_waiters_lead_the_next() {
        let gate = Arc::new(CommitGate::<u8, &'static str>::new());
        let release = Arc::new(Notify::new());
        let failing = {
            let (gate, release) = (gate.clone(), release.clone());
            tokio::spawn(async move {
                gate.commit(&1, || async move {
                    release.notified().await;
                    Err::<&str, _>("contended")
                })
                .await
            })
        };
        while lock(&gate.roots)
            .get(&1)
            .is_none_or(|r| !lock(&r.state).running)
        {
            tokio::task::yield_now().await;
        }
        let mut waiters = Vec::new();
        for _ in 0..5 {
            let gate = gate.clone();
            waiters.push(tokio::spawn(async move {
                gate.commit(&1, || async { Ok::<_, &str>("ok") }).await
            }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        release.notify_one();
        assert_eq!(failing.await.expect("task"), Err("contended"));
        let mut led = 0;
        for waiter in waiters {
            let done = waiter
                .await
                .expect("task")
                .expect("covered by the next round");
            assert_eq!((done.value, done.round), ("ok", 2));
            led += usize::from(done.led);
        }
        assert_eq!(
            led, 1,
            "one waiter leads the next round, the others join it"
        );
    }

    #[tokio::test]
    async fn a_cancelled_leader_does_not_strand_its_waiters() {
        let gate = Arc::new(CommitGate::<u8, u8>::new());
        let leader = {
            let gate = gate.clone();
            tokio::spawn(async move {
                gate.commit(&1, || async {
                    std::future::pending::<()>().await;
                    Ok::<_, ()>(0)
                })
                .await
            })
        };
        while lock(&gate.roots)
            .get(&1)
            .is_none_or(|r| !lock(&r.state).running)
        {
            tokio::task::yield_now().await;
        }
        let waiter = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.commit(&1, || async { Ok::<_, ()>(7) }).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        leader.abort();
        let done = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter is not stranded")
            .expect("task")
            .expect("round");
        assert_eq!((done.value, done.led), (7, true));
        assert_eq!(gate.active_roots(), 0);
    }

    #[tokio::test]
    async fn different_roots_run_their_rounds_side_by_side() {
        let gate = Arc::new(CommitGate::<u8, u8>::new());
        let both = Arc::new(tokio::sync::Barrier::new(2));
        let mut tasks = Vec::new();
        for root in [1u8, 2] {
            let (gate, both) = (gate.clone(), both.clone());
            tasks.push(tokio::spawn(async move {
                gate.commit(&root, || async move {
                    // Only returns if the other root's round runs at the same time.
                    both.wait().await;
                    Ok::<_, ()>(root)
                })
                .await
            }));
        }
        for (task, root) in tasks.into_iter().zip([1u8, 2]) {
            let done = tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("rounds of different roots do not wait for each other")
                .expect("task")
                .expect("round");
            assert_eq!(done.value, root);
        }
    }
}
