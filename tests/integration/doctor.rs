//! `packages doctor` and the service's start-up check: what the store honours,
//! and refusing to run when the private tree is readable through the public URL.

use std::process::Command;

use crate::support::{Bucket, Ctx, Place};

/// `packages` with `--storage` (and `--config-storage`) for the given places.
fn packages(ctx: &Ctx, public: &Place, private: Option<&Place>) -> Command {
    let url = |place: &Place| match (&place.dir, &place.bucket) {
        (Some(dir), _) => dir.display().to_string(),
        (None, Some(bucket)) => format!("s3://{bucket}/{}", place.prefix),
        (None, None) => unreachable!("a place is a directory or a bucket"),
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_packages"));
    cmd.arg("--storage").arg(url(public));
    if let Some(private) = private {
        cmd.arg("--config-storage").arg(url(private));
    }
    if let Some(env) = &ctx.s3 {
        cmd.env("AWS_ENDPOINT_URL", &env.endpoint)
            .env("AWS_REGION", &env.region);
        let (id, secret) = env
            .credentials
            .clone()
            .unwrap_or(("test".into(), "test".into()));
        cmd.env("AWS_ACCESS_KEY_ID", id)
            .env("AWS_SECRET_ACCESS_KEY", secret);
    }
    cmd
}

/// `packages init` on the given places: `doctor` and `serve` need a store.
fn init(ctx: &Ctx, public: &Place, private: Option<&Place>) {
    let out = packages(ctx, public, private).arg("init").output().unwrap();
    assert!(
        out.status.success(),
        "init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `doctor` reports reachability and whether conditional writes hold, as probed.
async fn doctor_reports_the_store(ctx: Ctx) {
    let (_, place) = ctx.open(Bucket::Main).await;
    init(&ctx, &place, None);
    let out = packages(&ctx, &place, None)
        .args(["--json", "doctor"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["public"]["reachable"], true);
    let expected = ctx
        .backend
        .expected_conditional_writes()
        .expect("known backend");
    assert_eq!(report["public"]["conditional_writes"], expected, "{report}");
    assert!(
        report["public"]["clock_skew_seconds"]
            .as_f64()
            .is_some_and(|s| s.abs() < 30.0)
    );
}

backend_tests!([local, garage, moto] doctor_reports_the_store);

/// With one shared store in Garage's website bucket, `config/` is public: the
/// service must refuse to start and `doctor` must say so; with the private
/// tree in its own bucket, both are content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_start_when_the_private_tree_is_public() {
    crate::support::run_on("garage", |ctx: Ctx| async move {
        let web = ctx.s3().web.clone().expect("PACKAGES_TEST_GARAGE_WEB");
        let (_, shared) = ctx.open(Bucket::Main).await;
        // The website serves the bucket root; our trees sit under the test's prefix.
        let public_url = format!("{web}/{}", shared.prefix);
        init(&ctx, &shared, None);

        let out = packages(&ctx, &shared, None)
            .args(["doctor", "--public-url", &public_url])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "doctor must fail: {text}");
        assert!(text.contains("PRIVATE TREE EXPOSED"), "{text}");

        let out = packages(&ctx, &shared, None)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--public-url",
                &public_url,
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "serve must refuse to start");
        assert!(
            stderr.contains("refusing to start") && stderr.contains("--config-storage"),
            "{stderr}"
        );

        // Private tree in its own (non-website) bucket: nothing to find.
        let (_, public) = ctx.open(Bucket::Main).await;
        let (_, private) = ctx.open(Bucket::Private).await;
        let public_url = format!("{web}/{}", public.prefix);
        init(&ctx, &public, Some(&private));
        let out = packages(&ctx, &public, Some(&private))
            .args(["doctor", "--public-url", &public_url])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("private tree not readable"), "{text}");
    })
    .await;
}
