//! What only some backends do: stored headers and errors on S3, Garage's
//! website endpoint, local-directory locking and temporary files.

use std::sync::Arc;

use packages::storage::{
    LocalStore, Payload, PutMode, PutOptions, S3Settings, S3Store, Storage, StorageError,
};

use super::{bytes, opts, read_all};
use crate::support::{Backend, Bucket, Ctx, assert_no_temp_files, curl_get, noise, url_path};

backend_tests!([garage, moto, user_s3] content_type_and_cache_control_are_stored);
backend_tests!([garage] garage_website_serves_stored_headers, garage_wrong_secret_is_a_backend_error);
backend_tests!([local] local_creates_from_many_threads_have_one_winner, local_temp_files_are_cleaned_up);

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
    // The blocking write may still finish in the background (or start late,
    // on a loaded machine); either way no temporary file may stay once it
    // has. Done when the object is there, or nothing happened for 2 s.
    let root = s.local_root().unwrap().join(".packages-tmp");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut quiet_since = std::time::Instant::now();
    loop {
        let left = std::fs::read_dir(&root).unwrap().count();
        let written = s.head("abandoned").await.unwrap().is_some();
        if left != 0 {
            quiet_since = std::time::Instant::now();
        } else if written || quiet_since.elapsed() > std::time::Duration::from_secs(2) {
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
