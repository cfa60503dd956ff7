//! The storage conformance suite: written once, run on every backend.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
use packages::storage::{
    Consistency, LocalStore, Payload, PutMode, PutOptions, S3Settings, S3Store, Storage,
    StorageError,
};
use sha2::Digest as _;
use tokio::io::AsyncReadExt as _;

use crate::support::{Backend, Bucket, Ctx, assert_no_temp_files, curl_get, noise, url_path};

every_backend!(
    put_get_head_list_delete,
    overwrite_changes_etag,
    list_pages_beyond_1000_keys,
    list_prefix_not_on_a_directory_boundary,
    conditional_write_probe_matches_backend,
    create_never_overwrites_through_the_handle,
    update_checks_the_etag,
    configured_consistency_overrides_the_backend,
    concurrent_creates_have_one_winner,
    copy_duplicates_an_object,
    unusual_keys_round_trip,
    empty_object,
    large_file_streams_both_ways,
    missing_objects,
    invalid_keys_are_refused,
    stores_with_other_prefixes_are_isolated,
);

backend_tests!([garage, moto, user_s3] content_type_and_cache_control_are_stored);
backend_tests!([garage] garage_website_serves_stored_headers, garage_wrong_secret_is_a_backend_error);
backend_tests!([local] local_creates_from_many_threads_have_one_winner, local_temp_files_are_cleaned_up);

fn bytes(data: &[u8]) -> Payload {
    Payload::Bytes(Bytes::copy_from_slice(data))
}

fn opts() -> PutOptions {
    PutOptions::default()
}

async fn read_all(storage: &Storage, key: &str) -> Vec<u8> {
    storage.get_bytes(key).await.expect("get").0.to_vec()
}

async fn keys(storage: &Storage, prefix: &str) -> Vec<String> {
    storage
        .list(prefix)
        .await
        .expect("list")
        .into_iter()
        .map(|o| o.key)
        .collect()
}

async fn put_get_head_list_delete(ctx: Ctx) {
    let s = ctx.storage().await;
    let put = s
        .put(
            "static/a/one.txt",
            bytes(b"hello"),
            &opts(),
            PutMode::Overwrite,
        )
        .await
        .expect("put");
    assert_eq!(put.key, "static/a/one.txt");
    assert_eq!(put.size, 5);
    assert!(!put.etag.is_empty(), "a put returns an ETag");

    let head = s
        .head("static/a/one.txt")
        .await
        .unwrap()
        .expect("head finds it");
    assert_eq!(head.size, 5);
    assert_eq!(head.etag, put.etag, "head and put agree on the ETag");
    assert!(head.last_modified.is_some());

    let (body, meta) = s.get_bytes("static/a/one.txt").await.expect("get");
    assert_eq!(&body[..], b"hello");
    assert_eq!(meta.etag, put.etag, "get and put agree on the ETag");
    assert_eq!(meta.size, 5);

    s.put(
        "static/a/b/two.txt",
        bytes(b"2"),
        &opts(),
        PutMode::Overwrite,
    )
    .await
    .unwrap();
    s.put("config/x.json", bytes(b"{}"), &opts(), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(
        keys(&s, "").await,
        ["config/x.json", "static/a/b/two.txt", "static/a/one.txt"]
    );
    assert_eq!(
        keys(&s, "static/").await,
        ["static/a/b/two.txt", "static/a/one.txt"]
    );
    let listed = s.list("static/a/one.txt").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, 5);
    assert_eq!(listed[0].etag, put.etag, "list and put agree on the ETag");

    s.delete("static/a/one.txt").await.expect("delete");
    assert!(s.head("static/a/one.txt").await.unwrap().is_none());
    assert!(matches!(
        s.get("static/a/one.txt").await,
        Err(StorageError::NotFound { .. })
    ));
    assert_eq!(keys(&s, "").await, ["config/x.json", "static/a/b/two.txt"]);
}

async fn overwrite_changes_etag(ctx: Ctx) {
    let s = ctx.storage().await;
    let first = s
        .put("k", bytes(b"one"), &opts(), PutMode::Overwrite)
        .await
        .unwrap();
    let second = s
        .put("k", bytes(b"two!"), &opts(), PutMode::Overwrite)
        .await
        .unwrap();
    assert_ne!(first.etag, second.etag);
    assert_eq!(read_all(&s, "k").await, b"two!");
    assert_eq!(s.head("k").await.unwrap().unwrap().etag, second.etag);
}

async fn list_pages_beyond_1000_keys(ctx: Ctx) {
    let s = Arc::new(ctx.storage().await);
    const N: usize = 1100;
    let results: Vec<_> = futures::stream::iter(0..N)
        .map(|i| {
            let s = s.clone();
            async move {
                s.put(
                    &format!("many/k{i:05}"),
                    bytes(i.to_string().as_bytes()),
                    &opts(),
                    PutMode::Overwrite,
                )
                .await
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for r in results {
        r.expect("put");
    }
    // A neighbour that must not show up.
    s.put("manyx", bytes(b"x"), &opts(), PutMode::Overwrite)
        .await
        .unwrap();
    let listed = keys(&s, "many/").await;
    let expected: Vec<String> = (0..N).map(|i| format!("many/k{i:05}")).collect();
    assert_eq!(listed.len(), N, "every page listed");
    assert_eq!(listed, expected, "sorted, no duplicates, nothing missing");
    assert_eq!(keys(&s, "").await.len(), N + 1);
}

async fn list_prefix_not_on_a_directory_boundary(ctx: Ctx) {
    let s = ctx.storage().await;
    for key in [
        "a/b/foo1",
        "a/b/foo2",
        "a/b/foo/x",
        "a/b/fob",
        "a/bar",
        "ab/c",
    ] {
        s.put(key, bytes(key.as_bytes()), &opts(), PutMode::Overwrite)
            .await
            .unwrap();
    }
    assert_eq!(
        keys(&s, "a/b/foo").await,
        ["a/b/foo/x", "a/b/foo1", "a/b/foo2"]
    );
    assert_eq!(
        keys(&s, "a/b/fo").await,
        ["a/b/fob", "a/b/foo/x", "a/b/foo1", "a/b/foo2"]
    );
    assert_eq!(
        keys(&s, "a/b").await,
        ["a/b/fob", "a/b/foo/x", "a/b/foo1", "a/b/foo2", "a/bar"]
    );
    assert_eq!(keys(&s, "a").await.len(), 6);
    assert_eq!(keys(&s, "a/").await.len(), 5);
    assert!(keys(&s, "a/c").await.is_empty());
    assert!(keys(&s, "zzz/").await.is_empty());
}

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

async fn copy_duplicates_an_object(ctx: Ctx) {
    let s = ctx.storage().await;
    let from = "static/o/alpine/v/r/x86_64/hello_2.10+dfsg-3~bpo12+1 é.apk";
    let to = "static/o/alpine/v/r/aarch64/hello_2.10+dfsg-3~bpo12+1 é.apk";
    let source = s
        .put(from, bytes(b"noarch bytes"), &opts(), PutMode::Create)
        .await
        .unwrap();
    s.copy(from, to).await.expect("copy");
    assert_eq!(read_all(&s, to).await, b"noarch bytes");
    let copied = s.head(to).await.unwrap().expect("the copy exists");
    assert_eq!(copied.size, source.size);
    assert_eq!(read_all(&s, from).await, b"noarch bytes", "source kept");
    // The copy is an object of its own: replacing or deleting the source leaves it.
    s.put(from, bytes(b"replaced"), &opts(), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(read_all(&s, to).await, b"noarch bytes");
    s.delete(from).await.unwrap();
    assert_eq!(read_all(&s, to).await, b"noarch bytes");
    // Copying over an existing object replaces it; copying onto itself is harmless.
    s.put("other", bytes(b"other"), &opts(), PutMode::Create)
        .await
        .unwrap();
    s.copy("other", to).await.expect("copy over an object");
    assert_eq!(read_all(&s, to).await, b"other");
    s.copy(to, to).await.expect("copy onto itself");
    s.copy("other", to).await.expect("copy again");
    assert_eq!(read_all(&s, to).await, b"other");
    assert_eq!(keys(&s, "").await, ["other", to]);
    // A missing source names the source.
    match s.copy("missing/source", "x/y").await {
        Err(StorageError::NotFound { key }) => assert_eq!(key, "missing/source"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(s.head("x/y").await.unwrap().is_none());
    assert!(matches!(
        s.copy("other", "../x").await,
        Err(StorageError::InvalidKey { .. })
    ));
    assert!(matches!(
        s.copy("a//b", "x").await,
        Err(StorageError::InvalidKey { .. })
    ));
    assert_no_temp_files(&s);
}

async fn unusual_keys_round_trip(ctx: Ctx) {
    let s = ctx.storage().await;
    let keys_in = [
        "static/o/alpine/v/r/x86_64/hello_2.10+dfsg-3~bpo12+1 é.apk",
        "static/o/alpine/v/r/x86_64/a+b.apk",
        "static/o/alpine/v/r/x86_64/tilde~1.apk",
        "static/o/alpine/v/r/x86_64/with space.apk",
        "static/o/alpine/v/r/x86_64/ünï cödé 日本.apk",
        "static/o/alpine/v/r/x86_64/percent%2B.apk",
        "static/o/alpine/v/r/x86_64/q=1&x;y,z@(1)!'$.apk",
    ];
    for key in keys_in {
        s.put(key, bytes(key.as_bytes()), &opts(), PutMode::Overwrite)
            .await
            .unwrap_or_else(|e| panic!("put {key:?}: {e}"));
    }
    for key in keys_in {
        assert_eq!(
            read_all(&s, key).await,
            key.as_bytes(),
            "get {key:?} returns its own bytes"
        );
        assert!(s.head(key).await.unwrap().is_some(), "head {key:?}");
    }
    let mut expected: Vec<String> = keys_in.iter().map(|k| k.to_string()).collect();
    expected.sort();
    assert_eq!(
        keys(&s, "static/").await,
        expected,
        "list returns keys as written"
    );
    // `+` is not a space: the space-named object is a different one.
    assert!(
        s.head("static/o/alpine/v/r/x86_64/a b.apk")
            .await
            .unwrap()
            .is_none()
    );
    // Listing with a prefix holding the special characters.
    assert_eq!(
        keys(&s, "static/o/alpine/v/r/x86_64/hello_2.10+dfsg").await,
        ["static/o/alpine/v/r/x86_64/hello_2.10+dfsg-3~bpo12+1 é.apk"]
    );
    for key in keys_in {
        s.delete(key).await.unwrap();
    }
    assert!(
        keys(&s, "").await.is_empty(),
        "every key deleted by its name"
    );
}

async fn empty_object(ctx: Ctx) {
    let s = ctx.storage().await;
    let meta = s
        .put("empty", bytes(b""), &opts(), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(meta.size, 0);
    let (body, meta) = s.get_bytes("empty").await.unwrap();
    assert!(body.is_empty());
    assert_eq!(meta.size, 0);
    assert_eq!(s.head("empty").await.unwrap().unwrap().size, 0);
    assert_eq!(s.list("empty").await.unwrap()[0].size, 0);
    // An empty file payload too.
    let file = tempfile::NamedTempFile::new().unwrap();
    s.put(
        "empty-file",
        Payload::File(file.path().to_owned()),
        &opts(),
        PutMode::Overwrite,
    )
    .await
    .unwrap();
    assert!(read_all(&s, "empty-file").await.is_empty());
}

async fn large_file_streams_both_ways(ctx: Ctx) {
    let s = ctx.storage().await;
    const SIZE: usize = 20 * 1024 * 1024 + 123;
    let data = noise(SIZE, 42);
    let expected = hex::encode(sha2::Sha256::digest(&data));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &data).unwrap();
    drop(data);
    let meta = s
        .put(
            "big/file.bin",
            Payload::File(file.path().to_owned()),
            &opts(),
            PutMode::Overwrite,
        )
        .await
        .expect("put a 20 MB file");
    assert_eq!(meta.size, SIZE as u64);
    let mut got = s.get("big/file.bin").await.expect("get");
    assert_eq!(got.meta.size, SIZE as u64);
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0usize;
    loop {
        let n = got.body.read(&mut buf).await.expect("read body");
        if n == 0 {
            break;
        }
        total += n;
        hasher.update(&buf[..n]);
    }
    assert_eq!(total, SIZE);
    assert_eq!(hex::encode(hasher.finalize()), expected, "same SHA-256");
    assert_no_temp_files(&s);
}

async fn missing_objects(ctx: Ctx) {
    let s = ctx.storage().await;
    s.delete("nope/missing")
        .await
        .expect("deleting a missing key succeeds");
    match s.get("nope/missing").await {
        Err(StorageError::NotFound { key }) => assert_eq!(key, "nope/missing"),
        Err(e) => panic!("expected NotFound, got {e}"),
        Ok(_) => panic!("expected NotFound, got an object"),
    }
    assert!(s.head("nope/missing").await.unwrap().is_none());
    assert!(s.get_bytes_opt("nope/missing").await.unwrap().is_none());
    // A "directory" is not an object.
    s.put("dir/file", bytes(b"x"), &opts(), PutMode::Overwrite)
        .await
        .unwrap();
    assert!(s.head("dir").await.unwrap().is_none());
    assert!(matches!(
        s.get("dir").await,
        Err(StorageError::NotFound { .. })
    ));
}

async fn invalid_keys_are_refused(ctx: Ctx) {
    let s = ctx.storage().await;
    for key in [
        "", "../x", "a/../b", "a//b", "/a", "a/", "a/./b", "a\\b", "a\u{0}b",
    ] {
        let put = s.put(key, bytes(b"x"), &opts(), PutMode::Overwrite).await;
        assert!(
            matches!(put, Err(StorageError::InvalidKey { .. })),
            "put {key:?}: {put:?}"
        );
        assert!(
            matches!(s.get(key).await, Err(StorageError::InvalidKey { .. })),
            "get {key:?}"
        );
        assert!(
            matches!(s.delete(key).await, Err(StorageError::InvalidKey { .. })),
            "delete {key:?}"
        );
    }
    assert!(keys(&s, "").await.is_empty());
}

async fn stores_with_other_prefixes_are_isolated(ctx: Ctx) {
    let a = ctx.storage().await;
    let b = ctx.storage().await;
    a.put("static/x", bytes(b"a"), &opts(), PutMode::Overwrite)
        .await
        .unwrap();
    assert!(keys(&b, "").await.is_empty(), "b sees nothing of a");
    assert!(b.head("static/x").await.unwrap().is_none());
    b.put("static/x", bytes(b"b"), &opts(), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(read_all(&a, "static/x").await, b"a");
    assert_eq!(read_all(&b, "static/x").await, b"b");
}

const APK_TYPE: &str = "application/vnd.apk";
const APK_CACHE: &str = "public, max-age=31536000, immutable";

async fn content_type_and_cache_control_are_stored(ctx: Ctx) {
    let (s, place) = ctx.open(Bucket::Main).await;
    let key = "static/o/alpine/v/r/x86_64/hello_2.10+dfsg-3~bpo12+1 é.apk";
    let options = PutOptions {
        content_type: Some(APK_TYPE.into()),
        cache_control: Some(APK_CACHE.into()),
    };
    s.put(key, bytes(b"apk bytes"), &options, PutMode::Overwrite)
        .await
        .unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), b"index").unwrap();
    s.put(
        "static/idx",
        Payload::File(file.path().to_owned()),
        &PutOptions {
            content_type: Some("application/gzip".into()),
            cache_control: Some("public, max-age=60".into()),
        },
        PutMode::Create,
    )
    .await
    .unwrap();

    // Read back behind the crate's back, with the SDK.
    let client = ctx.s3().client().await;
    let bucket = place.bucket.as_deref().unwrap();
    let head = client
        .head_object()
        .bucket(bucket)
        .key(format!("{}/{key}", place.prefix))
        .send()
        .await
        .expect("head_object");
    assert_eq!(head.content_type(), Some(APK_TYPE));
    assert_eq!(head.cache_control(), Some(APK_CACHE));
    let head = client
        .head_object()
        .bucket(bucket)
        .key(format!("{}/static/idx", place.prefix))
        .send()
        .await
        .expect("head_object");
    assert_eq!(head.content_type(), Some("application/gzip"));
    assert_eq!(head.cache_control(), Some("public, max-age=60"));

    // A server-side copy keeps the source's headers.
    s.copy(key, "static/copy.apk").await.expect("copy");
    let head = client
        .head_object()
        .bucket(bucket)
        .key(format!("{}/static/copy.apk", place.prefix))
        .send()
        .await
        .expect("head_object of the copy");
    assert_eq!(head.content_type(), Some(APK_TYPE));
    assert_eq!(head.cache_control(), Some(APK_CACHE));
}

async fn garage_website_serves_stored_headers(ctx: Ctx) {
    let Some(web) = ctx.s3().web.clone() else {
        panic!("PACKAGES_TEST_GARAGE_WEB is not set");
    };
    let (s, place) = ctx.open(Bucket::Main).await;
    let key = "static/o/alpine/v/r/x86_64/hello_2.10+dfsg-3~bpo12+1 é.apk";
    s.put(
        key,
        bytes(b"apk bytes"),
        &PutOptions {
            content_type: Some(APK_TYPE.into()),
            cache_control: Some(APK_CACHE.into()),
        },
        PutMode::Overwrite,
    )
    .await
    .unwrap();
    let url = format!("{web}/{}", url_path(&format!("{}/{key}", place.prefix)));
    let got = curl_get(&url);
    assert_eq!(
        got.status,
        200,
        "{url}: {}",
        String::from_utf8_lossy(&got.body)
    );
    assert_eq!(got.body, b"apk bytes");
    assert_eq!(got.header("content-type"), Some(APK_TYPE));
    assert_eq!(got.header("cache-control"), Some(APK_CACHE));
    let missing = curl_get(&format!("{web}/{}/static/missing", place.prefix));
    assert_eq!(missing.status, 404);
}

async fn garage_wrong_secret_is_a_backend_error(ctx: Ctx) {
    let env = ctx.s3().clone();
    let (access, _) = env.credentials.clone().unwrap();
    let settings = S3Settings {
        credentials: Some((access, "0".repeat(64))),
        ..env.settings()
    };
    let store = S3Store::connect(&env.bucket, &ctx.base, &settings)
        .await
        .unwrap();
    let s = Storage::s3(store);
    let check = |op: &str, result: Result<(), StorageError>| match result {
        Err(StorageError::Backend { message, .. }) => {
            assert!(
                message.contains("403")
                    || message.contains("Signature")
                    || message.contains("Access"),
                "{op}: message should say what the server refused: {message}"
            );
        }
        other => panic!("{op} with a wrong secret: expected a Backend error, got {other:?}"),
    };
    check(
        "put",
        s.put("static/x", bytes(b"x"), &opts(), PutMode::Overwrite)
            .await
            .map(|_| ()),
    );
    check("get", s.get("static/x").await.map(|_| ()));
    check("head", s.head("static/x").await.map(|_| ()));
    check("list", s.list("").await.map(|_| ()));
    check("delete", s.delete("static/x").await);
    // The probe must not mistake a refusal for "no conditional writes".
    check("probe", s.conditional_writes().await.map(|_| ()));

    // An endpoint nobody listens on: a Backend error too, naming the operation.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let settings = S3Settings {
        endpoint: Some(format!("http://127.0.0.1:{closed}")),
        ..env.settings()
    };
    let s = Storage::s3(S3Store::connect(&env.bucket, "x", &settings).await.unwrap());
    match s.head("static/x").await {
        Err(StorageError::Backend { op, .. }) => assert_eq!(op, "head"),
        other => panic!("unreachable endpoint: expected a Backend error, got {other:?}"),
    }
}

async fn local_creates_from_many_threads_have_one_winner(ctx: Ctx) {
    assert_eq!(ctx.backend, Backend::Local);
    let dir = ctx.temp_dir().join("store");
    LocalStore::open(&dir).unwrap();
    const N: usize = 16;
    let barrier = Arc::new(std::sync::Barrier::new(N));
    let threads: Vec<_> = (0..N)
        .map(|i| {
            let (dir, barrier) = (dir.clone(), barrier.clone());
            std::thread::spawn(move || {
                // Each thread opens the directory itself, as another process would.
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let s = Storage::local(LocalStore::open(&dir).unwrap());
                    let payload = bytes(format!("thread {i}").repeat(1000).as_bytes());
                    barrier.wait();
                    s.put("race/one", payload, &opts(), PutMode::Create)
                        .await
                        .map(|_| i)
                })
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in threads {
        match t.join().unwrap() {
            Ok(i) => winners.push(i),
            Err(StorageError::AlreadyExists { .. }) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "one winner: {winners:?}");
    let s = Storage::local(LocalStore::open(&dir).unwrap());
    assert_eq!(
        read_all(&s, "race/one").await,
        format!("thread {}", winners[0]).repeat(1000).as_bytes()
    );
    assert_no_temp_files(&s);
}

async fn local_temp_files_are_cleaned_up(ctx: Ctx) {
    let s = ctx.storage().await;
    s.put("k", bytes(b"1"), &opts(), PutMode::Create)
        .await
        .unwrap();
    // Refused writes.
    assert!(
        s.put("k", bytes(b"2"), &opts(), PutMode::Create)
            .await
            .is_err()
    );
    assert!(
        s.put(
            "k",
            bytes(b"2"),
            &opts(),
            PutMode::Update("\"stale\"".into())
        )
        .await
        .is_err()
    );
    assert_no_temp_files(&s);
    // A payload file that cannot be read.
    let missing = ctx.temp_dir().join("does-not-exist");
    assert!(matches!(
        s.put("k2", Payload::File(missing), &opts(), PutMode::Overwrite)
            .await,
        Err(StorageError::Backend { .. })
    ));
    assert!(s.head("k2").await.unwrap().is_none());
    assert_no_temp_files(&s);
    // An abandoned put (the caller's future dropped mid-write).
    let big = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(big.path(), noise(32 << 20, 7)).unwrap();
    let options = opts();
    let put = s.put(
        "abandoned",
        Payload::File(big.path().to_owned()),
        &options,
        PutMode::Overwrite,
    );
    let _ = tokio::time::timeout(std::time::Duration::from_millis(1), put).await;
    // The blocking write may still finish in the background; either way no
    // temporary file may stay once it has.
    let root = s.local_root().unwrap().join(".packages-tmp");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left = std::fs::read_dir(&root).unwrap().count();
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{left} temporary file(s) stayed after an abandoned put"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A key whose parent is a file: the write fails, and cleans up.
    let bad = s
        .put("k/child", bytes(b"x"), &opts(), PutMode::Overwrite)
        .await;
    assert!(
        bad.is_err(),
        "a key under an object cannot be written locally"
    );
    assert_no_temp_files(&s);
}
