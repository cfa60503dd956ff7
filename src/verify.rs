//! `packages verify URL`: checks a published repository over HTTP the way a
//! client sees it, for every format this project publishes.
//!
//! - [`target`]: what the URL points at (format, arch folders, suite, `.repo`
//!   file) and where the published key would be.
//! - [`fetch`]: the HTTP side: small files in memory under a cap, package
//!   files streamed and hashed (a few at a time), HEAD-only checks.
//! - [`keys`]: the keys a signature is checked against (the user's files or
//!   the published ones), and public-key-only verification (RSA for apk,
//!   OpenPGP for apt and dnf).
//! - [`apk`], [`deb`], [`rpm`]: one format each: the signature, the index
//!   within client limits, every entry's file.
//! - [`report`]: what was found: problems (exit status 1), things that could
//!   not be checked (exit status 2), warnings, as text or JSON.
//!
//! The checks reuse the project's readers (`read_package` for `.apk` files,
//! `check_index_text` for APKINDEX limits, `parse_repomd`, `parse_control`),
//! so a repository this project would refuse to publish is reported too.

pub mod apk;
pub mod deb;
pub mod fetch;
pub mod keys;
pub mod report;
pub mod rpm;
mod rpm_primary;
pub mod target;

pub use fetch::{FetchOptions, Fetcher};
pub use report::{KeySource, Report};
pub use target::{FormatName, Request, Target, TargetFormat};

/// Why a repository could not be checked at all (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The URL is not usable, or its format cannot be told.
    #[error("{0}")]
    Url(String),
    /// The server could not be reached, or answered with an error for the
    /// file everything else hangs on.
    #[error("{0}")]
    Fetch(String),
    /// A key file given with `--key` cannot be read.
    #[error("{0}")]
    Key(String),
}

/// What to check and how.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Key files the user trusts (`--key`); empty: use the published key.
    pub keys: Vec<std::path::PathBuf>,
    /// Only `HEAD` each entry's file and compare sizes (`--no-download`).
    pub no_download: bool,
    /// Requests in flight at once.
    pub jobs: usize,
}

/// Checks the repository `request` names and returns what was found. An
/// `Err` means nothing could be checked (exit status 2); problems in the
/// repository are in the [`Report`].
pub async fn verify(request: &Request, options: &VerifyOptions) -> Result<Report, VerifyError> {
    let fetcher = Fetcher::new(&FetchOptions {
        jobs: options.jobs.max(1),
        download: !options.no_download,
    })?;
    let user_keys = keys::UserKeys::load(&options.keys)?;
    let target = target::resolve(&fetcher, request).await?;
    let mut report = Report::new(
        target.url.as_str(),
        target.format.name(),
        options.no_download,
    );
    match &target.format {
        TargetFormat::Apk { arches } => {
            apk::verify(&fetcher, &user_keys, arches, &mut report).await?
        }
        TargetFormat::Deb { base, suite } => {
            deb::verify(&fetcher, &user_keys, base, suite, &mut report).await?
        }
        TargetFormat::Rpm { arch_dirs, keys } => {
            rpm::verify(&fetcher, &user_keys, arch_dirs, keys, &mut report).await?
        }
    }
    report.finish(user_keys.is_empty());
    Ok(report)
}
