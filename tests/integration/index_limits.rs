//! An index written by an older release with a record apk cannot read (issue 8
//! item 1): `index check` flags it and `index repair` drops the record.
//!
//! The poisoning record (a package with 20,000 `depend` lines, refused at
//! upload today) is written through the core directly, as the older release
//! did after reading the package without limits.

use std::process::{Command, Output};

use packages::formats::apk::limits::check_index_text;
use packages::index::{self, Change, IndexProblem};
use packages::stores::Stores;

use crate::support::{Bucket, Ctx, ORG, REPO, VERSION, openssl_verify, setup_repo};

/// `packages --storage DIR index WHAT` of the test repo's x86_64 arch.
fn cli_index(dir: &std::path::Path, what: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_packages"))
        .arg("--storage")
        .arg(dir)
        .args([
            "index",
            what,
            "--org",
            ORG,
            "--version",
            VERSION,
            "--repo",
            REPO,
            "--arch",
            "x86_64",
        ])
        .env_remove("PACKAGES_STORAGE")
        .env_remove("PACKAGES_CONFIG_STORAGE")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run packages index")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn poisoned_index_is_flagged_and_repaired(ctx: Ctx) {
    let (storage, place) = ctx.open(Bucket::Main).await;
    let t = setup_repo(Stores::shared(storage)).await;
    t.publish_fixtures().await;
    let arch = t.repo.arch(packages::repo::Arch::parse("x86_64").unwrap());
    let before = t.index("x86_64").await.names();

    // What an older release stored for the poisoning package: a valid record
    // whose `D:` line is about 340 KB, beyond apk's 128 KiB line buffer.
    let (state, _) = index::read_state(&t.stores, &arch).await.expect("state");
    let mut poison = state.records.values().next().expect("a record").clone();
    poison.name = "poison".to_owned();
    poison.version = "1.0-r0".to_owned();
    poison.depends = (0..20_000).map(|i| format!("so:libp{i:05}.so.1")).collect();
    index::add_pending(&t.stores, &arch, Change::Add(Box::new(poison)))
        .await
        .expect("add poison");
    index::reindex(&t.stores, &arch).await.expect("reindex");
    let poisoned = t.index("x86_64").await;
    assert!(poisoned.names().contains(&"poison".to_owned()));
    assert!(
        check_index_text(&poisoned.text)
            .iter()
            .any(|p| p.package.as_deref() == Some("poison-1.0-r0")),
        "the published index is one apk refuses"
    );

    // check flags it (the index equals what the records render to: only the
    // client check can see it).
    let problems = t.publisher.check_index(&arch).await.expect("check");
    assert!(
        problems.iter().any(|p| matches!(
            p,
            IndexProblem::ClientLimits { problems }
                if problems.iter().any(|m| m.contains("poison-1.0-r0") && m.contains("whole index"))
        )),
        "{problems:?}"
    );
    assert!(problems.iter().any(|p| !p.is_warning()));
    if let Some(dir) = &place.dir {
        let out = cli_index(dir, "check");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        eprintln!("index check of a poisoned index:\n{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("client_limits") && stdout.contains("poison-1.0-r0"),
            "{}",
            text(&out)
        );
    }

    // repair drops it, names it and republishes.
    if let Some(dir) = &place.dir {
        let out = cli_index(dir, "repair");
        assert!(out.status.success(), "{}", text(&out));
        eprintln!("index repair:\n{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("dropped ")
                && stdout.contains("poison-1.0-r0.apk")
                && stdout.contains("`D:`"),
            "{}",
            text(&out)
        );
    } else {
        let repaired = t.publisher.repair_index(&arch).await.expect("repair");
        assert_eq!(
            repaired
                .dropped
                .iter()
                .map(|d| d.entry.as_str())
                .collect::<Vec<_>>(),
            ["poison-1.0-r0.apk"]
        );
        assert!(repaired.dropped[0].reason.contains("`D:`"));
    }
    // A second repair has nothing to drop.
    let again = t.publisher.repair_index(&arch).await.expect("repair again");
    assert!(again.dropped.is_empty(), "{:?}", again.dropped);

    let problems = t.publisher.check_index(&arch).await.expect("check");
    assert_eq!(problems, [], "check after repair");
    if let Some(dir) = &place.dir {
        let out = cli_index(dir, "check");
        assert!(out.status.success(), "{}", text(&out));
    }
    let repaired = t.index("x86_64").await;
    assert_eq!(repaired.names(), before, "the other packages stay listed");
    assert_eq!(check_index_text(&repaired.text), []);
    let (ok, out) = openssl_verify(
        &t.public_key_pem().await,
        &repaired.signature,
        &repaired.unsigned,
    );
    assert!(ok, "openssl must verify the repaired index: {out}");
    // Removed like `packages rm`: a tombstone, so `rebuild` and `gc` agree.
    let tombstone = packages::repo::Key::Tombstone {
        arch: arch.clone(),
        file: packages::repo::Segment::parse("file name", "poison-1.0-r0.apk").unwrap(),
    };
    assert!(
        t.stores
            .get_bytes_opt(&tombstone)
            .await
            .expect("get")
            .is_some(),
        "a tombstone for the dropped package"
    );
}

/// A record apk reads but an upload would be refused for today (a 5,000-byte
/// description, over the 4,096 allowed) is a warning: check does not fail and
/// repair keeps it.
async fn over_policy_record_is_a_warning(ctx: Ctx) {
    let (storage, place) = ctx.open(Bucket::Main).await;
    let t = setup_repo(Stores::shared(storage)).await;
    t.publish_fixtures().await;
    let arch = t.repo.arch(packages::repo::Arch::parse("x86_64").unwrap());
    let (state, _) = index::read_state(&t.stores, &arch).await.expect("state");
    let mut long = state.records.values().next().expect("a record").clone();
    long.name = "long-description".to_owned();
    long.description = "d".repeat(5_000);
    index::add_pending(&t.stores, &arch, Change::Add(Box::new(long)))
        .await
        .expect("add");
    index::reindex(&t.stores, &arch).await.expect("reindex");

    let problems = t.publisher.check_index(&arch).await.expect("check");
    assert!(
        matches!(
            problems.as_slice(),
            [IndexProblem::OverLimits { warnings }]
                if warnings.len() == 1 && warnings[0].contains("pkgdesc is 5000 bytes")
        ),
        "{problems:?}"
    );
    if let Some(dir) = &place.dir {
        let out = cli_index(dir, "check");
        assert!(out.status.success(), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("x86_64: ok") && stdout.contains("warning: "),
            "{}",
            text(&out)
        );
    }
    let repaired = t.publisher.repair_index(&arch).await.expect("repair");
    assert!(repaired.dropped.is_empty(), "{:?}", repaired.dropped);
    assert!(
        t.index("x86_64")
            .await
            .names()
            .contains(&"long-description".to_owned())
    );
}

backend_tests!([local, moto] poisoned_index_is_flagged_and_repaired, over_policy_record_is_a_warning);
