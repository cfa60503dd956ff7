//! Repository settings go through the publish protocol: concurrent first
//! uploads to different arches of a new repo never drop an arch, even on
//! Garage, which ignores conditional writes (issue 7 item 5). Before, each
//! writer replaced `repo.json` with `PutMode::Update`, and the last one won.

use std::collections::BTreeSet;

use packages::formats::apk::builder::ApkBuilder;

use crate::support::{Ctx, setup_repo, write_file};

/// Concurrent first uploads, one per arch.
const ARCHES: usize = 10;

async fn concurrent_first_uploads_keep_every_arch(ctx: Ctx) {
    let t = setup_repo(ctx.shared().await).await;
    let dir = ctx.temp_dir();
    let mut tasks = Vec::new();
    for i in 0..ARCHES {
        let arch = format!("arch{i}");
        let name = format!("pkg-{arch}");
        let apk = ApkBuilder::new(&name, "1.0-r0", &arch)
            .file(&format!("usr/share/{name}"), b"x")
            .build();
        let path = write_file(&dir, &format!("{name}-1.0-r0.apk"), &apk);
        // A publisher per task, as separate processes would have.
        let publisher = packages::publish::Publisher::new(t.stores.clone());
        let upload = t.upload_of(&path, None);
        tasks.push(tokio::spawn(async move { publisher.upload(&upload).await }));
    }
    for task in tasks {
        task.await.unwrap().expect("upload");
    }
    let listed: BTreeSet<String> = t
        .publisher
        .arches(&t.repo)
        .await
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    let expected: BTreeSet<String> = (0..ARCHES).map(|i| format!("arch{i}")).collect();
    assert_eq!(
        listed, expected,
        "every arch a first upload created is listed"
    );
    // And each arch's index lists its package.
    for i in 0..ARCHES {
        let index = t.index(&format!("arch{i}")).await;
        assert_eq!(index.names(), [format!("pkg-arch{i}")]);
    }
}

/// The cap on arches per repository is a clear client error, and nothing is
/// written for the refused upload.
async fn arch_cap_is_a_clear_error(ctx: Ctx) {
    let mut t = setup_repo(ctx.shared().await).await;
    t.publisher = t.publisher.clone().with_max_arches(2);
    let dir = ctx.temp_dir();
    for (i, arch) in ["a1", "a2", "a3"].iter().enumerate() {
        let name = format!("p{i}");
        let apk = ApkBuilder::new(&name, "1.0-r0", arch)
            .file("usr/share/x", b"x")
            .build();
        let path = write_file(&dir, &format!("{name}-1.0-r0.apk"), &apk);
        let result = t.upload(&path, None).await;
        if i < 2 {
            result.expect("within the cap");
        } else {
            let err = result.expect_err("over the cap");
            assert!(err.is_client_error(), "{err}");
            assert!(err.to_string().contains("at most 2 arches"), "{err}");
        }
    }
    assert!(t.index_bytes("a3").await.is_none());
    assert_eq!(t.publisher.arches(&t.repo).await.unwrap().len(), 2);
}

backend_tests!([local, garage, moto] concurrent_first_uploads_keep_every_arch);
backend_tests!([local] arch_cap_is_a_clear_error);
