//! Signing keys: key sets per scope, a store from before key sets, atomic and
//! bounded key changes, and who may change keys.

use std::time::Duration;

use axum::http::Method;
use packages::keys::{self, ChangeOptions, KeyError, KeyPolicy};
use packages::repo::{Distro, Org, RepoId, Scope, Segment};
use packages::signing::{Algorithm, PgpKey, RsaKey, Signer};
use packages::stores::Stores;
use serde_json::json;

use crate::api::TestApp;
use crate::support::{
    Ctx, ORG, REPO, TestRepo, VERSION, apk_fixture, assert_unchanged, openssl_verify, snapshot,
    test_key_pem,
};

fn distro_scope() -> Scope {
    Scope::new(Org::parse(ORG).unwrap(), Some(Distro::ALPINE), None, None).unwrap()
}

fn version_scope() -> Scope {
    Scope::new(
        Org::parse(ORG).unwrap(),
        Some(Distro::ALPINE),
        Some(Segment::parse("version", VERSION).unwrap()),
        None,
    )
    .unwrap()
}

fn repo_id() -> RepoId {
    RepoId::parse(ORG, "alpine", VERSION, REPO).unwrap()
}

/// The public key files (`*.rsa.pub`) published anywhere under the org.
async fn public_keys(stores: &Stores) -> Vec<String> {
    let mut names: Vec<String> = stores
        .public()
        .list(&format!("static/{ORG}/"))
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.ends_with(".rsa.pub"))
        .collect();
    names.sort();
    names
}

/// The index of x86_64 verifies with `openssl` against the published key it names.
async fn assert_index_signed_by(t: &TestRepo, key_name: &str) {
    let index = t.index("x86_64").await;
    assert_eq!(index.key_name(), key_name);
    let public = t
        .stores
        .public()
        .get_bytes(&format!("static/{ORG}/alpine/{key_name}"))
        .await
        .expect("the signing key is published")
        .0;
    let (ok, out) = openssl_verify(&public, &index.signature, &index.unsigned);
    assert!(ok, "openssl: {out}");
}

/// A store written before key sets: the distro's private key as one bare PEM
/// beside its published public key. It keeps signing, reads as a one-key set,
/// and a rotation keeps the old key published as retiring.
async fn store_from_before_key_sets(ctx: Ctx) {
    let stores = ctx.shared().await;
    let old = RsaKey::from_private_pem(ORG, &test_key_pem()).unwrap();
    // Exactly the objects the code before key sets wrote.
    stores
        .private()
        .put(
            "config/acme/alpine/signing-key.pem",
            old.private_pem().into_bytes().into(),
            &Default::default(),
            packages::storage::PutMode::Create,
        )
        .await
        .unwrap();
    stores
        .public()
        .put(
            &format!("static/acme/alpine/{}", old.key_name()),
            old.public_pem().into_bytes().into(),
            &Default::default(),
            packages::storage::PutMode::Create,
        )
        .await
        .unwrap();
    let publisher = packages::publish::Publisher::new(stores.clone());
    publisher
        .create_org(&Org::parse(ORG).unwrap())
        .await
        .unwrap();
    let t = TestRepo {
        publisher,
        stores: stores.clone(),
        repo: repo_id(),
        key_name: old.key_name().to_owned(),
    };

    let set = keys::load_key_set(&stores, &repo_id()).await.unwrap();
    assert!(set.is_legacy());
    assert_eq!(set.keys().len(), 1);
    assert_eq!(set.active().key_id(), old.key_name());
    t.upload(&apk_fixture("package-x-1.0.0-r0.apk"), None)
        .await
        .unwrap();
    assert_index_signed_by(&t, old.key_name()).await;

    // Without `replace`, a new key is refused and nothing changes.
    let before = snapshot(&stores).await;
    let err = keys::generate(&stores, &distro_scope(), 2048)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::Exists { .. }), "{err}");
    assert!(err.to_string().contains("replace"), "{err}");
    assert_unchanged(&before, &snapshot(&stores).await, "a refused generate");

    // Rotation: the new key signs, the old one stays published as retiring.
    let replace = ChangeOptions {
        replace: true,
        ..ChangeOptions::default()
    };
    let new = keys::generate_with(&stores, &distro_scope(), 2048, &replace)
        .await
        .unwrap();
    assert_eq!(new.retiring, vec![old.key_name().to_owned()]);
    let mut expected = vec![
        format!("static/acme/alpine/{}", old.key_name()),
        format!("static/acme/alpine/{}", new.key_name),
    ];
    expected.sort();
    assert_eq!(public_keys(&stores).await, expected);
    let set = keys::key_set_for(&stores, &repo_id()).await.unwrap();
    assert!(!set.is_legacy() && !set.is_pending());
    assert_eq!(set.active().key_id(), new.key_name);
    assert_eq!(
        set.retiring().map(|k| k.key_id()).collect::<Vec<_>>(),
        vec![old.key_name()]
    );
    t.upload(&apk_fixture("package-y-1.0.0-r0.apk"), None)
        .await
        .unwrap();
    assert_index_signed_by(&t, &new.key_name).await;
}

/// Racing generate requests for one scope leave one key set, and exactly one
/// published public key, the one that signs.
async fn concurrent_generates_leave_one_key(ctx: Ctx) {
    let stores = ctx.shared().await;
    let scope = distro_scope();
    let results =
        futures::future::join_all((0..6).map(|_| keys::generate(&stores, &scope, 2048))).await;
    assert_one_winner(&stores, results).await;
}

/// Racing imports of six different keys (no generation time between the
/// read and the write: the write itself races) leave one key, published.
async fn concurrent_imports_leave_one_key(ctx: Ctx) {
    let stores = ctx.shared().await;
    let small = ChangeOptions {
        replace: false,
        policy: KeyPolicy {
            min_rsa_bits: 1024,
            max_rsa_bits: 4096,
        },
        ..ChangeOptions::default()
    };
    let scope = distro_scope();
    let pems: Vec<String> = (0..6)
        .map(|_| RsaKey::generate(ORG, 1024).unwrap().private_pem())
        .collect();
    let results = futures::future::join_all(
        pems.iter()
            .map(|pem| keys::import_with(&stores, &scope, pem, &small)),
    )
    .await;
    assert_one_winner(&stores, results).await;
}

async fn assert_one_winner(stores: &Stores, results: Vec<Result<keys::GeneratedKey, KeyError>>) {
    let mut winners = Vec::new();
    for result in results {
        match result {
            Ok(key) => winners.push(key),
            Err(e @ (KeyError::Conflict { .. } | KeyError::Exists { .. })) => {
                assert!(!e.to_string().is_empty());
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let winner = &winners[0];
    assert_eq!(
        public_keys(stores).await,
        vec![format!("static/{}", winner.public_path)],
        "exactly the winner's public key is published"
    );
    keys::forget_cached(stores);
    let set = keys::key_set_for(stores, &repo_id()).await.unwrap();
    assert_eq!(set.active().key_id(), winner.key_name);
    assert_eq!(set.keys().len(), 1);
    assert!(!set.is_pending());
    let published = stores
        .public()
        .get_bytes(&format!("static/{}", winner.public_path))
        .await
        .unwrap()
        .0;
    assert_eq!(published, set.active().public_key().contents);
}

/// Key sizes outside 2048..=4096 bits are refused before any work or write.
async fn key_sizes_are_bounded(ctx: Ctx) {
    let stores = ctx.shared().await;
    let before = snapshot(&stores).await;
    for bits in [512, 1024, 2047, 4097, 8192, 100_000] {
        let err = keys::generate(&stores, &distro_scope(), bits)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                KeyError::Bits {
                    min: 2048,
                    max: 4096,
                    ..
                }
            ),
            "{bits}: {err}"
        );
        assert!(err.to_string().contains("2048 to 4096"), "{err}");
    }
    let small = RsaKey::generate(ORG, 1024).unwrap().private_pem();
    let err = keys::import(&stores, &distro_scope(), &small)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::Bits { bits: 1024, .. }), "{err}");
    assert_unchanged(&before, &snapshot(&stores).await, "refused key sizes");

    // A configured policy moves the bounds.
    let policy = ChangeOptions {
        replace: false,
        policy: KeyPolicy {
            min_rsa_bits: 3072,
            max_rsa_bits: 3072,
        },
        ..ChangeOptions::default()
    };
    let err = keys::generate_with(&stores, &distro_scope(), 2048, &policy)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("3072 to 3072"), "{err}");
}

/// A key for a narrower scope takes its repositories from the wider key:
/// refused without `replace`, which says so.
async fn a_narrower_key_needs_replace(ctx: Ctx) {
    let stores = ctx.shared().await;
    let distro = keys::import(&stores, &distro_scope(), &test_key_pem())
        .await
        .unwrap();
    // Importing the active key again is a no-op.
    let again = keys::import(&stores, &distro_scope(), &test_key_pem())
        .await
        .unwrap();
    assert_eq!(again.key_name, distro.key_name);

    let before = snapshot(&stores).await;
    let err = keys::generate(&stores, &version_scope(), 2048)
        .await
        .unwrap_err();
    match &err {
        KeyError::WouldChangeSigner {
            signer_scope,
            active,
            ..
        } => {
            assert_eq!(signer_scope, &distro_scope().to_string());
            assert_eq!(active, &distro.key_name);
        }
        other => panic!("{other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("replace") && message.contains(&distro.key_name),
        "{message}"
    );
    assert_unchanged(&before, &snapshot(&stores).await, "a refused narrower key");

    let replace = ChangeOptions {
        replace: true,
        ..ChangeOptions::default()
    };
    let version = keys::generate_with(&stores, &version_scope(), 2048, &replace)
        .await
        .unwrap();
    assert!(version.retiring.is_empty());
    assert_eq!(
        keys::key_set_for(&stores, &repo_id())
            .await
            .unwrap()
            .active()
            .key_id(),
        version.key_name,
        "this process's own change is seen at once, cache or not"
    );
    assert_eq!(
        keys::signing_key_for(&stores, &repo_id())
            .await
            .unwrap()
            .key_name(),
        version.key_name
    );
    // The version's key does not touch the distro's.
    assert_eq!(public_keys(&stores).await.len(), 2);
}

/// A generation whose caller goes away stops, and frees its slot.
async fn a_dropped_generation_stops(ctx: Ctx) {
    let stores = ctx.shared().await;
    let before = snapshot(&stores).await;
    let started = std::time::Instant::now();
    let gave_up = tokio::time::timeout(
        Duration::from_millis(150),
        keys::generate(&stores, &distro_scope(), 4096),
    )
    .await;
    assert!(gave_up.is_err(), "a 4096-bit key in 150 ms is unexpected");
    // The blocking task notices on its next random draw.
    while keys::generations_running() > 0 {
        assert!(
            // Generous: other tests' generations share the one slot.
            started.elapsed() < Duration::from_secs(30),
            "generation still running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_unchanged(&before, &snapshot(&stores).await, "a cancelled generate");
}

/// A set whose writer stopped before publishing its public key gets the key
/// published by the first reader, before anything is signed with it.
async fn a_set_left_pending_is_published_before_use(ctx: Ctx) {
    let stores = ctx.shared().await;
    let key = packages::signing::PrivateKey::load(
        packages::signing::Algorithm::RsaSha256,
        ORG,
        &test_key_pem(),
    )
    .unwrap();
    let set = keys::KeySet::new(distro_scope(), key.clone(), 1);
    let text = String::from_utf8(set.to_bytes().to_vec()).unwrap();
    let pending = text.replace(
        "\"pending_publication\": false",
        "\"pending_publication\": true",
    );
    assert_ne!(pending, text);
    stores
        .private()
        .put(
            "config/acme/alpine/signing-key.pem",
            pending.into_bytes().into(),
            &Default::default(),
            packages::storage::PutMode::Create,
        )
        .await
        .unwrap();
    assert!(public_keys(&stores).await.is_empty());
    let read = keys::load_key_set(&stores, &repo_id()).await.unwrap();
    assert!(read.is_pending());
    assert_eq!(
        public_keys(&stores).await,
        vec![format!("static/acme/alpine/{}", key.key_id())]
    );
}

/// A resolved set is kept per process: the second lookup makes no request
/// and a change by another process (here: a direct write) shows only once the
/// entry is forgotten (or expires); an uncached read sees it at once.
async fn resolution_is_cached_per_process(ctx: Ctx) {
    let stores = ctx.shared().await;
    keys::import(&stores, &distro_scope(), &test_key_pem())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let first = keys::key_set_for(&stores, &repo_id()).await.unwrap();
    let cold = started.elapsed();
    let started = std::time::Instant::now();
    let second = keys::key_set_for(&stores, &repo_id()).await.unwrap();
    let cached = started.elapsed();
    assert!(std::sync::Arc::ptr_eq(&first, &second));

    stores
        .private()
        .delete("config/acme/alpine/signing-key.pem")
        .await
        .unwrap();
    let stale = keys::key_set_for(&stores, &repo_id()).await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&stale, &first));
    assert!(matches!(
        keys::load_key_set(&stores, &repo_id()).await,
        Err(KeyError::Missing { .. })
    ));
    keys::forget_cached(&stores);
    assert!(matches!(
        keys::key_set_for(&stores, &repo_id()).await,
        Err(KeyError::Missing { .. })
    ));
    eprintln!(
        "key set lookup on {:?}: {cold:?} from the store (3 GETs at once), {cached:?} cached",
        ctx.backend
    );
}

all_backends!(
    resolution_is_cached_per_process,
    a_set_left_pending_is_published_before_use,
    store_from_before_key_sets,
    key_sizes_are_bounded,
    a_narrower_key_needs_replace
);
backend_tests!([local, garage, moto] concurrent_generates_leave_one_key, concurrent_imports_leave_one_key);
backend_tests!([local] a_dropped_generation_stops, openpgp_keys_are_stored_and_published);

/// OpenPGP keys go through the same key changes: imported (armored secret
/// key) or generated (here Ed25519, bits 0), each published as `.asc` and
/// `.gpg`; a new one retires the old one, which stays published.
async fn openpgp_keys_are_stored_and_published(ctx: Ctx) {
    let stores = ctx.shared().await;
    let pgp = ChangeOptions {
        algorithm: Algorithm::OpenPgp,
        ..ChangeOptions::default()
    };
    let fixture = include_str!("../fixtures/keys/test-signing.pgp.asc");
    let imported = keys::import_with(&stores, &distro_scope(), fixture, &pgp)
        .await
        .unwrap();
    let key = PgpKey::from_armored(ORG, fixture).unwrap();
    let stem = format!("{ORG}-{}", key.long_key_id());
    assert_eq!(imported.key_name, format!("{stem}.asc"));
    assert_eq!(imported.public_pem, key.public_armored());
    let published = |name: String| {
        let stores = stores.clone();
        async move {
            stores
                .public()
                .get_bytes(&format!("static/{ORG}/alpine/{name}"))
                .await
                .unwrap()
                .0
        }
    };
    assert_eq!(
        published(format!("{stem}.asc")).await,
        key.public_armored().as_bytes()
    );
    assert_eq!(published(format!("{stem}.gpg")).await, key.public_binary());

    let replace = ChangeOptions {
        replace: true,
        ..pgp
    };
    let generated = keys::generate_with(&stores, &distro_scope(), 0, &replace)
        .await
        .unwrap();
    assert_eq!(generated.retiring, vec![key.fingerprint().to_owned()]);
    let set = keys::read_set(&stores, &distro_scope())
        .await
        .unwrap()
        .unwrap()
        .0;
    let pgp_keys = set.pgp_keys();
    assert_eq!(pgp_keys.len(), 2);
    assert_eq!(
        format!("{}.asc", pgp_keys[0].file_stem()),
        generated.key_name
    );
    for k in pgp_keys {
        assert_eq!(
            published(format!("{}.gpg", k.file_stem())).await,
            k.public_binary()
        );
    }

    let err = keys::import_with(
        &stores,
        &distro_scope(),
        include_str!("../fixtures/keys/gpg-ed25519-protected.pgp.asc"),
        &replace,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("passphrase"), "{err}");
}

/// Only org tokens (and admin) may change keys; repo and distro tokens may not.
#[tokio::test]
async fn changing_keys_needs_org_authority() {
    let app = TestApp::new().await;
    let mut narrow = Vec::new();
    for level in ["acme/alpine/edge/main", "acme/alpine", "acme/alpine/edge"] {
        narrow.push(app.token(level, false).await);
    }
    let org = app.token("acme", false).await;
    let before = app.snapshot().await;
    for token in &narrow {
        let message = app
            .json(
                Method::POST,
                "/api/v1/orgs/acme/keys",
                Some(token),
                json!({"version": "edge", "repo": "main", "bits": 2048}),
            )
            .await
            .expect_error(403);
        assert!(message.contains("signing keys"), "{message}");
    }
    assert_unchanged(&before, &app.snapshot().await, "refused key changes");

    // An org token passes the check; the distro key still signs the repo, so
    // the change needs `replace` and is refused with 409 that says so.
    let message = app
        .json(
            Method::POST,
            "/api/v1/orgs/acme/keys",
            Some(&org),
            json!({"version": "edge", "repo": "main", "bits": 2048}),
        )
        .await
        .expect_error(409);
    assert!(message.contains("replace"), "{message}");
    assert_unchanged(
        &before,
        &app.snapshot().await,
        "a key change without replace",
    );
}
