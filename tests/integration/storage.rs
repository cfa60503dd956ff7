//! The storage conformance suite: written once, run on every backend
//! (`every_backend!`: the local directory, Garage, moto, the user's S3, and
//! memory in both consistency modes and behind a pass-through `FaultyStore`).
//! The conditional-write contract is in [`consistency`], what only some
//! backends do in [`specific`].

mod consistency;
mod specific;

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
use packages::storage::{Payload, PutMode, PutOptions, Storage, StorageError};
use sha2::Digest as _;
use tokio::io::AsyncReadExt as _;

use crate::support::{Ctx, assert_no_temp_files, noise};

every_backend!(
    put_get_head_list_delete,
    overwrite_changes_etag,
    list_pages_beyond_1000_keys,
    list_prefix_not_on_a_directory_boundary,
    copy_duplicates_an_object,
    unusual_keys_round_trip,
    empty_object,
    large_file_streams_both_ways,
    missing_objects,
    invalid_keys_are_refused,
    stores_with_other_prefixes_are_isolated,
);

pub(crate) fn bytes(data: &[u8]) -> Payload {
    Payload::Bytes(Bytes::copy_from_slice(data))
}

pub(crate) fn opts() -> PutOptions {
    PutOptions::default()
}

pub(crate) async fn read_all(storage: &Storage, key: &str) -> Vec<u8> {
    storage.get_bytes(key).await.expect("get").0.to_vec()
}

pub(crate) async fn keys(storage: &Storage, prefix: &str) -> Vec<String> {
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
