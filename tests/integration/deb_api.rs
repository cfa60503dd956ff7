//! Debian uploads over the HTTP API: the v1 route and the seed's route shape,
//! tokens scoped to one component, suite aliases, and errors as JSON.

use axum::http::Method;
use serde_json::json;

use packages::repo::{Distro, Org, Scope};

use crate::api::{Part, TestApp};
use crate::deb::{deb_fixture, test_pgp_key};

const V1: &str = "/api/v1/orgs/acme/distros/debian/versions/bookworm/repos";

async fn app() -> TestApp {
    let app = TestApp::new().await;
    let scope = Scope::new(
        Org::parse("acme").unwrap(),
        Some(Distro::parse("debian").unwrap()),
        None,
        None,
    )
    .unwrap();
    packages::keys::import_with(
        &app.stores,
        &scope,
        &test_pgp_key(),
        &packages::keys::ChangeOptions {
            algorithm: packages::signing::Algorithm::OpenPgp,
            ..Default::default()
        },
    )
    .await
    .expect("import the OpenPGP key");
    app
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(deb_fixture(name)).unwrap()
}

#[tokio::test]
async fn debs_upload_over_v1_and_the_seed_route_within_their_token() {
    let app = app().await;
    let main = app.token("acme/debian/bookworm/main", false).await;

    // v1: the package field, answered with the published record.
    let hello = fixture("hello_2.10-3_amd64.deb");
    let got = app
        .post_form(
            &format!("{V1}/main/packages"),
            Some(&main),
            &[Part::File("package", "hello_2.10-3_amd64.deb", &hello)],
        )
        .await;
    got.expect(201);
    let body = got.json();
    assert_eq!(body[0]["arch"], json!("amd64"), "{body}");
    assert_eq!(body[0]["record"]["name"], json!("hello"), "{body}");

    // The seed's route shape.
    let jq = fixture("jq_1.6-2.1+deb12u3_amd64.deb");
    app.post_form(
        "/api/acme/debian/bookworm/main/amd64/pkgs",
        Some(&main),
        &[Part::File("package", "jq_1.6-2.1+deb12u3_amd64.deb", &jq)],
    )
    .await
    .expect(200);

    // Both are in the suite's signed index, served from the public tree.
    let in_release = app.get("/acme/debian/dists/bookworm/InRelease", None).await;
    in_release.expect(200);
    let packages = app
        .get(
            "/acme/debian/dists/bookworm/main/binary-amd64/Packages.gz",
            None,
        )
        .await;
    let text = gunzip_text(&packages.body);
    assert!(
        text.contains("Package: hello\n") && text.contains("Package: jq\n"),
        "{text}"
    );

    // A token for `main` cannot touch `contrib`, nor move aliases.
    let other = app
        .post_form(
            &format!("{V1}/contrib/packages"),
            Some(&main),
            &[Part::File("package", "hello_2.10-3_amd64.deb", &hello)],
        )
        .await;
    other.expect_error(403);
    app.json(
        Method::PUT,
        "/api/v1/orgs/acme/distros/debian/aliases/stable",
        Some(&main),
        json!({"suite": "bookworm"}),
    )
    .await
    .expect_error(403);

    // A distro token moves aliases.
    let distro = app.token("acme/debian", false).await;
    app.json(
        Method::PUT,
        "/api/v1/orgs/acme/distros/debian/aliases/stable",
        Some(&distro),
        json!({"suite": "bookworm"}),
    )
    .await
    .expect(200);
    let aliases = app
        .get("/api/v1/orgs/acme/distros/debian/aliases", Some(&distro))
        .await;
    aliases.expect(200);
    assert_eq!(aliases.json(), json!({"stable": "bookworm"}));
    app.get("/acme/debian/dists/stable/InRelease", None)
        .await
        .expect(200);
    // Uploading to the alias is refused: publish to the suite.
    app.post_form(
        "/api/v1/orgs/acme/distros/debian/versions/stable/repos/main/packages",
        Some(&distro),
        &[Part::File("package", "hello_2.10-3_amd64.deb", &hello)],
    )
    .await
    .expect_error(404);

    // Not a .deb: 422 naming the problem, nothing stored.
    let before = app.snapshot().await;
    let got = app
        .post_form(
            &format!("{V1}/main/packages"),
            Some(&main),
            &[Part::File("package", "x.deb", b"!<arch>\nbroken")],
        )
        .await;
    let message = got.expect_error(422);
    assert!(message.contains("x.deb"), "{message}");
    assert_eq!(
        before,
        app.snapshot().await,
        "a refused upload stores nothing"
    );

    // Listing and removing through v1.
    let listed = app.get(&format!("{V1}/main/packages"), Some(&main)).await;
    listed.expect(200);
    assert_eq!(listed.json().as_array().unwrap().len(), 2);
    app.call(
        Method::DELETE,
        &format!("{V1}/main/packages/hello"),
        Some(&main),
    )
    .await
    .expect(200);
    let text = app
        .get(
            "/acme/debian/dists/bookworm/main/binary-amd64/Packages.gz",
            None,
        )
        .await;
    let text = gunzip_text(&text.body);
    assert!(!text.contains("Package: hello\n"), "{text}");
}

fn gunzip_text(bytes: &[u8]) -> String {
    use std::io::Read as _;
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("a gzip Packages file");
    text
}
