//! The real `dnf makecache` in a loop while several publisher instances
//! upload into (and remove from, and upload again into) one RPM repo arch:
//! through `packages serve` on the local dir and through Garage's website.
//!
//! Metadata files are content-named and written before `repomd.xml`, so no
//! run may ever see a checksum mismatch or a missing file. One window is
//! known and documented (docs/rpm.md): `repomd.xml.asc` is written just
//! before `repomd.xml`, so a client that fetches one before and the other
//! after that instant sees a signature mismatch. Those runs are counted and
//! printed, not hidden by a retry, and not failed on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use packages::publish::Publisher;

use crate::deb::serve;
use crate::dnf_client::DnfClient;
use crate::rpm::{REPO, VERSION, repo};
use crate::rpm_race::{
    Synth, assert_everything_published, build_rpms, instances, open_places, upload_concurrently,
    upload_of,
};
use crate::support::{Ctx, ORG, url_path};

backend_tests!([local, garage] dnf_makecache_races_uploads);

/// How many instances publish at once.
const INSTANCES: usize = 3;

/// The loop goes on (uploads keep coming) until dnf ran this many times...
const MIN_RUNS: usize = 24;

/// ...or this long.
const MAX_LOOP: Duration = Duration::from_secs(150);

/// Publishing stops by itself this long after it started, whatever the dnf
/// loop does (a dnf loop that died must not leave the publishers running).
const MAX_PUBLISHING: Duration = Duration::from_secs(240);

/// Sets the flag when dropped: the dnf loop stops the publishers however it
/// ends, a panic included.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// How one `dnf makecache` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    /// `repomd.xml.asc` did not verify the `repomd.xml` fetched (the known window).
    Signature,
    /// A metadata file's checksum did not match `repomd.xml`: must never happen.
    Checksum,
    /// A file `repomd.xml` names was missing (404): must never happen.
    Missing,
    /// Anything else: must never happen.
    Other,
}

fn classify(text: &str) -> Outcome {
    if text.contains("404") || text.contains("Cannot download") {
        Outcome::Missing
    } else if text.contains("checksum doesn't match") || text.contains("Checksum") {
        Outcome::Checksum
    } else if text.contains("GPG signature") || text.contains("GPG verification") {
        Outcome::Signature
    } else {
        Outcome::Other
    }
}

/// The `.repo` file's URL below the public tree's base URL.
fn repo_file_url(base: &str) -> String {
    format!(
        "{base}/{ORG}/fedora/linux/releases/{VERSION}/{REPO}/{ORG}-fedora-{VERSION}-{REPO}.repo"
    )
}

/// Uploads `todo` from every instance at once, then keeps publishing (each
/// instance removes one of its packages and uploads it again) until `stop`.
async fn keep_publishing(publishers: &[Publisher], todo: &[Synth], stop: Arc<AtomicBool>) -> usize {
    let acked = upload_concurrently(publishers, todo).await;
    assert_eq!(acked.len(), todo.len(), "every upload acknowledged");
    let mut set = tokio::task::JoinSet::new();
    for (t, publisher) in publishers.iter().enumerate() {
        let (publisher, stop) = (publisher.clone(), stop.clone());
        let mine: Vec<Synth> = todo
            .iter()
            .skip(t)
            .step_by(publishers.len())
            .cloned()
            .collect();
        set.spawn(async move {
            let mut cycles = 0;
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < MAX_PUBLISHING {
                let synth = &mine[cycles % mine.len()];
                publisher
                    .remove(&repo(), None, &synth.name)
                    .await
                    .unwrap_or_else(|e| panic!("remove {}: {e}", synth.name));
                publisher
                    .upload(&upload_of(synth))
                    .await
                    .unwrap_or_else(|e| panic!("upload {} again: {e}", synth.name));
                cycles += 1;
            }
            cycles
        });
    }
    let mut publishes = todo.len();
    while let Some(done) = set.join_next().await {
        publishes += 2 * done.expect("publishing task");
    }
    publishes
}

async fn dnf_makecache_races_uploads(ctx: Ctx) {
    let work = ctx.temp_dir();
    let places = open_places(&ctx).await;
    // The public tree's base URL, and the server to keep alive.
    let (base, shared, _server) = match &places.0.dir {
        Some(dir) => {
            let server = serve(dir);
            (server.1.clone(), true, Some(server))
        }
        None => {
            let web = ctx
                .s3()
                .web
                .clone()
                .expect("PACKAGES_TEST_GARAGE_WEB is set");
            let base = format!("{web}/{}", url_path(&format!("{}/static", places.0.prefix)));
            (base, false, None)
        }
    };
    let publishers = instances(&ctx, &places, shared, INSTANCES, Some(base.clone())).await;
    let built = build_rpms(&work, "loop", 25);
    let (seed, todo) = built.split_at(1);
    upload_concurrently(&publishers[..1], seed).await;

    let url = repo_file_url(&base);
    // The follower's first run, before anything races with it.
    let follower = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let follower = DnfClient::from_repo_url(&url);
            follower.makecache().expect("first dnf makecache");
            follower
        })
        .await
        .expect("first dnf makecache")
    };
    let runs = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // dnf in a loop: alternately the same client (it holds the previous
    // repomd.xml and metadata, as a machine following the repository does)
    // and a fresh one (nothing cached).
    let dnf_loop = {
        let (runs, stop, url) = (runs.clone(), stop.clone(), url.clone());
        tokio::task::spawn_blocking(move || {
            let _stop_publishing = StopOnDrop(stop.clone());
            let started = Instant::now();
            let mut outcomes: Vec<(Outcome, String)> = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let round = outcomes.len();
                let fresh;
                let client = if round % 2 == 1 {
                    fresh = DnfClient::from_repo_url(&url);
                    &fresh
                } else {
                    &follower
                };
                match client.makecache() {
                    Ok(_) => outcomes.push((Outcome::Ok, String::new())),
                    Err(failure) => {
                        let text = failure.to_string();
                        outcomes.push((classify(&text), text));
                    }
                }
                let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                if n >= MIN_RUNS || started.elapsed() > MAX_LOOP {
                    stop.store(true, Ordering::SeqCst);
                }
            }
            outcomes
        })
    };
    let started = Instant::now();
    let publishes = keep_publishing(&publishers, todo, stop.clone()).await;
    let elapsed = started.elapsed();
    let outcomes = dnf_loop.await.expect("dnf loop");

    let mut counts: std::collections::BTreeMap<Outcome, usize> = Default::default();
    for (outcome, _) in &outcomes {
        *counts.entry(*outcome).or_default() += 1;
    }
    let count = |o: Outcome| counts.get(&o).copied().unwrap_or(0);
    eprintln!(
        "dnf loop ({:?}): {} makecache runs during {publishes} publishes from {INSTANCES} \
         instances in {elapsed:.1?}: {} ok, {} signature window, {} checksum mismatch, \
         {} missing file, {} other",
        ctx.backend,
        outcomes.len(),
        count(Outcome::Ok),
        count(Outcome::Signature),
        count(Outcome::Checksum),
        count(Outcome::Missing),
        count(Outcome::Other),
    );
    for (outcome, text) in &outcomes {
        if *outcome == Outcome::Signature {
            eprintln!("--- a signature-window run:\n{text}");
            break;
        }
    }
    let never: Vec<&(Outcome, String)> = outcomes
        .iter()
        .filter(|(o, _)| matches!(o, Outcome::Checksum | Outcome::Missing | Outcome::Other))
        .collect();
    assert!(
        never.is_empty(),
        "dnf runs that must never fail: {never:#?}"
    );
    assert!(outcomes.len() >= 4, "only {} dnf runs", outcomes.len());

    // Once the publishers are done, a fresh client sees every package.
    assert_everything_published(&publishers[0], &built, &work).await;
    let want: Vec<String> = {
        let mut v: Vec<String> = built
            .iter()
            .map(|s| format!("{}-1.0-1.{}", s.name, s.arch))
            .collect();
        v.sort();
        v
    };
    tokio::task::spawn_blocking(move || {
        let dnf = DnfClient::from_repo_url(&url);
        dnf.makecache().expect("dnf makecache after the uploads");
        assert_eq!(dnf.repoquery(&[]).expect("dnf repoquery"), want);
    })
    .await
    .expect("final dnf checks");
}
