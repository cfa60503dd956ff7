//! Browse pages (`index.html`, `src/browse.rs`): fetched like a browser
//! would, through `packages serve` (folder URLs) and Garage's website
//! endpoint; every package link resolves to the file, user data is escaped,
//! pages follow the index through removals, and concurrent publishers never
//! lose an entry from a page.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use packages::formats::apk::builder::ApkBuilder;
use packages::publish::Publisher;
use packages::repo::{Arch, RepoId};
use packages::stores::Stores;
use tower::ServiceExt as _;

use crate::support::{
    Ctx, ORG, REPO, TestRepo, VERSION, curl_get, openssl_public_der_sha256, setup_repo, write_file,
};

backend_tests!(
    [local, memory, memory_lww, garage, moto]
    alpine_pages_through_packages_serve,
    concurrent_publishers_lose_no_entry,
);
backend_tests!([local] debian_and_rpm_pages);
backend_tests!([garage] pages_on_the_garage_website);

const EVIL: &str = "<script>alert('pwned')</script> & \"quotes\"";

/// `GET path` through the public-tree router (what `packages serve` answers).
async fn get(stores: &Stores, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let request = Request::builder().uri(path).body(Body::empty()).unwrap();
    let response = packages::serve::router(stores.clone())
        .oneshot(request)
        .await
        .expect("infallible router");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .expect("body");
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// A page at a folder URL: 200, HTML, cached like an index.
async fn page(stores: &Stores, folder: &str) -> String {
    let (status, headers, body) = get(stores, folder).await;
    assert_eq!(status, StatusCode::OK, "{folder}: {body}");
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "text/html; charset=utf-8",
        "{folder}"
    );
    assert_eq!(
        headers[header::CACHE_CONTROL],
        "public, max-age=60, must-revalidate",
        "{folder}"
    );
    assert!(body.starts_with("<!DOCTYPE html>"), "{folder}");
    body
}

/// Every `href="…"` of a page.
fn links(page: &str) -> Vec<String> {
    page.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|l| l.replace("&amp;", "&"))
        .collect()
}

/// Resolves a relative link against a folder URL path (`/a/b/`).
fn resolve(folder: &str, link: &str) -> String {
    let mut parts: Vec<&str> = folder.trim_matches('/').split('/').collect();
    for segment in link.split('/') {
        match segment {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let trailing = if link.ends_with('/') { "/" } else { "" };
    format!("/{}{trailing}", parts.join("/"))
}

/// Follows every link of the page at `folder`: each answers 200.
async fn links_resolve(stores: &Stores, folder: &str, page: &str) {
    for link in links(page) {
        let url = resolve(folder, &link);
        let (status, _, _) = get(stores, &url).await;
        assert_eq!(status, StatusCode::OK, "{folder}: link {link} -> {url}");
    }
}

async fn upload_built(t: &TestRepo, builder: ApkBuilder) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), &builder.file_name(), &builder.build());
    t.upload(&path, None).await.expect("upload");
}

async fn alpine_pages_through_packages_serve(ctx: Ctx) {
    let stores = ctx.separate().await;
    let t = setup_repo(stores.clone()).await;
    t.publish_fixtures().await;
    upload_built(
        &t,
        ApkBuilder::new("evil", "1.0-r0", "x86_64")
            .description(EVIL)
            .file("usr/share/evil", b"e"),
    )
    .await;

    let org = page(&stores, &format!("/{ORG}/")).await;
    assert!(org.contains("href=\"./alpine/\""), "{org}");
    let distro = page(&stores, &format!("/{ORG}/alpine/")).await;
    assert!(
        distro.contains(&format!("href=\"./{VERSION}/\"")),
        "{distro}"
    );
    let version = page(&stores, &format!("/{ORG}/alpine/{VERSION}/")).await;
    assert!(
        version.contains(&format!("href=\"./{REPO}/\"")),
        "{version}"
    );

    // The repo page: arches, install snippet, key with its fingerprint.
    let repo_url = format!("/{ORG}/alpine/{VERSION}/{REPO}/");
    let repo = page(&stores, &repo_url).await;
    for arch in ["x86_64", "aarch64"] {
        assert!(repo.contains(&format!("href=\"./{arch}/\"")), "{repo}");
    }
    let key_pem = stores
        .public()
        .get_bytes(&t.public_key_key())
        .await
        .unwrap()
        .0;
    assert!(
        repo.contains(&openssl_public_der_sha256(&key_pem)),
        "{repo}"
    );
    assert!(
        repo.contains(&format!("/etc/apk/keys/{}", t.key_name)),
        "{repo}"
    );
    assert!(
        repo.contains(&format!(
            "echo &quot;$BASE/{ORG}/alpine/{VERSION}/{REPO}&quot; &gt;&gt; /etc/apk/repositories"
        )),
        "{repo}"
    );
    links_resolve(&stores, &repo_url, &repo).await;

    // The arch page lists exactly what the index lists, escaped, with links that resolve.
    let arch_url = format!("/{ORG}/alpine/{VERSION}/{REPO}/x86_64/");
    let arch = page(&stores, &arch_url).await;
    assert!(
        !arch.contains("<script>"),
        "user data reaches the page unescaped"
    );
    assert!(
        arch.contains(
            "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;"
        ),
        "{arch}"
    );
    let index = t.index("x86_64").await;
    let files: BTreeSet<String> = links(&arch)
        .into_iter()
        .filter(|l| l.ends_with(".apk"))
        .map(|l| l.trim_start_matches("./").to_owned())
        .collect();
    let indexed: BTreeSet<String> = index
        .records
        .iter()
        .map(|r| {
            let field = |f| crate::support::field(r, f).unwrap();
            format!("{}-{}.apk", field('P'), field('V'))
        })
        .collect();
    assert_eq!(files, indexed, "the page lists what the index lists");
    links_resolve(&stores, &arch_url, &arch).await;
    for (status_path, want) in [
        // A folder without its `/` goes to the folder URL.
        (format!("/{ORG}/alpine"), StatusCode::MOVED_PERMANENTLY),
        ("/config/".to_owned(), StatusCode::NOT_FOUND),
        (format!("/{ORG}/../config/"), StatusCode::NOT_FOUND),
        (format!("/config/{ORG}/alpine/"), StatusCode::NOT_FOUND),
        ("/".to_owned(), StatusCode::NOT_FOUND),
    ] {
        let (status, headers, _) = get(&stores, &status_path).await;
        assert_eq!(status, want, "{status_path}");
        if want == StatusCode::MOVED_PERMANENTLY {
            assert_eq!(headers[header::LOCATION], format!("{status_path}/"));
        }
    }

    // A removal leaves the page with the index.
    t.publisher
        .remove(&t.repo, None, "evil")
        .await
        .expect("remove");
    let arch = page(&stores, &arch_url).await;
    assert!(!arch.contains("evil-1.0-r0.apk"), "{arch}");
    assert!(arch.contains("package-x-1.0.0-r0.apk"), "{arch}");
}

async fn concurrent_publishers_lose_no_entry(ctx: Ctx) {
    let stores = ctx.shared().await;
    let t = setup_repo(stores.clone()).await;
    // Several publishers (no shared group commit), new arches and versions
    // created at the same time, and many packages into one arch.
    let dir = tempfile::tempdir().unwrap();
    let arches: [&'static str; 4] = ["x86_64", "aarch64", "armv7", "ppc64le"];
    let versions = ["v3.19", "edge"];
    let mut tasks = tokio::task::JoinSet::new();
    for (i, arch) in arches.into_iter().enumerate() {
        for version in versions {
            for n in 0..3 {
                let apk = ApkBuilder::new(&format!("p{i}x{n}"), "1.0-r0", arch)
                    .file("usr/share/p", b"p")
                    .build();
                let path = write_file(dir.path(), &format!("{version}-{arch}-{n}.apk"), &apk);
                let publisher = Publisher::new(stores.clone());
                let repo = RepoId::parse(ORG, "alpine", version, REPO).unwrap();
                tasks.spawn(async move {
                    publisher
                        .upload(&packages::publish::Upload {
                            repo,
                            arch: Some(Arch::parse(arch).unwrap()),
                            extra_arches: Vec::new(),
                            path,
                            display_name: String::new(),
                        })
                        .await
                        .expect("upload")
                });
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("task");
    }
    let distro = page(&stores, &format!("/{ORG}/alpine/")).await;
    for version in versions {
        assert!(
            distro.contains(&format!("href=\"./{version}/\"")),
            "{distro}"
        );
        let repo = page(&stores, &format!("/{ORG}/alpine/{version}/{REPO}/")).await;
        for (i, arch) in arches.iter().enumerate() {
            assert!(repo.contains(&format!("href=\"./{arch}/\"")), "{repo}");
            let arch_page = page(&stores, &format!("/{ORG}/alpine/{version}/{REPO}/{arch}/")).await;
            for n in 0..3 {
                assert!(
                    arch_page.contains(&format!("p{i}x{n}-1.0-r0.apk")),
                    "{version}/{arch}: p{i}x{n} missing\n{arch_page}"
                );
            }
        }
    }
    drop(t);
}

async fn debian_and_rpm_pages(ctx: Ctx) {
    let stores = ctx.shared().await;
    let deb = crate::deb::setup_debian(&stores).await;
    for (file, component) in [
        ("jq_1.6-2.1+deb12u3_amd64.deb", "main"),
        ("hello_2.10-3_amd64.deb", "contrib"),
    ] {
        deb.upload(&crate::deb::deb_upload("bookworm", component, file))
            .await
            .expect("upload deb");
    }
    let distro = page(&stores, &format!("/{ORG}/debian/")).await;
    assert!(distro.contains("href=\"./dists/bookworm/\""), "{distro}");
    let suite_url = format!("/{ORG}/debian/dists/bookworm/");
    let suite = page(&stores, &suite_url).await;
    assert!(suite.contains("jq_1.6-2.1+deb12u3_amd64.deb"), "{suite}");
    assert!(suite.contains("<td>contrib</td>"), "{suite}");
    assert!(
        suite.contains(&format!(
            "deb [signed-by=/etc/apt/keyrings/{ORG}-debian.gpg] $BASE/{ORG}/debian bookworm contrib main"
        )),
        "{suite}"
    );
    assert!(suite.contains("archive-keyring.gpg"), "{suite}");
    links_resolve(&stores, &suite_url, &suite).await;

    // The same org (created above) gets a Fedora key and repository.
    let fedora = packages::repo::Scope::new(
        packages::repo::Org::parse(ORG).unwrap(),
        Some(packages::repo::Distro::parse("fedora").unwrap()),
        None,
        None,
    )
    .unwrap();
    packages::keys::import_with(
        &stores,
        &fedora,
        &crate::deb::test_pgp_key(),
        &packages::keys::ChangeOptions {
            algorithm: packages::signing::Algorithm::OpenPgp,
            ..Default::default()
        },
    )
    .await
    .expect("import the OpenPGP key");
    crate::rpm::publish_all(&Publisher::new(stores.clone()).with_public_url(None)).await;
    let releases = page(&stores, &format!("/{ORG}/fedora/")).await;
    assert!(
        releases.contains(&format!(
            "href=\"./linux/releases/{}/\"",
            crate::rpm::VERSION
        )),
        "{releases}"
    );
    let arch_url = format!("/{}/", crate::rpm::arch_dir());
    let arch = page(&stores, &arch_url).await;
    for file in crate::rpm::FIXTURES {
        assert!(
            arch.contains(&format!("Packages/a/{file}")),
            "{file}\n{arch}"
        );
    }
    links_resolve(&stores, &arch_url, &arch).await;
    let repo_url = format!(
        "/{ORG}/fedora/linux/releases/{}/{}/",
        crate::rpm::VERSION,
        crate::rpm::REPO
    );
    let repo = page(&stores, &repo_url).await;
    assert!(repo.contains("href=\"./x86_64/os/\""), "{repo}");
    assert!(repo.contains("/etc/yum.repos.d/"), "{repo}");
    let org = page(&stores, &format!("/{ORG}/")).await;
    for distro in ["debian", "fedora"] {
        assert!(org.contains(&format!("href=\"./{distro}/\"")), "{org}");
    }
}

async fn pages_on_the_garage_website(ctx: Ctx) {
    let site = ctx.garage_website().await;
    let stores = site.stores;
    let t = setup_repo(stores.clone()).await;
    t.publish_fixtures().await;
    upload_built(
        &t,
        ApkBuilder::new("evil", "1.0-r0", "x86_64")
            .description(EVIL)
            .file("usr/share/evil", b"e"),
    )
    .await;
    // The website's address: its authority is what the links are checked against.
    let web = site.base.clone();
    let base = site.base;
    // The website serves each folder's index.html at the folder URL.
    let arch_folder = format!("{base}/{ORG}/alpine/{VERSION}/{REPO}/x86_64/");
    let got = curl_get(&arch_folder);
    assert_eq!(got.status, 200, "{arch_folder}");
    assert!(
        got.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{:?}",
        got.headers
    );
    assert_eq!(
        got.header("cache-control"),
        Some("public, max-age=60, must-revalidate")
    );
    let body = String::from_utf8_lossy(&got.body).into_owned();
    assert!(!body.contains("<script>"));
    assert!(body.contains("&lt;script&gt;"), "{body}");
    // Relative links resolve against the folder URL, as a browser does.
    let authority_end = web.find("://").map_or(0, |i| i + 3);
    let authority_end = web[authority_end..]
        .find('/')
        .map_or(web.len(), |i| i + authority_end);
    let (origin, _) = arch_folder.split_at(authority_end);
    let folder_path = &arch_folder[authority_end..];
    for link in links(&body) {
        let target = format!("{origin}{}", resolve(folder_path, &link));
        assert_eq!(curl_get(&target).status, 200, "{link} -> {target}");
    }
    for folder in [
        "",
        "alpine/",
        &format!("alpine/{VERSION}/"),
        &format!("alpine/{VERSION}/{REPO}/"),
    ] {
        let url = format!("{base}/{ORG}/{folder}");
        assert_eq!(curl_get(&url).status, 200, "{url}");
    }
}
