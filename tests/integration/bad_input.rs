//! Bad packages are refused with a clear error naming the file, and leave both
//! trees exactly as they were (no temporary files either), through the library
//! on every backend, through the CLI and through the HTTP API: malformed ones,
//! ones over the limits that keep the index readable by apk (docs/limits.md),
//! and ones apk could not install.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use packages::formats::apk::builder::{ApkBuilder, Breakage};
use packages::formats::apk::{ApkError, ApkLimits};
use packages::publish::{PublishError, Publisher};
use packages::repo::RepoId;

use crate::support::{
    Ctx, ORG, TestRepo, apk_fixture, assert_no_temp_files, assert_unchanged, fixture, gzip_members,
    noise, setup_repo, snapshot, write_file,
};

mod hostile;

all_backends!(bad_packages_are_refused_and_change_nothing);
backend_tests!([local] bad_packages_are_refused_by_the_cli, bad_names_are_refused_by_the_cli);

/// What kind of error a case must give.
#[derive(Debug, Clone, Copy)]
enum Want {
    Format,
    PkgInfo,
    Corrupt,
    UnsafePath,
    TooLarge,
    Limit,
    Uninstallable,
    ArchMismatch,
}

impl Want {
    fn matches(self, e: &PublishError) -> bool {
        match (self, e) {
            (Want::ArchMismatch, PublishError::ArchMismatch { .. }) => true,
            (want, PublishError::Package { reason, .. }) => matches!(
                (want, reason),
                (Want::Format, ApkError::Format(_))
                    | (Want::PkgInfo, ApkError::PkgInfo(_))
                    | (Want::Corrupt, ApkError::Corrupt(_))
                    | (Want::UnsafePath, ApkError::UnsafePath(_))
                    | (Want::TooLarge, ApkError::TooLarge(_))
                    | (Want::Limit, ApkError::Limit(_))
                    | (Want::Uninstallable, ApkError::Uninstallable(_))
            ),
            _ => false,
        }
    }
}

/// One bad input.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    /// The `--arch` of the upload.
    arch: Option<&'static str>,
    want: Want,
    /// Words the message must contain (besides the file name).
    words: &'static [&'static str],
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn good() -> ApkBuilder {
    ApkBuilder::new("demo", "1.0-r0", "x86_64").file("usr/share/demo/readme", b"hello")
}

/// A ustar header block for a regular file (via the `tar` crate).
fn tar_header(path: &str, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    h.as_bytes().to_vec()
}

fn cases() -> Vec<Case> {
    let fixture_bytes = std::fs::read(apk_fixture("package-x-1.0.0-r0.apk")).unwrap();
    let members = gzip_members(&fixture_bytes);
    let small = ApkBuilder::new("bomb", "1.0-r0", "x86_64")
        .file("a", b"0123456789")
        .build();
    let small_members = gzip_members(&small);

    // Data member: 64 MiB of zeros (~64 KiB compressed) under a 10-byte `size`.
    let mut data_bomb = small_members[0].clone();
    data_bomb.extend_from_slice(&small_members[1]);
    data_bomb.extend_from_slice(&gzip(&vec![0u8; 64 << 20]));

    // Control member: a `.PKGINFO` of 64 MiB of empty lines (beyond the control cap).
    let mut control_tar = tar_header(".PKGINFO", 64 << 20);
    control_tar.extend_from_slice(b"pkgname = bomb\n");
    control_tar.resize(512 + (64 << 20), b'\n');
    let mut control_bomb = small_members[0].clone();
    control_bomb.extend_from_slice(&gzip(&control_tar));
    control_bomb.extend_from_slice(&small_members[2]);

    vec![
        Case {
            name: "not-an-apk",
            bytes: b"#!/bin/sh\necho this is not an apk\n".repeat(20),
            arch: None,
            want: Want::Format,
            words: &["gzip"],
        },
        Case {
            name: "empty",
            bytes: Vec::new(),
            arch: None,
            want: Want::Format,
            words: &["empty"],
        },
        Case {
            name: "plain-tar",
            bytes: tar_header("x", 0).repeat(3),
            arch: None,
            want: Want::Format,
            words: &["gzip"],
        },
        Case {
            name: "truncated-inside-data",
            bytes: fixture_bytes[..fixture_bytes.len() - 300].to_vec(),
            arch: None,
            want: Want::Format,
            words: &["truncated"],
        },
        Case {
            name: "truncated-inside-control",
            bytes: fixture_bytes[..members[0].len() + members[1].len() / 2].to_vec(),
            arch: None,
            want: Want::Format,
            words: &["truncated"],
        },
        Case {
            name: "truncated-no-data-member",
            bytes: fixture_bytes[..members[0].len() + members[1].len()].to_vec(),
            arch: None,
            want: Want::Format,
            words: &["truncated", "data member"],
        },
        Case {
            name: "data-inflates-far-beyond-size",
            bytes: data_bomb,
            arch: None,
            want: Want::TooLarge,
            words: &["data member", "size"],
        },
        Case {
            name: "files-beyond-size",
            bytes: good()
                .installed_size(1)
                .file("usr/share/demo/big", &vec![b'x'; 4 << 20])
                .build(),
            arch: None,
            want: Want::TooLarge,
            words: &["data member"],
        },
        Case {
            name: "control-inflates-without-end",
            bytes: control_bomb,
            arch: None,
            want: Want::TooLarge,
            words: &["control"],
        },
        Case {
            name: "wrong-datahash",
            bytes: good().break_with(Breakage::WrongDatahash).build(),
            arch: None,
            want: Want::Corrupt,
            words: &["datahash"],
        },
        Case {
            name: "bad-file-checksum",
            bytes: good().break_with(Breakage::BadFileChecksum).build(),
            arch: None,
            want: Want::Corrupt,
            words: &["SHA-1"],
        },
        Case {
            name: "dotdot-in-data",
            bytes: good().break_with(Breakage::DotDotPath).build(),
            arch: None,
            want: Want::UnsafePath,
            words: &["../x"],
        },
        Case {
            name: "absolute-path-in-data",
            bytes: good().break_with(Breakage::AbsolutePath).build(),
            arch: None,
            want: Want::UnsafePath,
            words: &["/x"],
        },
        Case {
            name: "dotdot-pkgname",
            bytes: ApkBuilder::new("../evil", "1.0-r0", "x86_64")
                .file("a", b"a")
                .build(),
            arch: None,
            want: Want::PkgInfo,
            words: &["pkgname", "../evil"],
        },
        Case {
            name: "dotdot-inside-pkgname",
            bytes: ApkBuilder::new("a..b", "1.0-r0", "x86_64")
                .file("a", b"a")
                .build(),
            arch: None,
            want: Want::PkgInfo,
            words: &["pkgname"],
        },
        Case {
            name: "slash-pkgname",
            bytes: ApkBuilder::new("evil/name", "1.0-r0", "x86_64")
                .file("a", b"a")
                .build(),
            arch: None,
            want: Want::PkgInfo,
            words: &["pkgname", "evil/name"],
        },
        Case {
            name: "slash-pkgver",
            bytes: ApkBuilder::new("demo", "1.0/../../x-r0", "x86_64")
                .file("a", b"a")
                .build(),
            arch: None,
            want: Want::PkgInfo,
            words: &["pkgver"],
        },
        Case {
            name: "slash-arch",
            bytes: ApkBuilder::new("demo", "1.0-r0", "../x86_64")
                .file("a", b"a")
                .build(),
            arch: None,
            want: Want::PkgInfo,
            words: &["arch"],
        },
        Case {
            name: "wrong-arch",
            bytes: good().build(),
            arch: Some("aarch64"),
            want: Want::ArchMismatch,
            words: &["x86_64", "aarch64"],
        },
        Case {
            name: "missing-pkgname",
            bytes: good().break_with(Breakage::MissingField("pkgname")).build(),
            arch: None,
            want: Want::PkgInfo,
            words: &["missing pkgname"],
        },
        Case {
            name: "missing-pkgver",
            bytes: good().break_with(Breakage::MissingField("pkgver")).build(),
            arch: None,
            want: Want::PkgInfo,
            words: &["missing pkgver"],
        },
        Case {
            name: "missing-arch",
            bytes: good().break_with(Breakage::MissingField("arch")).build(),
            arch: None,
            want: Want::PkgInfo,
            words: &["missing arch"],
        },
        Case {
            name: "missing-size",
            bytes: good().break_with(Breakage::MissingField("size")).build(),
            arch: None,
            want: Want::PkgInfo,
            words: &["missing size"],
        },
        Case {
            name: "missing-datahash",
            bytes: good()
                .break_with(Breakage::MissingField("datahash"))
                .build(),
            arch: None,
            want: Want::PkgInfo,
            words: &["missing datahash"],
        },
        Case {
            name: "no-pkginfo",
            bytes: good().break_with(Breakage::NoPkginfo).build(),
            arch: None,
            want: Want::Format,
            words: &[".PKGINFO"],
        },
        Case {
            name: "10mb-pkginfo-line",
            bytes: good()
                .break_with(Breakage::HugePkginfoLine(10 << 20))
                .build(),
            arch: None,
            want: Want::PkgInfo,
            words: &["longer than"],
        },
        Case {
            name: "non-utf8-pkginfo",
            bytes: good().break_with(Breakage::NonUtf8Pkginfo).build(),
            arch: None,
            want: Want::PkgInfo,
            words: &["UTF-8"],
        },
        Case {
            name: "control-line-break-in-value",
            bytes: good().pkginfo_line("pkgdesc2 = a\rb").build(),
            arch: None,
            want: Want::PkgInfo,
            words: &["control character"],
        },
        Case {
            name: "extra-gzip-member",
            bytes: good().break_with(Breakage::ExtraMember).build(),
            arch: None,
            want: Want::Format,
            words: &["member"],
        },
        Case {
            name: "trailing-garbage",
            bytes: good().break_with(Breakage::TrailingGarbage).build(),
            arch: None,
            want: Want::Format,
            words: &["trailing"],
        },
        Case {
            name: "data-not-gzip",
            bytes: good().break_with(Breakage::DataNotGzip).build(),
            arch: None,
            want: Want::Format,
            words: &["data member"],
        },
        Case {
            name: "uncut-control-tar",
            bytes: good().break_with(Breakage::UncutControl).build(),
            arch: None,
            want: Want::Format,
            words: &["end-of-archive"],
        },
    ]
    .into_iter()
    .chain(hostile::cases())
    .collect()
}

async fn bad_packages_are_refused_and_change_nothing(ctx: Ctx) {
    let t = setup_repo(ctx.shared().await).await;
    // Something published already, so that "unchanged" covers changes too.
    t.upload(&apk_fixture("package-x-1.0.0-r0.apk"), None)
        .await
        .unwrap();
    let separate = setup_repo(ctx.separate().await).await;
    separate
        .upload(&apk_fixture("package-x-1.0.0-r0.apk"), None)
        .await
        .unwrap();
    let dir = ctx.temp_dir();
    for t in [&t, &separate] {
        let before = snapshot(&t.stores).await;
        for case in cases() {
            let path = write_file(&dir, &format!("{}.apk", case.name), &case.bytes);
            check_refused(t, &t.publisher, &case, &path).await;
            assert_unchanged(&before, &snapshot(&t.stores).await, case.name);
            assert_no_temp_files(t.stores.public());
            assert_no_temp_files(t.stores.private());
        }
    }

    // The hard cap applies whatever `.PKGINFO` says.
    let capped = Publisher::new(t.stores.clone()).with_limits(ApkLimits {
        max_data_bytes: 1 << 20,
        ..ApkLimits::default()
    });
    let honest = good()
        .file("usr/share/demo/big", &noise(3 << 20, 3))
        .build();
    let path = write_file(&dir, "over-hard-cap.apk", &honest);
    let before = snapshot(&t.stores).await;
    let case = Case {
        name: "over-hard-cap",
        bytes: Vec::new(),
        arch: None,
        want: Want::TooLarge,
        words: &["1048576"],
    };
    check_refused(&t, &capped, &case, &path).await;
    assert_unchanged(&before, &snapshot(&t.stores).await, "unchanged");
    // Under the default limits the same package is fine.
    t.upload(&path, None).await.expect("a 3 MB package is fine");
}

async fn check_refused(t: &TestRepo, publisher: &Publisher, case: &Case, path: &Path) {
    let mut upload = t.upload_of(path, case.arch);
    upload.display_name = path.display().to_string();
    let err = match publisher.upload(&upload).await {
        Ok(p) => panic!("{}: accepted: {p:?}", case.name),
        Err(e) => e,
    };
    assert!(
        case.want.matches(&err),
        "{}: expected {:?}, got {err:?}",
        case.name,
        case.want
    );
    assert!(
        err.is_client_error(),
        "{}: a bad package is the client's fault: {err:?}",
        case.name
    );
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "{}: the message names the file: {message}",
        case.name
    );
    for word in case.words {
        assert!(
            message.contains(word),
            "{}: the message should say {word:?}: {message}",
            case.name
        );
    }
    assert!(
        message.len() < 2000,
        "{}: a short message, not a dump ({} bytes)",
        case.name,
        message.len()
    );
}

// ---- through the CLI ----------------------------------------------------------------

fn packages(storage: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_packages"));
    cmd.env_remove("PACKAGES_STORAGE")
        .env_remove("PACKAGES_CONFIG_STORAGE")
        .env("RUST_LOG", "warn")
        .arg("--storage")
        .arg(storage);
    cmd
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run packages");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir` (lock files aside) with size and mtime.
fn tree(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                if entry.file_name() != ".packages-locks" {
                    stack.push(path);
                }
            } else {
                out.push((path, meta.len(), meta.modified().unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn cli_setup(ctx: &Ctx) -> PathBuf {
    let storage = ctx.temp_dir().join("store");
    run_ok(packages(&storage).args(["org", "create", ORG]));
    run_ok(
        packages(&storage)
            .args([
                "key", "import", "--org", ORG, "--distro", "alpine", "--file",
            ])
            .arg(fixture("keys/test-signing.rsa")),
    );
    run_ok(
        packages(&storage)
            .args([
                "upload",
                "--create",
                "--org",
                ORG,
                "--version",
                "v3.20",
                "--repo",
                "main",
            ])
            .arg(apk_fixture("package-x-1.0.0-r0.apk")),
    );
    storage
}

async fn bad_packages_are_refused_by_the_cli(ctx: Ctx) {
    let storage = cli_setup(&ctx);
    let dir = ctx.temp_dir();
    let before = tree(&storage);
    for case in cases() {
        let path = write_file(&dir, &format!("{}.apk", case.name), &case.bytes);
        let mut cmd = packages(&storage);
        cmd.args([
            "upload",
            "--create",
            "--org",
            ORG,
            "--version",
            "v3.20",
            "--repo",
            "main",
        ]);
        if let Some(arch) = case.arch {
            cmd.args(["--arch", arch]);
        }
        let out = cmd.arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: exit code (stderr: {stderr})",
            case.name
        );
        assert!(
            stderr.contains(&path.display().to_string()),
            "{}: stderr names the file: {stderr}",
            case.name
        );
        for word in case.words {
            assert!(
                stderr.contains(word),
                "{}: stderr should say {word:?}: {stderr}",
                case.name
            );
        }
        assert!(
            out.stdout.is_empty(),
            "{}: nothing on stdout: {}",
            case.name,
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(tree(&storage), before, "{}: the store changed", case.name);
    }
    // A good file after a bad one on the same command line: nothing is published
    // past the bad one, and the error names the bad one.
    let bad = write_file(&dir, "bad.apk", b"nope");
    let out = packages(&storage)
        .args([
            "upload",
            "--create",
            "--org",
            ORG,
            "--version",
            "v3.20",
            "--repo",
            "main",
        ])
        .arg(&bad)
        .arg(apk_fixture("package-y-1.0.0-r0.apk"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&bad.display().to_string()));
    assert_eq!(tree(&storage), before);
    // A missing file.
    let out = packages(&storage)
        .args([
            "upload",
            "--create",
            "--org",
            ORG,
            "--version",
            "v3.20",
            "--repo",
            "main",
            "/nonexistent/file.apk",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/file.apk"), "{stderr}");
    assert_eq!(tree(&storage), before);
}

async fn bad_names_are_refused_by_the_cli(ctx: Ctx) {
    let storage = cli_setup(&ctx);
    let before = tree(&storage);
    let file = apk_fixture("package-y-1.0.0-r0.apk");
    for (flag, value, kind) in [
        ("--org", "../acme", "org"),
        ("--org", "Acme", "org"),
        ("--version", "..", "version"),
        ("--version", "v3.20/../../x", "version"),
        ("--repo", "a/b", "repo"),
        ("--repo", "%2e%2e", "repo"),
        ("--repo", "main\u{1}", "repo"),
        ("--arch", "../x86_64", "arch"),
        ("--arch", "noarch", "arch"),
    ] {
        let mut args = vec![("--org", ORG), ("--version", "v3.20"), ("--repo", "main")];
        match args.iter_mut().find(|(f, _)| *f == flag) {
            Some(slot) => slot.1 = value,
            None => args.push((flag, value)),
        }
        let mut cmd = packages(&storage);
        cmd.args(["upload", "--create"]);
        for (f, v) in &args {
            cmd.args([f, v]);
        }
        let out = cmd.arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} {value:?} accepted");
        assert!(
            stderr.contains(kind) && stderr.contains("invalid"),
            "{flag} {value:?}: {stderr}"
        );
        assert_eq!(
            tree(&storage),
            before,
            "{flag} {value:?}: the store changed"
        );
    }
    // The same names through the library types.
    assert!(RepoId::parse(ORG, "alpine", "..", "main").is_err());
    assert!(RepoId::parse(ORG, "alpine", "v3.20", "a/b").is_err());
}
