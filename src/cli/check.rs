//! `packages check`: whether a package version is published already (exit
//! status 0: yes, 1: no, 2: the question could not be answered), from the
//! store or through a server.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::args::RepoArgs;
use super::output::print_json;
use super::remote::Backend;
use crate::repo::Arch;

/// `packages check ...`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["apkbuild", "file"])))]
pub struct CheckArgs {
    /// An `APKBUILD`: checks `<pkgname>-<pkgver>-r<pkgrel>.apk`
    #[arg(long)]
    pub apkbuild: Option<PathBuf>,
    /// A package file: checks its name and version
    #[arg(long)]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub repo: RepoArgs,
}

/// `packages check`: prints one line and exits 0 when published, 1 when not
/// (an error returns, and the binary exits 2 for it).
pub(super) async fn check(backend: Backend<'_>, args: &CheckArgs, json: bool) -> Result<()> {
    let repo = args.repo.repo()?;
    let mut arch = args.repo.arch()?;
    let family = repo.distro.family();
    let (name, _version, file) = if family == crate::repo::Family::Rpm {
        let path = args
            .file
            .clone()
            .context("an RPM distro is checked with `--file <.rpm>`")?;
        let display = path.display().to_string();
        let package = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path)?;
            crate::formats::rpm::read_rpm(
                std::io::BufReader::new(file),
                &crate::formats::rpm::RpmLimits::default(),
            )
        })
        .await?
        .with_context(|| format!("{display}: not a valid .rpm"))?;
        if arch.is_none() && !package.is_noarch() {
            arch = Some(Arch::parse(&package.arch)?);
        }
        (
            package.name.clone(),
            format!("{}-{}", package.version, package.release),
            package.file_name(),
        )
    } else if family == crate::repo::Family::Deb {
        let path = args
            .file
            .clone()
            .context("a Debian-style distro is checked with `--file <.deb>`")?;
        let display = path.display().to_string();
        let package = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path)?;
            crate::formats::deb::read_deb(
                std::io::BufReader::new(file),
                &crate::formats::deb::DebLimits::default(),
            )
        })
        .await?
        .with_context(|| format!("{display}: not a valid .deb"))?;
        (
            package.package.clone(),
            package.version.clone(),
            package.file_name(),
        )
    } else if let Some(path) = &args.apkbuild {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let parsed = crate::apkbuild::parse(&text)
            .with_context(|| format!("{}: cannot read the package version", path.display()))?;
        let version = parsed.version();
        let file = format!("{}-{version}.apk", parsed.pkgname);
        (parsed.pkgname.clone(), version, file)
    } else {
        let path = args.file.clone().context("give `--apkbuild` or `--file`")?;
        let display = path.display().to_string();
        let package = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path)?;
            crate::formats::apk::read_package(
                std::io::BufReader::new(file),
                &crate::formats::apk::ApkLimits::default(),
            )
        })
        .await?
        .with_context(|| format!("{display}: not a valid package"))?;
        if arch.is_none() && !package.is_noarch() {
            arch = Some(Arch::parse(package.arch())?);
        }
        let file = package.record.file_name();
        (
            package.record.name.clone(),
            package.record.version.clone(),
            file,
        )
    };
    let found: Vec<String> = match backend {
        Backend::Store(publisher) => match publisher.list(&repo, arch.as_ref()).await {
            Ok(listed) => listed
                .into_iter()
                .filter(|l| l.file == file)
                .map(|l| l.arch)
                .collect(),
            Err(crate::publish::PublishError::OrgNotFound(_)) => Vec::new(),
            Err(e) => return Err(e.into()),
        },
        Backend::Server(client) => {
            match client
                .list_packages(&repo, arch.as_ref(), Some(&name))
                .await
            {
                Ok(listed) => listed
                    .into_iter()
                    .filter(|p| p.file == file)
                    .map(|p| p.arch)
                    .collect(),
                // No such org, repo or arch: nothing is published there.
                Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => Vec::new(),
                Err(e) => return Err(e.into()),
            }
        }
    };
    let published = !found.is_empty();
    let place = match &arch {
        Some(arch) => format!("{repo}/{arch}"),
        None => repo.to_string(),
    };
    if json {
        print_json(&serde_json::json!({
            "file": file,
            "repo": repo.to_string(),
            "arch": arch.as_ref().map(ToString::to_string),
            "published": published,
            "arches": found,
        }))?;
    } else if published {
        println!("published: {file} in {repo}/{}", found.join(","));
    } else {
        println!("not published: {file} in {place}");
    }
    if !published {
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        // The answer is the exit status; this is not an error.
        std::process::exit(1);
    }
    Ok(())
}
