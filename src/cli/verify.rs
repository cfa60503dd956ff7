//! `packages verify URL`: checks a published repository over HTTP as a
//! client would. Exit status 0: all good; 1: problems (each listed with the
//! file and what is wrong); 2: it could not be checked.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::verify::{FormatName, Request, VerifyError, VerifyOptions, verify as run_verify};

/// A format for `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyFormat {
    /// Alpine (`APKINDEX.tar.gz`)
    Apk,
    /// Debian and Ubuntu (`dists/<suite>/InRelease`)
    Deb,
    /// RPM (`repodata/repomd.xml`)
    Rpm,
}

/// `packages verify URL ...`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The repository: an Alpine arch or repo folder, a Debian distro base
    /// (with `--suite`) or `dists/<suite>/` URL, an RPM arch folder (holding
    /// `repodata/`) or `.repo` file
    pub url: String,
    /// A public key you trust (apk `.rsa.pub`, OpenPGP `.asc`/`.gpg`); repeatable.
    /// Without it the key published next to the repository is used, which only
    /// proves the repository is consistent
    #[arg(long = "key", value_name = "FILE")]
    pub keys: Vec<PathBuf>,
    /// The format, when the URL does not tell
    #[arg(long, value_enum)]
    pub format: Option<VerifyFormat>,
    /// Debian: the suite (e.g. `bookworm`)
    #[arg(long)]
    pub suite: Option<String>,
    /// apk: the arch folders to check below a repo URL; RPM: `$basearch` of a
    /// `.repo` file (default: every arch found); repeatable
    #[arg(long = "arch")]
    pub arches: Vec<String>,
    /// Only check that each file is there with the right size (HEAD); no checksums
    #[arg(long)]
    pub no_download: bool,
    /// Requests in flight at once
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
}

/// Runs `verify`, prints the report and exits with its status.
pub(super) async fn verify(args: &VerifyArgs, json: bool) -> Result<()> {
    let request = Request {
        url: args.url.clone(),
        format: args.format.map(|f| match f {
            VerifyFormat::Apk => FormatName::Apk,
            VerifyFormat::Deb => FormatName::Deb,
            VerifyFormat::Rpm => FormatName::Rpm,
        }),
        suite: args.suite.clone(),
        arches: args.arches.clone(),
    };
    let options = VerifyOptions {
        keys: args.keys.clone(),
        no_download: args.no_download,
        jobs: usize::from(args.jobs),
    };
    let code = match run_verify(&request, &options).await {
        Ok(report) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            report.exit_code()
        }
        Err(e) => {
            let kind = match e {
                VerifyError::Url(_) => "url",
                VerifyError::Fetch(_) => "fetch",
                VerifyError::Key(_) => "key",
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "url": args.url,
                        "result": "unchecked",
                        "error": kind,
                        "message": e.to_string(),
                    }))?
                );
            }
            eprintln!("error: cannot verify {}: {e}", args.url);
            2
        }
    };
    let _ = std::io::stdout().flush();
    // The answer is the exit status: 1 and 2 are not errors of this command.
    std::process::exit(i32::from(code));
}
