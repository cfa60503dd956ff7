//! `packages upload`, `list` and `remove`: publish packages, list them, take
//! them out of the index; in the store, or through a server in remote mode
//! ([`Backend`]), with the same output.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use super::args::RepoArgs;
use super::output::{print_json, print_published};
use super::remote::Backend;
use crate::publish::{Publisher, Upload};
use crate::repo::{Arch, RepoId};
use crate::wire::client::Client;
use crate::wire::{PackageInfo, PublishedPackage};

/// `packages upload ...`
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Organization
    #[arg(long)]
    pub org: String,
    /// Distro
    #[arg(long, default_value = "alpine")]
    pub distro: String,
    /// Distro version (e.g. `v3.20`, `edge`)
    #[arg(long)]
    pub version: String,
    /// Repository (e.g. `main`)
    #[arg(long)]
    pub repo: String,
    /// Target arch: must match the package; for a noarch package, the arches to publish it into (repeatable; default: every arch of the repo)
    #[arg(long)]
    pub arch: Vec<String>,
    /// Create the repository (and its version) when it does not exist; without it an unknown
    /// version or repository is an error that names the closest existing one
    #[arg(long)]
    pub create: bool,
    /// The `.apk` files. Every file is checked before any is stored: if one
    /// is refused, nothing is published. A file refused because the repo
    /// holds a different package under its name is reported and the others
    /// are published. Each arch's index is signed once for the whole batch.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// `packages remove ...`
#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Package names (every version) or file names (`<name>-<version>.apk`)
    #[arg(required = true)]
    pub packages: Vec<String>,
}

/// Runs `packages upload` against the store.
pub(super) async fn upload(publisher: &Publisher, args: UploadArgs, json: bool) -> Result<()> {
    let repo = RepoId::parse(&args.org, &args.distro, &args.version, &args.repo)?;
    let arches = args
        .arch
        .iter()
        .map(|a| Arch::parse(a))
        .collect::<Result<Vec<_>, _>>()?;
    // Check that every file is readable before publishing any.
    for file in &args.files {
        if !file.is_file() {
            bail!("{}: no such file", file.display());
        }
    }
    let progress = indicatif::ProgressBar::new_spinner();
    progress.enable_steady_tick(std::time::Duration::from_millis(120));
    progress.set_message(format!(
        "checking and publishing {} file(s)",
        args.files.len()
    ));
    publisher.check_upload_target(&repo, args.create).await?;
    let (arch, extra) = match arches.split_first() {
        Some((first, rest)) => (Some(first.clone()), rest.to_vec()),
        None => (None, Vec::new()),
    };
    let uploads: Vec<Upload> = args
        .files
        .iter()
        .map(|file| Upload {
            repo: repo.clone(),
            arch: arch.clone(),
            extra_arches: extra.clone(),
            path: file.clone(),
            display_name: file.display().to_string(),
        })
        .collect();
    // One batch: every file is checked before any is stored, and each repo
    // arch is published once.
    let outcome = publisher.upload_many(&uploads).await;
    progress.finish_and_clear();
    let mut results = Vec::new();
    let mut refused = Vec::new();
    for (upload, result) in uploads.iter().zip(outcome?) {
        match result {
            Ok(published) => {
                if !json {
                    print_published(
                        &upload.display_name,
                        &repo,
                        published.iter().map(|p| {
                            (
                                p.record.name.as_str(),
                                p.record.version.as_str(),
                                p.arch.as_str(),
                                p.unchanged,
                            )
                        }),
                    );
                }
                results.extend(published.into_iter().map(PublishedPackage::from));
            }
            Err(e) => refused.push(e),
        }
    }
    if json {
        print_json(&results)?;
    }
    match refused.len() {
        0 => Ok(()),
        1 => Err(refused.remove(0).into()),
        n => {
            for e in &refused {
                eprintln!("error: {e}");
            }
            bail!("{n} files were refused (the others are published)")
        }
    }
}

/// `upload --server`: the same checks and output as the direct mode, through the API.
pub(super) async fn remote_upload(client: &Client, args: &UploadArgs, json: bool) -> Result<()> {
    let repo = RepoId::parse(&args.org, &args.distro, &args.version, &args.repo)?;
    let arches = args
        .arch
        .iter()
        .map(|a| Arch::parse(a))
        .collect::<Result<Vec<_>, _>>()?;
    for file in &args.files {
        if !file.is_file() {
            bail!("{}: no such file", file.display());
        }
    }
    let progress = indicatif::ProgressBar::new(0);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{bytes}/{total_bytes}] {bytes_per_sec} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    progress.enable_steady_tick(std::time::Duration::from_millis(120));
    let mut results = Vec::new();
    for file in &args.files {
        let display = file.display().to_string();
        progress.set_message(display.clone());
        progress.set_position(0);
        progress.set_length(std::fs::metadata(file).map(|m| m.len()).unwrap_or(0));
        let bar = progress.clone();
        let published = match client
            .upload(&repo, &arches, file, args.create, move |sent| {
                bar.set_position(sent)
            })
            .await
        {
            Ok(p) => p,
            Err(e) => {
                progress.finish_and_clear();
                return Err(anyhow::Error::new(e).context(format!("{display}: upload failed")));
            }
        };
        if !json {
            progress.suspend(|| {
                print_published(
                    &display,
                    &repo,
                    published.iter().map(|p| {
                        (
                            p.record.name.as_str(),
                            p.record.version.as_str(),
                            p.arch.as_str(),
                            p.unchanged,
                        )
                    }),
                )
            });
        }
        results.extend(published);
    }
    progress.finish_and_clear();
    if json {
        print_json(&results)?;
    }
    Ok(())
}

/// Runs `packages list`.
pub(super) async fn list<'a>(
    backend: impl Into<Backend<'a>>,
    args: RepoArgs,
    json: bool,
) -> Result<()> {
    let listed = backend
        .into()
        .list(&args.repo()?, args.arch()?.as_ref())
        .await?;
    print_listed(&listed, json)
}

/// Prints a listing: one line per package and arch, or the JSON array.
fn print_listed(listed: &[PackageInfo], json: bool) -> Result<()> {
    if json {
        return print_json(&listed);
    }
    for l in listed {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            l.arch, l.name, l.version, l.size, l.checksum
        );
    }
    Ok(())
}

/// Runs `packages remove`.
pub(super) async fn remove<'a>(
    backend: impl Into<Backend<'a>>,
    args: RemoveArgs,
    json: bool,
) -> Result<()> {
    let backend = backend.into();
    let repo = args.repo.repo()?;
    let arch = args.repo.arch()?;
    let mut removed = Vec::new();
    for what in &args.packages {
        removed.extend(backend.remove(&repo, arch.as_ref(), what).await?);
    }
    if json {
        return print_json(&removed);
    }
    for l in &removed {
        println!("removed {} from {}/{}", l.file, repo, l.arch);
    }
    Ok(())
}
