//! Publish packages from your own program, with the `packages` library instead of the CLI.
//!
//! ```sh
//! cargo run --example publish -- STORAGE [CONFIG_STORAGE] ORG VERSION REPO FILE.apk...
//! cargo run --example publish -- ./packages-data acme edge main hello-1.0-r0.apk
//! cargo run --example publish -- s3://acme-pkgs-repo s3://acme-pkgs-config acme edge main *.apk
//! ```
//!
//! Stores are named as on the command line (`s3://BUCKET[/PREFIX]`, a directory); S3
//! credentials and region come from the AWS environment. The organization and a signing key
//! must exist (`packages org create`, `packages key generate`). Like `packages upload`, it
//! returns once every package is in the signed index.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use packages::publish::{Publisher, Upload};
use packages::repo::RepoId;
use packages::storage::{S3Settings, Storage, StorageUrl};
use packages::stores::Stores;

async fn open(url: &str) -> Result<Storage> {
    let parsed = StorageUrl::parse(url).with_context(|| format!("store `{url}`"))?;
    Storage::open(&parsed, &S3Settings::default())
        .await
        .with_context(|| format!("opening `{url}`"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // A second store is recognised by looking like one: a URL or a path, not an org name.
    let separate = args.len() > 5 && (args[1].contains("://") || args[1].contains('/'));
    let (stores, rest) = if separate {
        (
            Stores::separate(open(&args[0]).await?, open(&args[1]).await?),
            &args[2..],
        )
    } else if args.len() >= 5 {
        (Stores::shared(open(&args[0]).await?), &args[1..])
    } else {
        bail!("usage: publish STORAGE [CONFIG_STORAGE] ORG VERSION REPO FILE.apk...");
    };
    let [org, version, repo, files @ ..] = rest else {
        bail!("usage: publish STORAGE [CONFIG_STORAGE] ORG VERSION REPO FILE.apk...");
    };
    let repo = RepoId::parse(org, "alpine", version, repo).context("repository name")?;

    let publisher = Publisher::new(stores);
    for file in files {
        let upload = Upload {
            repo: repo.clone(),
            arch: None,
            extra_arches: Vec::new(),
            path: PathBuf::from(file),
            display_name: file.clone(),
        };
        let published = publisher
            .upload(&upload)
            .await
            .with_context(|| format!("publishing {file}"))?;
        for p in published {
            let what = if p.unchanged {
                "unchanged"
            } else {
                "published"
            };
            println!("{what} {}-{} ({})", p.record.name, p.record.version, p.arch);
        }
    }
    Ok(())
}
