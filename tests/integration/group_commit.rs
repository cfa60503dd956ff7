//! Group commit and batches: concurrent uploads through one publisher share
//! publish rounds, every one of them is acknowledged and listed; a
//! multi-file upload signs each arch's index once, refuses a bad file before
//! writing anything, and reports a conflicting file alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use packages::formats::apk::builder::ApkBuilder;
use packages::index;
use packages::publish::{PublishError, Upload};

use crate::support::{Ctx, TestRepo, parse_index, setup_repo, snapshot};

backend_tests!([local, garage, moto] concurrent_uploads_share_rounds, a_batch_publishes_each_arch_once);
backend_tests!([local] a_batch_with_a_bad_file_writes_nothing, a_conflict_in_a_batch_fails_alone);

/// Writes a generated x86_64 package; returns its path.
fn generated(dir: &Path, name: &str, version: &str) -> PathBuf {
    let builder = ApkBuilder::new(name, version, "x86_64")
        .description("a generated package")
        .file(&format!("usr/share/{name}/{version}"), version.as_bytes());
    let path = dir.join(builder.file_name());
    std::fs::write(&path, builder.build()).expect("write package");
    path
}

async fn generation(repo: &TestRepo, arch: &str) -> u64 {
    let arch = repo
        .repo
        .arch(packages::repo::Arch::parse(arch).expect("arch"));
    index::read_manifest(&repo.stores, &arch)
        .await
        .expect("manifest")
        .0
        .generation
}

async fn listed_names(repo: &TestRepo, arch: &str) -> Vec<String> {
    let bytes = repo.index_bytes(arch).await.expect("an index");
    parse_index(&bytes).names()
}

/// 50 writers at once through one publisher (as one service instance
/// shares one across requests): no errors, all listed, far fewer rounds
/// (state generations) than writers.
async fn concurrent_uploads_share_rounds(ctx: Ctx) {
    const WRITERS: usize = 50;
    let repo = Arc::new(setup_repo(ctx.shared().await).await);
    let dir = ctx.temp_dir();
    let paths: Vec<PathBuf> = (0..WRITERS)
        .map(|i| generated(&dir, &format!("gc-{i:03}"), "1.0-r0"))
        .collect();
    // The arch exists first, as in a repo in use.
    repo.upload(&generated(&dir, "gc-first", "1.0-r0"), None)
        .await
        .expect("first upload");
    let before = generation(&repo, "x86_64").await;
    let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
    let mut tasks = tokio::task::JoinSet::new();
    for path in paths {
        let (repo, barrier) = (repo.clone(), barrier.clone());
        tasks.spawn(async move {
            barrier.wait().await;
            repo.upload(&path, None).await.map_err(|e| e.to_string())
        });
    }
    let mut errors = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done.expect("task") {
            errors.push(e);
        }
    }
    assert!(
        errors.is_empty(),
        "{} errors, e.g. {:?}",
        errors.len(),
        errors.first()
    );
    let names = listed_names(&repo, "x86_64").await;
    assert_eq!(
        names.len(),
        WRITERS + 1,
        "every upload is listed: {names:?}"
    );
    let rounds = generation(&repo, "x86_64").await - before;
    assert!(
        rounds <= (WRITERS / 3) as u64,
        "{WRITERS} concurrent uploads took {rounds} state generations"
    );
}

/// One batch of 40 packages (plus a noarch one) moves each arch's state by
/// one generation and lists them all; the noarch package reaches the arch
/// the batch brings.
async fn a_batch_publishes_each_arch_once(ctx: Ctx) {
    let repo = setup_repo(ctx.shared().await).await;
    let dir = ctx.temp_dir();
    repo.upload(&generated(&dir, "batch-first", "1.0-r0"), None)
        .await
        .expect("first upload");
    let before = generation(&repo, "x86_64").await;
    let mut uploads: Vec<Upload> = (0..40)
        .map(|i| repo.upload_of(&generated(&dir, &format!("batch-{i:03}"), "1.0-r0"), None))
        .collect();
    uploads.push(repo.upload_of(
        &crate::support::apk_fixture("gitea-noarch-1.4-r0.apk"),
        None,
    ));
    let results = repo.publisher.upload_many(&uploads).await.expect("batch");
    assert_eq!(results.len(), uploads.len());
    for (upload, result) in uploads.iter().zip(&results) {
        let published = result
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", upload.display_name));
        assert_eq!(published.len(), 1, "{}", upload.display_name);
        assert!(!published[0].unchanged);
    }
    assert_eq!(generation(&repo, "x86_64").await, before + 1, "one round");
    let names = listed_names(&repo, "x86_64").await;
    assert_eq!(names.len(), 42, "{names:?}");
    assert!(names.contains(&"gitea-noarch".to_owned()));

    // The same batch again: every file unchanged, no new generation.
    let again = repo
        .publisher
        .upload_many(&uploads)
        .await
        .expect("batch again");
    assert!(
        again
            .iter()
            .all(|r| r.as_ref().is_ok_and(|p| p[0].unchanged))
    );
    assert_eq!(generation(&repo, "x86_64").await, before + 1);
}

/// A bad file anywhere in a batch: the call fails naming it, and nothing of
/// the batch (not even the good files before it) is stored.
async fn a_batch_with_a_bad_file_writes_nothing(ctx: Ctx) {
    let repo = setup_repo(ctx.shared().await).await;
    let dir = ctx.temp_dir();
    repo.upload(&generated(&dir, "bad-first", "1.0-r0"), None)
        .await
        .expect("first upload");
    let before = snapshot(&repo.stores).await;
    let bad = dir.join("broken-1.0-r0.apk");
    std::fs::write(&bad, b"not a package").unwrap();
    let mut uploads: Vec<Upload> = (0..10)
        .map(|i| repo.upload_of(&generated(&dir, &format!("good-{i}"), "1.0-r0"), None))
        .collect();
    uploads.insert(5, repo.upload_of(&bad, None));
    let err = repo
        .publisher
        .upload_many(&uploads)
        .await
        .expect_err("a bad file stops the batch");
    assert!(matches!(err, PublishError::Package { .. }), "{err}");
    assert!(err.to_string().contains("broken-1.0-r0.apk"), "{err}");
    crate::support::assert_unchanged(&before, &snapshot(&repo.stores).await, "a refused batch");
}

/// A file whose name the repo holds with different bytes fails alone; the
/// rest of the batch is published.
async fn a_conflict_in_a_batch_fails_alone(ctx: Ctx) {
    let repo = setup_repo(ctx.shared().await).await;
    let dir = ctx.temp_dir();
    let original = generated(&dir, "clash", "1.0-r0");
    repo.upload(&original, None).await.expect("first upload");
    // Same name and version, other content.
    let other_dir = dir.join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let builder = ApkBuilder::new("clash", "1.0-r0", "x86_64").file("usr/share/clash/x", b"other");
    let other = other_dir.join(builder.file_name());
    std::fs::write(&other, builder.build()).unwrap();
    let uploads = vec![
        repo.upload_of(&generated(&dir, "fine-a", "1.0-r0"), None),
        repo.upload_of(&other, None),
        repo.upload_of(&generated(&dir, "fine-b", "1.0-r0"), None),
    ];
    let results = repo.publisher.upload_many(&uploads).await.expect("batch");
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(
        matches!(results[1], Err(PublishError::Conflict { .. })),
        "{:?}",
        results[1]
    );
    let names = listed_names(&repo, "x86_64").await;
    assert_eq!(names, ["clash", "fine-a", "fine-b"]);
}
