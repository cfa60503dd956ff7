//! Unit tests of names, keys and their bounds.

use super::*;

fn repo() -> RepoId {
    RepoId::parse("acme", "alpine", "v3.20", "main").unwrap()
}

#[test]
fn builds_keys() {
    let arch = repo().arch(Arch::parse("x86_64").unwrap());
    let file = Segment::parse("file name", "hello-1.0+dfsg~1-r0.apk").unwrap();
    assert_eq!(
        Key::Package {
            arch: arch.clone(),
            file
        }
        .path(),
        "static/acme/alpine/v3.20/main/x86_64/hello-1.0+dfsg~1-r0.apk"
    );
    assert_eq!(
        Key::Index(arch.clone()).path(),
        "static/acme/alpine/v3.20/main/x86_64/APKINDEX.tar.gz"
    );
    assert_eq!(
        Key::IndexState(arch.into()).path(),
        "config/acme/alpine/v3.20/main/x86_64/state.json"
    );
    let scope = Scope::new(
        Org::parse("acme").unwrap(),
        Some(Distro::ALPINE),
        None,
        None,
    )
    .unwrap();
    assert_eq!(
        Key::PrivateKey(scope).path(),
        "config/acme/alpine/signing-key.pem"
    );
}

#[test]
fn scope_ancestry_is_most_specific_first() {
    let chain: Vec<String> = repo()
        .scope()
        .ancestry()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        chain,
        [
            "acme/alpine/v3.20/main",
            "acme/alpine/v3.20",
            "acme/alpine",
            "acme"
        ]
    );
}

#[test]
fn rejects_unsafe_segments() {
    for bad in [
        "", "..", ".hidden", "a/b", "a\\b", "a\u{0}b", "a\nb", "x..y", "%2e%2e", " a",
    ] {
        assert!(Segment::parse("repo", bad).is_err(), "{bad:?}");
    }
    assert!(Segment::parse("repo", &"a".repeat(129)).is_err());
    Segment::parse("file name", "gcc-13.2.1_git20231014+x~1-r0.apk").unwrap();
    Segment::parse("file name", "Édge-1.0-r0.apk").unwrap();
}

#[test]
fn names_are_lowercase_ascii() {
    for good in [
        "edge",
        "v3.20",
        "latest-stable",
        "3.21",
        "main",
        "c++",
        "a_b",
        "x",
    ] {
        Segment::parse("version", good).unwrap();
        Segment::parse("repo", good).unwrap();
    }
    Org::parse("acme+labs").unwrap();
    Segment::parse("version", &"a".repeat(MAX_NAME_LEN)).unwrap();
    // Look-alikes: Cyrillic `е`, fullwidth letters, spaces, upper case.
    for bad in [
        "\u{435}dge",
        "ｅｄｇｅ",
        "édge",
        "ed ge",
        "edge ",
        "Edge",
        "EDGE",
        "-edge",
        "_edge",
        "+edge",
        ".edge",
        "v3..20",
        "a\u{200b}b",
        "main.json",
        "signing-key.pem",
        "acme-1.rsa.pub",
    ] {
        for kind in ["version", "repo"] {
            let err = Segment::parse(kind, bad).unwrap_err();
            assert!(!err.reason.is_empty(), "{kind} {bad:?}");
        }
        assert!(Org::parse(bad).is_err(), "org {bad:?}");
    }
    let err = Segment::parse("version", "Edge").unwrap_err().to_string();
    assert!(
        err.contains("lowercase ASCII") && err.contains("64"),
        "{err}"
    );
    assert!(Segment::parse("repo", &"a".repeat(MAX_NAME_LEN + 1)).is_err());
    assert!(Org::parse(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
    assert!(Distro::parse("Alpine").is_err());
}

#[test]
fn rpm_layouts() {
    let fedora = RepoId::parse("acme", "fedora", "40", "server").unwrap();
    let arch = fedora.arch(Arch::parse("x86_64").unwrap());
    let file = Segment::parse("file name", "Acc-tool-2.0-1.x86_64.rpm").unwrap();
    assert_eq!(
        Key::RpmPackage {
            arch: arch.clone(),
            file
        }
        .path(),
        "static/acme/fedora/linux/releases/40/server/x86_64/os/Packages/a/Acc-tool-2.0-1.x86_64.rpm"
    );
    assert_eq!(
        Key::RepoFile(fedora.clone()).path(),
        "static/acme/fedora/linux/releases/40/server/acme-fedora-40-server.repo"
    );
    let rocky = RepoId::parse("acme", "rocky", "9", "baseos").unwrap();
    let arch = rocky.arch(Arch::parse("aarch64").unwrap());
    let file = Segment::parse("file name", "repomd.xml").unwrap();
    assert_eq!(
        Key::Repodata { arch, file }.path(),
        "static/acme/rocky/9/baseos/aarch64/repodata/repomd.xml"
    );
    assert_eq!(
        Key::RpmKey(rocky.clone()).path(),
        "static/acme/rocky/9/baseos/RPM-GPG-KEY-acme-rocky-9-baseos.asc"
    );
    // What the writer says about caching is what a CDN or `serve` derives from the path.
    let arch = rocky.arch(Arch::parse("aarch64").unwrap());
    let sha = "0".repeat(64);
    let keys = [
        Key::RpmPackage {
            arch: arch.clone(),
            file: Segment::parse("file name", "a-1-1.noarch.rpm").unwrap(),
        },
        Key::Repodata {
            arch: arch.clone(),
            file: Segment::parse("file name", "repomd.xml").unwrap(),
        },
        Key::Repodata {
            arch: arch.clone(),
            file: Segment::parse("file name", "repomd.xml.asc").unwrap(),
        },
        Key::Repodata {
            arch,
            file: Segment::parse("file name", &format!("{sha}-primary.xml.gz")).unwrap(),
        },
        Key::RepoFile(rocky.clone()),
        Key::RpmKey(rocky),
    ];
    for key in keys {
        let path = key.path();
        let public = path.strip_prefix(crate::repo::STATIC_PREFIX).unwrap();
        assert_eq!(
            key.cache_control(),
            crate::repo::cache_control_for(public),
            "{path}"
        );
    }
}

#[test]
fn every_key_fits_every_store() {
    let name = |c: &str, n| c.repeat(n);
    let org = Org::parse(&name("o", MAX_NAME_LEN)).unwrap();
    let repo = RepoId::parse(
        org.as_str(),
        "alpine",
        &name("v", MAX_NAME_LEN),
        &name("r", MAX_NAME_LEN),
    )
    .unwrap();
    let arch = repo.arch(Arch::parse(&name("a", MAX_ARCH_LEN)).unwrap());
    let file = Segment::parse("file name", &name("f", 255)).unwrap();
    let short = Segment::parse("id", &name("0", 64)).unwrap();
    let scope = repo.scope();
    let keys = [
        Key::Package {
            arch: arch.clone(),
            file: file.clone(),
        },
        Key::Index(arch.clone()),
        Key::PublicKey {
            scope: scope.clone(),
            name: short.clone(),
        },
        Key::PrivateKey(scope.clone()),
        Key::Org(org),
        Key::RepoSettings(repo.clone()),
        Key::IndexState(RootId::Arch(arch.clone())),
        Key::IndexState(RootId::Settings(repo.clone())),
        Key::Tombstone {
            arch: arch.clone(),
            file,
        },
        Key::IndexMarker(RootId::Arch(arch.clone())),
        Key::Chunk {
            root: RootId::Arch(arch.clone()),
            name: short.clone(),
        },
        Key::ChunkSegment {
            root: RootId::Arch(arch.clone()),
            name: short.clone(),
        },
        Key::Pending {
            root: RootId::Arch(arch),
            id: short.clone(),
        },
        Key::Token {
            level: Some(scope),
            hash: short,
        },
    ];
    let longest = keys.iter().map(|k| k.path().len()).max().unwrap();
    assert!(longest <= MAX_KEY_BYTES, "a key of {longest} bytes");
    // Fedora's RPM layout is the longest public one.
    let fedora = RepoId::parse(
        &name("o", MAX_NAME_LEN),
        "fedora",
        &name("v", MAX_NAME_LEN),
        &name("r", MAX_NAME_LEN),
    )
    .unwrap();
    let fedora_arch = fedora.arch(Arch::parse(&name("a", MAX_ARCH_LEN)).unwrap());
    let rpm_keys = [
        Key::RpmPackage {
            arch: fedora_arch.clone(),
            file: Segment::parse("file name", &name("f", 255)).unwrap(),
        },
        Key::Repodata {
            arch: fedora_arch,
            file: Segment::parse("file name", &format!("{}-filelists.xml.gz", name("0", 64)))
                .unwrap(),
        },
        Key::RepoFile(fedora.clone()),
        Key::RpmKey(fedora),
    ];
    for key in &rpm_keys {
        assert!(key.path().len() <= MAX_KEY_BYTES, "{}", key.path());
    }
    for key in &keys {
        // The folders named after org, version, repo and arch fit any
        // file system (255-byte names); file names are bounded on their own.
        for segment in key.path().split('/').take(6) {
            assert!(segment.len() <= 255, "{}", key.path());
        }
    }
}

#[test]
fn validates_org_and_arch() {
    assert!(Org::parse("Acme").is_err());
    assert!(Org::parse("v1").is_err());
    assert!(Org::parse("health").is_err());
    Org::parse("acme-corp.io").unwrap();
    assert!(Arch::parse("noarch").is_err());
    assert!(Arch::parse("x86-64").is_err());
    Arch::parse("aarch64").unwrap();
    // Every arch of the fixtures and of Alpine.
    for arch in [
        "x86_64",
        "x86",
        "aarch64",
        "armhf",
        "armv7",
        "ppc64le",
        "s390x",
        "riscv64",
        "loongarch64",
    ] {
        Arch::parse(arch).unwrap();
    }
    for bad in [
        "X86_64",
        "_x86",
        "\u{430}arch64",
        &"a".repeat(MAX_ARCH_LEN + 1),
    ] {
        let err = Arch::parse(bad).unwrap_err();
        assert!(err.to_string().contains("lowercase ASCII"), "{err}");
    }
}
