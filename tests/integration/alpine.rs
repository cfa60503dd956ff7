//! Publishing the real Alpine fixtures end to end, through the library, on every
//! backend; everything checked from the store with independent code and `openssl`.

use packages::formats::apk::builder::ApkBuilder;
use packages::publish::PublishError;
use packages::repo::Arch;
use packages::stores::Stores;

use crate::support::{
    Ctx, FIXTURES, Layout, ORG, ParsedIndex, REPO, TestRepo, VERSION, apk_checksum, apk_fixture,
    assert_no_temp_files, assert_unchanged, curl_get, expected_record, field,
    openssl_public_der_sha256, openssl_verify, parse_index, record_map, setup_repo, snapshot,
    url_path, write_file,
};

all_backends!(
    publish_fixtures_shared_store,
    publish_fixtures_separate_private_store,
    rebuild_gives_the_same_bytes,
    same_packages_in_another_order_give_the_same_index,
    reupload_is_idempotent_and_conflicts_change_nothing,
    remove_hides_at_once_keeps_the_file_and_blocks_reuse,
    noarch_goes_where_the_repo_has_arches,
    removed_package_stays_out_once_pending_changes_age,
    reindex_with_nothing_new_writes_nothing,
);

backend_tests!([garage] garage_website_serves_the_public_bucket_only);

/// Which packages each arch must index after all six fixtures are published.
fn expected_names(arch: &str) -> Vec<&'static str> {
    let mut names: Vec<&str> = FIXTURES
        .iter()
        .filter(|(_, a)| *a == arch || *a == "noarch")
        .map(|(file, _)| package_name(file))
        .collect();
    names.sort();
    names
}

fn package_name(file: &str) -> &'static str {
    match file {
        "gitea-test-1.4.1-r3.apk" => "gitea-test",
        "package-x-1.0.0-r0.apk" => "package-x",
        "package-y-1.0.0-r0.apk" => "package-y",
        "pretend-baselayout-1.0.0-r0.apk" => "pretend-baselayout",
        "alpine-baselayout-3.2.0-r23.apk" => "alpine-baselayout",
        "gitea-noarch-1.4-r0.apk" => "gitea-noarch",
        other => panic!("unknown fixture {other}"),
    }
}

/// Verifies the index's signature with `openssl` against the public key read back
/// from the store, and that one flipped byte makes `openssl` refuse it.
async fn verify_signature(t: &TestRepo, index: &ParsedIndex) {
    assert_eq!(
        index.key_name(),
        t.key_name,
        "the signature names the key that signed it"
    );
    let public_pem = t.public_key_pem().await;
    let (ok, out) = openssl_verify(&public_pem, &index.signature, &index.unsigned);
    assert!(ok, "openssl must verify the published index: {out}");

    let mut tampered = index.unsigned.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    let (ok, out) = openssl_verify(&public_pem, &index.signature, &tampered);
    assert!(!ok, "openssl must refuse a changed index: {out}");

    let mut bad_signature = index.signature.clone();
    bad_signature[0] ^= 0x80;
    let (ok, _) = openssl_verify(&public_pem, &bad_signature, &index.unsigned);
    assert!(!ok, "openssl must refuse a changed signature");
}

/// Checks every record of `arch`'s index against the fixtures' own `.PKGINFO`.
fn check_records(index: &ParsedIndex, arch: &str) {
    assert_eq!(
        index.names(),
        expected_names(arch),
        "{arch}: packages, sorted by name"
    );
    for (file, pkg_arch) in FIXTURES {
        if pkg_arch != arch && pkg_arch != "noarch" {
            continue;
        }
        let apk = std::fs::read(apk_fixture(file)).unwrap();
        let name = package_name(file);
        let record = index
            .record(name)
            .unwrap_or_else(|| panic!("{arch}: {name} missing"));
        let got = record_map(record);
        let want = expected_record(&apk, arch);
        assert_eq!(got, want, "{arch}: record of {file}");
        assert_eq!(field(record, 'S'), Some(apk.len().to_string()));
        assert_eq!(field(record, 'A').as_deref(), Some(arch), "{file}: A:");
    }
    // The values the fixtures' README (and `apk index`) give.
    if let Some(r) = index.record("gitea-test") {
        assert_eq!(
            field(r, 'C').as_deref(),
            Some("Q1/se1PjO94hYXbfpNR1/61hVORIc=")
        );
    }
    let noarch = index.record("gitea-noarch").expect("gitea-noarch indexed");
    assert_eq!(
        field(noarch, 'C').as_deref(),
        Some("Q1kbH5WoIPFccQYyATanaKXd2cJcc=")
    );
    assert!(
        !index.description.is_empty() && index.description.len() <= 160,
        "DESCRIPTION: {:?}",
        index.description
    );
}

async fn publish_and_verify(ctx: Ctx, layout: Layout) {
    let stores = ctx.stores(layout).await;
    let t = setup_repo(stores.clone()).await;

    // The key name is `<org>-<first 8 hex of SHA-256 of the DER public key>.rsa.pub`.
    let public_pem = t.public_key_pem().await;
    let fingerprint = openssl_public_der_sha256(&public_pem);
    assert_eq!(t.key_name, format!("{ORG}-{}.rsa.pub", &fingerprint[..8]));

    for (file, arch) in FIXTURES {
        let path = apk_fixture(file);
        let published = t
            .upload(&path, None)
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let apk = std::fs::read(&path).unwrap();
        let arches: Vec<&str> = published.iter().map(|p| p.arch.as_str()).collect();
        if arch == "noarch" {
            assert_eq!(arches, ["aarch64", "x86_64"], "noarch goes into every arch");
        } else {
            assert_eq!(arches, [arch]);
        }
        for p in &published {
            assert!(!p.unchanged, "{file}: first upload");
            assert_eq!(p.record.checksum, apk_checksum(&apk));
            assert_eq!(p.record.arch, p.arch);
            assert_eq!(p.record.file_size, apk.len() as u64);
        }
    }

    for arch in ["x86_64", "aarch64"] {
        let index = t.index(arch).await;
        verify_signature(&t, &index).await;
        check_records(&index, arch);
        // Every indexed package is downloadable where apk looks: REPO/<A:>/<name>-<ver>.apk.
        for record in &index.records {
            let name = field(record, 'P').unwrap();
            let version = field(record, 'V').unwrap();
            let file = format!("{name}-{version}.apk");
            let stored = t
                .public_bytes(&t.key(arch, &file))
                .await
                .unwrap_or_else(|| panic!("{arch}/{file} not in the store"));
            assert_eq!(stored, std::fs::read(apk_fixture(&file)).unwrap());
        }
    }

    // The public tree, exactly.
    let public: Vec<String> = stores
        .public()
        .list("static/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    let mut expected = vec![t.public_key_key()];
    for (file, arch) in FIXTURES {
        match arch {
            "noarch" => {
                expected.push(t.key("x86_64", file));
                expected.push(t.key("aarch64", file));
            }
            _ => expected.push(t.key(arch, file)),
        }
    }
    expected.push(t.key("x86_64", "APKINDEX.tar.gz"));
    expected.push(t.key("aarch64", "APKINDEX.tar.gz"));
    // A browse page in each folder from the org down (src/browse.rs).
    expected.push(t.key("x86_64", "index.html"));
    expected.push(t.key("aarch64", "index.html"));
    for folder in ["", "alpine/", "alpine/v3.20/", "alpine/v3.20/main/"] {
        expected.push(format!("static/{ORG}/{folder}index.html"));
    }
    expected.sort();
    assert_eq!(public, expected, "the public tree");

    // The private tree holds the org, the private key and the records.
    let private: Vec<String> = stores
        .private()
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .filter(|k| !k.starts_with("static/"))
        .collect();
    for must in [
        format!("config/_orgs/{ORG}.json"),
        format!("config/{ORG}/alpine/signing-key.pem"),
    ] {
        assert!(private.contains(&must), "{must} in {private:?}");
    }
    assert!(
        private.iter().all(|k| k.starts_with("config/")),
        "private tree: {private:?}"
    );

    if layout == Layout::Separate {
        let in_public: Vec<String> = stores
            .public()
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert!(
            in_public.iter().all(|k| k.starts_with("static/")),
            "the public store holds only static/: {in_public:?}"
        );
        assert!(
            !in_public.iter().any(|k| k.starts_with("config/")),
            "no config/ key in the public store"
        );
        assert!(
            stores.private().list("static/").await.unwrap().is_empty(),
            "no static/ key in the private store"
        );
    }
    assert_no_temp_files(stores.public());
    assert_no_temp_files(stores.private());
}

async fn publish_fixtures_shared_store(ctx: Ctx) {
    publish_and_verify(ctx, Layout::Shared).await;
}

async fn publish_fixtures_separate_private_store(ctx: Ctx) {
    publish_and_verify(ctx, Layout::Separate).await;
}

async fn rebuild_gives_the_same_bytes(ctx: Ctx) {
    let t = setup_repo(ctx.shared().await).await;
    t.publish_fixtures().await;
    for arch in ["x86_64", "aarch64"] {
        let incremental = t.index_bytes(arch).await.unwrap();
        let repo_arch = t.repo.arch(Arch::parse(arch).unwrap());

        // On an intact repo.
        let state = t.publisher.rebuild(&repo_arch).await.expect("rebuild");
        assert_eq!(state.packages, expected_names(arch).len());
        assert_eq!(t.index_bytes(arch).await.unwrap(), incremental);

        // After losing the index and every record of the arch (disaster recovery).
        let private_prefix = format!("config/{ORG}/alpine/{VERSION}/{REPO}/{arch}/");
        let records = t.stores.private().list(&private_prefix).await.unwrap();
        assert!(
            records.iter().any(|o| o.key.ends_with("/state.json")),
            "records live under {private_prefix}: {records:?}"
        );
        for o in records {
            t.stores.private().delete(&o.key).await.unwrap();
        }
        t.stores
            .public()
            .delete(&t.key(arch, "APKINDEX.tar.gz"))
            .await
            .unwrap();
        assert!(t.index_bytes(arch).await.is_none());
        let state = t.publisher.rebuild(&repo_arch).await.expect("rebuild");
        assert_eq!(state.packages, expected_names(arch).len());
        let rebuilt = t.index_bytes(arch).await.expect("rebuild writes the index");
        assert!(
            rebuilt == incremental,
            "{arch}: rebuild must give the same bytes as incremental publishing\n\
             incremental: {}\nrebuilt: {}",
            parse_index(&incremental).text,
            parse_index(&rebuilt).text
        );
        // And the repo keeps working incrementally after a rebuild.
        let listed = t
            .publisher
            .list(&t.repo, Some(&repo_arch.arch))
            .await
            .unwrap();
        assert_eq!(listed.len(), expected_names(arch).len());
    }
}

async fn same_packages_in_another_order_give_the_same_index(ctx: Ctx) {
    let first = setup_repo(ctx.shared().await).await;
    first.publish_fixtures().await;
    let second = setup_repo(ctx.shared().await).await;
    // noarch first (to an explicit arch), then the rest backwards.
    second
        .upload(&apk_fixture("gitea-noarch-1.4-r0.apk"), Some("aarch64"))
        .await
        .unwrap();
    for (file, _) in FIXTURES.iter().rev().skip(1) {
        second.upload(&apk_fixture(file), None).await.unwrap();
    }
    for arch in ["x86_64", "aarch64"] {
        let a = first.index_bytes(arch).await.unwrap();
        let b = second.index_bytes(arch).await.unwrap();
        assert!(
            a == b,
            "{arch}: same packages, same index bytes\n{}\n---\n{}",
            parse_index(&a).text,
            parse_index(&b).text
        );
    }
}

async fn reupload_is_idempotent_and_conflicts_change_nothing(ctx: Ctx) {
    let t = setup_repo(ctx.shared().await).await;
    t.publish_fixtures().await;
    let before = snapshot(&t.stores).await;
    let x86_index = t.index_bytes("x86_64").await.unwrap();

    for (file, _) in FIXTURES {
        let published = t
            .upload(&apk_fixture(file), None)
            .await
            .unwrap_or_else(|e| panic!("re-upload {file}: {e}"));
        assert!(!published.is_empty());
        assert!(
            published.iter().all(|p| p.unchanged),
            "{file}: re-upload reports unchanged: {published:?}"
        );
    }
    assert_eq!(t.index_bytes("x86_64").await.unwrap(), x86_index);
    assert_unchanged(
        &before,
        &snapshot(&t.stores).await,
        "re-uploading identical files changes no object",
    );

    // Same name and version, other bytes.
    let dir = ctx.temp_dir();
    let other = ApkBuilder::new("package-x", "1.0.0-r0", "x86_64")
        .description("not the published package-x")
        .file("usr/share/package-x/readme", b"different")
        .build();
    let path = write_file(&dir, "package-x-1.0.0-r0.apk", &other);
    match t.upload(&path, None).await {
        Err(PublishError::Conflict { file, arch }) => {
            assert_eq!(file, "package-x-1.0.0-r0.apk");
            assert!(arch.ends_with("x86_64"), "{arch}");
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    // A noarch package under the name of a published one.
    let other = ApkBuilder::new("gitea-noarch", "1.4-r0", "noarch")
        .file("usr/share/gitea-noarch", b"different")
        .build();
    let path = write_file(&dir, "gitea-noarch-1.4-r0.apk", &other);
    let err = t.upload(&path, None).await.expect_err("conflict");
    assert!(matches!(err, PublishError::Conflict { .. }), "{err}");
    assert_unchanged(
        &before,
        &snapshot(&t.stores).await,
        "a refused conflict changes no object",
    );
    assert_eq!(t.index_bytes("x86_64").await.unwrap(), x86_index);
    assert_no_temp_files(t.stores.public());
}

async fn remove_hides_at_once_keeps_the_file_and_blocks_reuse(ctx: Ctx) {
    let t = setup_repo(ctx.shared().await).await;
    t.publish_fixtures().await;
    let file = "package-y-1.0.0-r0.apk";
    let original = std::fs::read(apk_fixture(file)).unwrap();

    let removed = t
        .publisher
        .remove(&t.repo, None, "package-y")
        .await
        .expect("remove");
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].file, file);

    // Gone from the index as soon as remove returns; the rest intact and signed.
    let index = t.index("x86_64").await;
    assert!(index.record("package-y").is_none(), "{}", index.text);
    assert_eq!(
        index.names(),
        [
            "gitea-noarch",
            "gitea-test",
            "package-x",
            "pretend-baselayout"
        ]
    );
    verify_signature(&t, &index).await;
    assert!(
        t.publisher
            .list(&t.repo, None)
            .await
            .unwrap()
            .iter()
            .all(|l| l.file != file)
    );
    // Clients that fetched the old index can still download it.
    assert_eq!(
        t.public_bytes(&t.key("x86_64", file)).await,
        Some(original.clone())
    );

    // Other bytes under the removed name, within the grace period: refused.
    let before = snapshot(&t.stores).await;
    let dir = ctx.temp_dir();
    let other = ApkBuilder::new("package-y", "1.0.0-r0", "x86_64")
        .file("usr/share/y", b"other y")
        .build();
    let path = write_file(&dir, file, &other);
    match t.upload(&path, None).await {
        Err(PublishError::RecentlyRemoved { file: f, until, .. }) => {
            assert_eq!(f, file);
            assert!(until > 0);
        }
        other => panic!("expected RecentlyRemoved, got {other:?}"),
    }
    assert_unchanged(
        &before,
        &snapshot(&t.stores).await,
        "refused: nothing changed",
    );
    assert_eq!(
        t.public_bytes(&t.key("x86_64", file)).await,
        Some(original.clone())
    );

    // The identical file may come back.
    t.upload(&apk_fixture(file), None)
        .await
        .expect("re-publishing the removed bytes");
    let index = t.index("x86_64").await;
    assert!(index.record("package-y").is_some());
    check_records(&index, "x86_64");

    // Removing a noarch package takes it out of every arch.
    let removed = t
        .publisher
        .remove(&t.repo, None, "gitea-noarch-1.4-r0.apk")
        .await
        .unwrap();
    let mut arches: Vec<&str> = removed.iter().map(|l| l.arch.as_str()).collect();
    arches.sort();
    assert_eq!(arches, ["aarch64", "x86_64"]);
    for arch in ["x86_64", "aarch64"] {
        assert!(t.index(arch).await.record("gitea-noarch").is_none());
    }
    // Nothing to remove.
    let err = t
        .publisher
        .remove(&t.repo, None, "no-such-package")
        .await
        .expect_err("nothing matches");
    assert!(matches!(err, PublishError::NotFound(_)), "{err}");
    assert!(err.to_string().contains("no-such-package"), "{err}");
}

async fn noarch_goes_where_the_repo_has_arches(ctx: Ctx) {
    let t = setup_repo(ctx.shared().await).await;
    let noarch = apk_fixture("gitea-noarch-1.4-r0.apk");
    let noarch_bytes = std::fs::read(&noarch).unwrap();

    // An empty repo has no arch for it.
    let before = snapshot(&t.stores).await;
    match t.upload(&noarch, None).await {
        Err(e @ PublishError::NoArchTargets { .. }) => {
            assert!(
                e.to_string().contains(&noarch.display().to_string()),
                "the message names the file: {e}"
            );
        }
        other => panic!("expected NoArchTargets, got {other:?}"),
    }
    assert_unchanged(&before, &snapshot(&t.stores).await, "unchanged");

    // With an arch it goes there, indexed with that arch.
    let published = t.upload(&noarch, Some("x86_64")).await.unwrap();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].arch, "x86_64");
    assert_eq!(published[0].record.arch, "x86_64");
    let index = t.index("x86_64").await;
    assert_eq!(index.names(), ["gitea-noarch"]);
    assert_eq!(
        record_map(index.record("gitea-noarch").unwrap()),
        expected_record(&noarch_bytes, "x86_64")
    );
    assert!(t.index_bytes("aarch64").await.is_none());
    assert!(
        t.public_bytes(&t.key("aarch64", "gitea-noarch-1.4-r0.apk"))
            .await
            .is_none()
    );

    // An aarch64 package adds the arch, and the noarch package follows.
    t.upload(&apk_fixture("alpine-baselayout-3.2.0-r23.apk"), None)
        .await
        .unwrap();
    let index = t.index("aarch64").await;
    assert_eq!(index.names(), ["alpine-baselayout", "gitea-noarch"]);
    let record = index.record("gitea-noarch").unwrap();
    assert_eq!(field(record, 'A').as_deref(), Some("aarch64"));
    assert_eq!(
        record_map(record),
        expected_record(&noarch_bytes, "aarch64")
    );
    verify_signature(&t, &index).await;
    assert_eq!(
        t.public_bytes(&t.key("aarch64", "gitea-noarch-1.4-r0.apk"))
            .await,
        Some(noarch_bytes.clone())
    );

    // So does an arch added by configuration.
    t.publisher
        .add_arches(&t.repo, &[Arch::parse("armv7").unwrap()])
        .await
        .unwrap();
    let index = t.index("armv7").await;
    assert_eq!(index.names(), ["gitea-noarch"]);
    assert_eq!(
        field(index.record("gitea-noarch").unwrap(), 'A').as_deref(),
        Some("armv7")
    );
    let arches: Vec<String> = t
        .publisher
        .arches(&t.repo)
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(arches, ["aarch64", "armv7", "x86_64"]);

    // A noarch upload without --arch now goes into every arch.
    let published = t.upload(&noarch, None).await.unwrap();
    let mut arches: Vec<&str> = published.iter().map(|p| p.arch.as_str()).collect();
    arches.sort();
    assert_eq!(arches, ["aarch64", "armv7", "x86_64"]);
    assert!(published.iter().all(|p| p.unchanged));
}

async fn garage_website_serves_the_public_bucket_only(ctx: Ctx) {
    let web = ctx
        .s3()
        .web
        .clone()
        .expect("PACKAGES_TEST_GARAGE_WEB is set");
    let (public, place) = ctx.open(crate::support::Bucket::Main).await;
    let (private, _) = ctx.open(crate::support::Bucket::Private).await;
    let t = setup_repo(Stores::separate(public, private)).await;
    t.publish_fixtures().await;
    let url = |key: &str| format!("{web}/{}", url_path(&format!("{}/{key}", place.prefix)));

    // The index, as a client fetches it, verifies against the key it fetches.
    let index_url = url(&t.key("x86_64", "APKINDEX.tar.gz"));
    let got = curl_get(&index_url);
    assert_eq!(got.status, 200, "{index_url}");
    assert_eq!(got.header("content-type"), Some("application/gzip"));
    let cache = got.header("cache-control").unwrap_or_default().to_owned();
    assert!(
        !cache.contains("immutable") && max_age(&cache).is_some_and(|s| s <= 300),
        "index Cache-Control must be short: {cache:?}"
    );
    assert_eq!(Some(got.body.clone()), t.index_bytes("x86_64").await);
    let key = curl_get(&url(&t.public_key_key()));
    assert_eq!(key.status, 200);
    let index = parse_index(&got.body);
    assert_eq!(index.key_name(), t.key_name);
    let (ok, out) = openssl_verify(&key.body, &index.signature, &index.unsigned);
    assert!(ok, "{out}");
    check_records(&index, "x86_64");

    // A package.
    for (file, arch) in [
        ("package-x-1.0.0-r0.apk", "x86_64"),
        ("gitea-noarch-1.4-r0.apk", "aarch64"),
    ] {
        let got = curl_get(&url(&t.key(arch, file)));
        assert_eq!(got.status, 200, "{file}");
        assert_eq!(got.body, std::fs::read(apk_fixture(file)).unwrap());
        assert_eq!(got.header("content-type"), Some("application/vnd.apk"));
        let cache = got.header("cache-control").unwrap_or_default().to_owned();
        assert!(
            cache.contains("immutable") && max_age(&cache).is_some_and(|s| s >= 86400),
            "package Cache-Control must be long and immutable: {cache:?}"
        );
    }

    // The private tree is not in this bucket, so the website cannot serve it.
    for key in [
        format!("config/{ORG}/alpine/signing-key.pem"),
        format!("config/_orgs/{ORG}.json"),
        format!("config/{ORG}/alpine/{VERSION}/{REPO}/x86_64/state.json"),
    ] {
        let got = curl_get(&url(&key));
        assert_eq!(got.status, 404, "{key} must not be served");
        assert!(!String::from_utf8_lossy(&got.body).contains("PRIVATE KEY"));
    }

    // Control: with one shared store in a website bucket, the same URL hands out
    // the private key. This is why the README requires a separate private bucket.
    let (shared, shared_place) = ctx.open(crate::support::Bucket::Main).await;
    let shared = setup_repo(Stores::shared(shared)).await;
    let leaked = curl_get(&format!(
        "{web}/{}/config/{ORG}/alpine/signing-key.pem",
        shared_place.prefix
    ));
    assert_eq!(
        leaked.status, 200,
        "website buckets serve every key (if this changes, revisit the README)"
    );
    assert!(String::from_utf8_lossy(&leaked.body).contains("PRIVATE KEY"));
    drop(shared);
}

fn max_age(cache_control: &str) -> Option<u64> {
    cache_control
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
}

/// Moves every pending change of `arch` `minutes` into the past (ids carry their
/// creation time), as if that much time had passed since they were written.
async fn age_pending_changes(t: &TestRepo, arch: &str, minutes: u64) {
    let prefix = format!("config/{ORG}/alpine/{VERSION}/{REPO}/{arch}/pending/");
    let store = t.stores.private();
    for object in store.list(&prefix).await.unwrap() {
        let (bytes, _) = store.get_bytes(&object.key).await.unwrap();
        let mut change: packages::index::PendingChange = serde_json::from_slice(&bytes).unwrap();
        let (millis, rest) = change.id.split_once('-').expect("<millis>-<random> id");
        let millis: u64 = millis.parse().unwrap();
        change.id = format!("{:016}-{rest}", millis - minutes * 60_000);
        store
            .put(
                &format!("{prefix}{}.json", change.id),
                serde_json::to_vec(&change).unwrap().into(),
                &packages::storage::PutOptions::default(),
                packages::storage::PutMode::Overwrite,
            )
            .await
            .unwrap();
        store.delete(&object.key).await.unwrap();
    }
}

async fn removed_package_stays_out_once_pending_changes_age(ctx: Ctx) {
    let t = setup_repo(ctx.shared().await).await;
    t.publish_fixtures().await;
    t.publisher
        .remove(&t.repo, None, "package-y")
        .await
        .expect("remove");
    assert!(t.index("x86_64").await.record("package-y").is_none());

    // Later (beyond the pending grace period), the arch is reindexed twice, as
    // later uploads would do: the removed package must not come back.
    age_pending_changes(&t, "x86_64", 10).await;
    let arch = t.repo.arch(Arch::parse("x86_64").unwrap());
    for round in 1..=2 {
        packages::index::reindex(&t.stores, &arch)
            .await
            .unwrap_or_else(|e| panic!("reindex {round}: {e}"));
        let index = t.index("x86_64").await;
        assert!(
            index.record("package-y").is_none(),
            "reindex {round} after the grace period brought package-y back:\n{}",
            index.text
        );
    }
    let listed = t.publisher.list(&t.repo, None).await.unwrap();
    assert!(listed.iter().all(|l| l.record.name != "package-y"));
    // And a real upload after that too.
    let dir = ctx.temp_dir();
    let z = ApkBuilder::new("package-z", "1.0-r0", "x86_64")
        .file("usr/share/z", b"z")
        .build();
    t.upload(&write_file(&dir, "package-z-1.0-r0.apk", &z), None)
        .await
        .unwrap();
    let index = t.index("x86_64").await;
    assert!(index.record("package-z").is_some());
    assert!(index.record("package-y").is_none(), "{}", index.text);
}

async fn reindex_with_nothing_new_writes_nothing(ctx: Ctx) {
    let t = setup_repo(ctx.shared().await).await;
    t.publish_fixtures().await;
    let arch = t.repo.arch(Arch::parse("x86_64").unwrap());
    // Remove a package and publish the same bytes again: its pending changes
    // (add, remove, add) may still be listed, but they add up to nothing new.
    t.publisher
        .remove(&t.repo, None, "package-y")
        .await
        .unwrap();
    t.upload(&apk_fixture("package-y-1.0.0-r0.apk"), None)
        .await
        .unwrap();
    let before = snapshot(&t.stores).await;
    let index = t.index_bytes("x86_64").await;
    for round in 1..=2 {
        let done = packages::index::reindex(&t.stores, &arch)
            .await
            .unwrap_or_else(|e| panic!("reindex {round}: {e}"));
        assert!(
            !done.wrote_index,
            "reindex {round} rewrote an up-to-date index"
        );
        assert_unchanged(
            &before,
            &snapshot(&t.stores).await,
            &format!("reindex {round} with nothing new"),
        );
    }
    assert_eq!(t.index_bytes("x86_64").await, index);
}

/// Publishers delete the record chunks they supersede themselves (at once
/// with conditional writes; after the grace period without), so `gc` only
/// finds chunks a crashed writer left: it deletes those, never a live one,
/// and the index renders the same from what is left.
async fn gc_deletes_only_orphaned_chunks(ctx: Ctx) {
    let t = setup_repo(ctx.shared().await).await;
    t.publish_fixtures().await;
    let prefix = format!("config/{ORG}/alpine/{VERSION}/{REPO}/x86_64/chunks/");
    let chunks = |t: &crate::support::TestRepo| {
        let stores = t.stores.clone();
        let prefix = prefix.clone();
        async move {
            stores
                .private()
                .list(&prefix)
                .await
                .unwrap()
                .into_iter()
                .map(|o| o.key)
                .collect::<std::collections::BTreeSet<_>>()
        }
    };
    t.publisher
        .remove(&t.repo, None, "package-y")
        .await
        .expect("remove");
    let arch = t.repo.arch(Arch::parse("x86_64").unwrap());
    let live = packages::index::live_chunk_keys(&t.stores, &arch)
        .await
        .unwrap();
    let after_remove = chunks(&t).await;
    assert!(
        live.iter()
            .filter(|k| k.ends_with(".json"))
            .all(|k| after_remove.contains(k))
    );
    if t.stores.conditional_writes().await.unwrap() {
        assert!(
            after_remove.iter().all(|k| live.contains(k)),
            "superseded chunks are deleted by the publisher: {after_remove:?} vs live {live:?}"
        );
    }
    // A crashed writer's chunk, never named by a manifest.
    let orphan = format!("{prefix}07-00000000deadbeef.json");
    t.stores
        .private()
        .put(
            &orphan,
            b"{}".to_vec().into(),
            &packages::storage::PutOptions::default(),
            packages::storage::PutMode::Overwrite,
        )
        .await
        .unwrap();
    let index = t.index_bytes("x86_64").await.unwrap();

    // With the default grace nothing this fresh is deleted.
    let deleted = t.publisher.gc().await.expect("gc");
    assert!(
        deleted.iter().all(|k| !k.contains("/chunks/")),
        "{deleted:?}"
    );

    // With no grace, exactly the chunks no manifest names go.
    let publisher = t
        .publisher
        .clone()
        .with_orphan_grace(std::time::Duration::ZERO);
    let deleted = publisher.gc().await.expect("gc");
    let deleted_chunks: std::collections::BTreeSet<String> = deleted
        .into_iter()
        .filter(|k| k.contains("/chunks/"))
        .collect();
    assert!(deleted_chunks.contains(&orphan), "{deleted_chunks:?}");
    assert!(deleted_chunks.iter().all(|k| !live.contains(k)));
    let left = chunks(&t).await;
    assert!(deleted_chunks.iter().all(|k| !left.contains(k)));
    // Every chunk left is live: a repair renders the same index from them.
    packages::index::repair(&t.stores, &arch)
        .await
        .expect("repair");
    assert_eq!(t.index_bytes("x86_64").await.unwrap(), index);
    assert!(
        packages::index::check(&t.stores, &arch)
            .await
            .expect("check")
            .is_empty(),
        "index check after gc"
    );
}

/// Many single uploads with no `gc` leave the private tree of an arch at
/// most 3 times the size of its live records (issue 7): publishers delete
/// what they supersede.
async fn private_tree_stays_small_without_gc(ctx: Ctx) {
    let t = setup_repo(ctx.shared().await).await;
    let dir = ctx.temp_dir();
    for i in 0..150 {
        let name = format!("pkg{i:03}");
        let apk = ApkBuilder::new(&name, "1.0-r0", "x86_64")
            .file(&format!("usr/share/{name}"), b"x")
            .build();
        t.upload(&write_file(&dir, &format!("{name}-1.0-r0.apk"), &apk), None)
            .await
            .unwrap_or_else(|e| panic!("upload {name}: {e}"));
    }
    let arch = t.repo.arch(Arch::parse("x86_64").unwrap());
    let live = packages::index::live_chunk_keys(&t.stores, &arch)
        .await
        .unwrap();
    let prefix = format!("config/{ORG}/alpine/{VERSION}/{REPO}/x86_64/");
    let mut live_bytes = 0;
    let mut total = 0;
    for object in t.stores.private().list(&prefix).await.unwrap() {
        total += object.size;
        if live.contains(&object.key) {
            live_bytes += object.size;
        }
    }
    assert!(live_bytes > 0);
    assert!(
        total <= 3 * live_bytes,
        "private tree {total} bytes for {live_bytes} bytes of live records"
    );
}

backend_tests!([local, moto] private_tree_stays_small_without_gc);
all_backends!(gc_deletes_only_orphaned_chunks);
