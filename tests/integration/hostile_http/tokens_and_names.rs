//! Tokens that try to mint beyond themselves, and look-alike names, through
//! the whole router ([`TestApp`]); two instances over one store where the
//! token cache matters.

use std::time::Duration;

use axum::http::Method;
use packages::api::{self, ApiConfig, ApiState};
use packages::publish::Publisher;
use packages::tokens::{TokenLevel, Tokens};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::api::{Resp, TestApp};

/// A second instance over `app`'s stores, with its own token cache.
struct Instance {
    router: axum::Router,
    stores: packages::stores::Stores,
}

impl Instance {
    fn over(app: &TestApp, cache: Duration) -> Self {
        Instance {
            router: api::router(ApiState::new(
                Publisher::new(app.stores.clone()),
                ApiConfig {
                    token_cache_ttl: cache,
                    ..ApiConfig::default()
                },
            )),
            stores: app.stores.clone(),
        }
    }

    async fn send(&self, method: Method, uri: &str, token: &str, body: Option<Value>) -> Resp {
        let mut request = TestApp::request(method, uri, Some(token));
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                axum::body::Body::from(body.to_string())
            }
            None => axum::body::Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("read body");
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn snapshot(&self) -> Vec<(String, String)> {
        crate::support::snapshot(&self.stores).await
    }
}

async fn token_with(app: &TestApp, level: &str, read_only: bool, life: Option<u64>) -> String {
    Tokens::new(app.stores.clone(), Duration::ZERO)
        .create(
            &TokenLevel::parse(level).unwrap(),
            "parent",
            read_only,
            life.map(Duration::from_secs),
        )
        .await
        .expect("create token")
        .0
        .expose()
        .to_owned()
}

async fn mint(app: &TestApp, token: &str, body: Value) -> Resp {
    app.json(Method::POST, "/api/v1/tokens", Some(token), body)
        .await
}

#[tokio::test]
async fn tokens_mint_only_within_their_own_scope_rights_and_life() {
    let app = TestApp::with_config(ApiConfig {
        token_cache_ttl: Duration::from_secs(60),
        ..ApiConfig::default()
    })
    .await;
    let short_admin = token_with(&app, "admin", false, Some(5)).await;
    let short_org = token_with(&app, "acme", false, Some(3600)).await;
    let read_only_org = token_with(&app, "acme", true, None).await;
    let repo = token_with(&app, "acme/alpine/edge/main", false, None).await;
    let before = app.snapshot().await;
    for (token, body, status) in [
        // A 5 s token may not create one that never expires, nor one that outlives it.
        (&short_admin, json!({"name": "forever"}), 403),
        (
            &short_admin,
            json!({"name": "long", "expires_in": "1h"}),
            403,
        ),
        (&short_org, json!({"name": "forever", "org": "acme"}), 403),
        (
            &short_org,
            json!({"name": "longer", "org": "acme", "expires_in": "2h"}),
            403,
        ),
        // Beyond its scope.
        (
            &short_org,
            json!({"name": "admin", "expires_in": "1m"}),
            403,
        ),
        (
            &short_org,
            json!({"name": "other", "org": "other", "expires_in": "1m"}),
            403,
        ),
        // Read-write from read-only, or read-only from read-only.
        (&read_only_org, json!({"name": "rw", "org": "acme"}), 403),
        (
            &read_only_org,
            json!({"name": "ro", "org": "acme", "read_only": true}),
            403,
        ),
        // A repo token manages no tokens.
        (
            &repo,
            json!({"name": "x", "org": "acme", "distro": "alpine", "version": "edge", "repo": "main"}),
            403,
        ),
    ] {
        let message = mint(&app, token, body.clone()).await.expect_error(status);
        assert!(!message.is_empty(), "{body}");
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "refused mints changed the store"
    );
    // Within its bounds it may.
    let created = mint(
        &app,
        &short_org,
        json!({"name": "shorter", "org": "acme", "distro": "alpine", "expires_in": "30m"}),
    )
    .await;
    created.expect(201);
    let expires = created.json()["expires"].as_u64().expect("an expiry");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(expires <= now + 1800 + 5);
}

#[tokio::test]
async fn revoked_tokens_and_deleted_orgs_end_at_once_and_never_mint() {
    let cache = Duration::from_secs(60);
    let a = TestApp::with_config(ApiConfig {
        token_cache_ttl: cache,
        ..ApiConfig::default()
    })
    .await;
    let b = Instance::over(&a, cache);
    let other = token_with(&a, "other", false, None).await;
    let acme = token_with(&a, "acme", false, None).await;
    // Both instances have seen (and cached) both tokens.
    a.get("/api/v1/orgs/other", Some(&other)).await.expect(200);
    a.get("/api/v1/orgs/acme", Some(&acme)).await.expect(200);
    b.send(Method::GET, "/api/v1/orgs/other", &other, None)
        .await
        .expect(200);
    b.send(Method::GET, "/api/v1/orgs/acme", &acme, None)
        .await
        .expect(200);

    // Deleting org `other` (on a) ends its token on a at once.
    a.call(
        Method::DELETE,
        "/api/v1/orgs/other?force=true",
        Some(&a.admin),
    )
    .await
    .expect(204);
    a.get("/api/v1/orgs/other", Some(&other))
        .await
        .expect_error(401);
    // On b it may still be cached (for at most the cache time), but never mints.
    let before = b.snapshot().await;
    mint(&a, &other, json!({"name": "heir", "org": "other"}))
        .await
        .expect_error(401);
    let heir = json!({"name": "heir", "org": "other"});
    b.send(Method::POST, "/api/v1/tokens", &other, Some(heir))
        .await
        .expect_error(401);
    assert_eq!(
        b.snapshot().await,
        before,
        "a deleted org's token changed the store"
    );

    // Revoking (on a) ends the token on a at once; on b it cannot mint.
    let id = packages::tokens::HashedToken::of(&acme).hex();
    a.call(
        Method::DELETE,
        &format!("/api/v1/tokens/{id}?org=acme"),
        Some(&a.admin),
    )
    .await
    .expect(200);
    a.get("/api/v1/orgs/acme", Some(&acme))
        .await
        .expect_error(401);
    let before = b.snapshot().await;
    let heir = json!({"name": "heir", "org": "acme"});
    b.send(Method::POST, "/api/v1/tokens", &acme, Some(heir))
        .await
        .expect_error(401);
    assert_eq!(
        b.snapshot().await,
        before,
        "a revoked token changed the store"
    );
}

// ---- names -----------------------------------------------------------------------

#[tokio::test]
async fn look_alike_names_are_refused_with_the_rule() {
    let app = TestApp::new().await;
    let before = app.snapshot().await;
    for version in ["%D0%B5dge", "%EF%BD%85dge", "Edge", "ed%20ge", "-edge"] {
        let uri =
            format!("/api/v1/orgs/acme/distros/alpine/versions/{version}/repos/main/packages");
        let reply = app.post_form(&uri, Some(&app.admin), &[]).await;
        let message = reply.expect_error(400);
        assert!(message.contains("lowercase ASCII"), "{version}: {message}");
    }
    let reply = app
        .json(
            Method::POST,
            "/api/v1/orgs",
            Some(&app.admin),
            json!({"name": "Acme"}),
        )
        .await;
    let message = reply.expect_error(400);
    assert!(message.contains("lowercase ASCII"), "{message}");
    assert_eq!(app.snapshot().await, before);
}
