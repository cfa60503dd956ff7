use std::sync::Arc;

use super::*;
use crate::repo::{Arch, Distro, Org, RepoId, Segment, SuiteId};

fn row(name: &str, description: &str) -> Row {
    Row {
        name: name.to_owned(),
        version: "1.0-r0".to_owned(),
        arch: "x86_64".to_owned(),
        size: 2048,
        time: Some(1_700_000_000),
        file: format!("{name}-1.0-r0.apk"),
        description: description.to_owned(),
        component: None,
    }
}

#[test]
fn folders_and_links_follow_each_layout() {
    let alpine = RepoId::parse("acme", "alpine", "v3.20", "main").unwrap();
    let arch = Level::Arch(alpine.arch(Arch::parse("x86_64").unwrap()));
    assert_eq!(arch.dir(), "acme/alpine/v3.20/main/x86_64");
    assert_eq!(arch.link_from_parent().as_deref(), Some("x86_64/"));
    assert_eq!(
        crumbs(&arch),
        [
            ("acme".to_owned(), "../../../../".to_owned()),
            ("alpine".to_owned(), "../../../".to_owned()),
            ("v3.20".to_owned(), "../../".to_owned()),
            ("main".to_owned(), "../".to_owned()),
        ]
    );
    let fedora = RepoId::parse("acme", "fedora", "40", "main").unwrap();
    let arch = Level::Arch(fedora.arch(Arch::parse("x86_64").unwrap()));
    assert_eq!(arch.dir(), "acme/fedora/linux/releases/40/main/x86_64/os");
    assert_eq!(arch.link_from_parent().as_deref(), Some("x86_64/os/"));
    let version = Level::Version(
        Org::parse("acme").unwrap(),
        Distro::parse("fedora").unwrap(),
        Segment::parse("version", "40").unwrap(),
    );
    assert_eq!(
        version.link_from_parent().as_deref(),
        Some("linux/releases/40/")
    );
    let suite = SuiteId::new(
        Org::parse("acme").unwrap(),
        Distro::parse("debian").unwrap(),
        "bookworm",
    )
    .unwrap();
    let suite = Level::Suite(suite);
    assert_eq!(suite.dir(), "acme/debian/dists/bookworm");
    assert_eq!(suite.link_from_parent().as_deref(), Some("dists/bookworm/"));
    assert_eq!(
        suite.key().path(),
        "static/acme/debian/dists/bookworm/index.html"
    );
}

#[test]
fn a_root_page_escapes_user_data_and_links_relatively() {
    let repo = RepoId::parse("acme", "alpine", "edge", "main").unwrap();
    let level = Level::Arch(repo.arch(Arch::parse("x86_64").unwrap()));
    let rows = vec![Arc::new(vec![
        row("zeta", "last"),
        row("evil", "<script>alert(1)</script>"),
    ])];
    let page = String::from_utf8(root_page(&level, &rows, None)).unwrap();
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("href=\"./evil-1.0-r0.apk\""));
    assert!(page.find("evil").unwrap() < page.find("zeta").unwrap());
    assert!(page.contains("2023-11-14") && page.contains("2.0 KiB"));
    assert!(page.contains("/etc/apk/repositories"));
    assert!(page.contains("2 packages."));
}

#[test]
fn a_big_root_page_lists_the_first_rows_by_name() {
    let repo = RepoId::parse("acme", "alpine", "edge", "main").unwrap();
    let level = Level::Arch(repo.arch(Arch::parse("x86_64").unwrap()));
    let many: Vec<Row> = (0..MAX_ROWS + 10)
        .rev()
        .map(|i| row(&format!("p{i:06}"), "d"))
        .collect();
    let page = String::from_utf8(root_page(&level, &[Arc::new(many)], None)).unwrap();
    assert!(page.contains("p000000-1.0-r0.apk"));
    assert!(!page.contains(&format!("p{:06}-1.0-r0.apk", MAX_ROWS)));
    assert!(page.contains(&format!("{} packages; the first {MAX_ROWS}", MAX_ROWS + 10)));
}

#[test]
fn list_pages_name_their_children() {
    let level = Level::Org(Org::parse("acme").unwrap());
    let children = vec![("alpine".to_owned(), "alpine/".to_owned())];
    let page = list_page(&level, &children, None);
    assert!(page_lists(&page, "alpine/"));
    assert!(!page_lists(&page, "debian/"));
}
