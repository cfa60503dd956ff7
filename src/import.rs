//! `packages import --from-dir DIR`: moves a tree written by the service we
//! replace (atlascloud/packages) into our store: its orgs, its signing keys
//! (under the file names clients already trust), its plaintext org tokens
//! (stored hashed, same secret), and every package, checked again by our
//! readers, indexed and signed with the imported key.
//!
//! The old layout, with references to its source, is in `docs/import.md`;
//! [`layout`] reads it. Every step goes through the ordinary use cases
//! ([`Publisher::create_org`], [`crate::keys::import_keeping_name`],
//! [`Tokens::store_given`], [`Publisher::upload`]) and first looks whether its
//! result is already there, so a second run changes nothing and reports
//! everything as skipped, and a run stopped midway (crash, store outage)
//! completes when started again. Packages are read from disk one at a time,
//! streaming: memory does not grow with the tree.
//!
//! What cannot be imported (an invalid name, a corrupt package, a weak
//! token) is refused with the reason and the rest goes on; a store failure
//! stops the run (start it again once the store is back).

mod layout;
mod steps;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::publish::Publisher;
use crate::tokens::Tokens;

pub use layout::{OLD_TOKEN_READ_LIMIT, read_old_token};

/// What to import, and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The old service's base directory (its `-dir`, holding `static/` and `config/`).
    pub from_dir: PathBuf,
    /// Check and report everything, write nothing.
    pub dry_run: bool,
}

/// What an entry of the report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An organization.
    Org,
    /// A signing key.
    Key,
    /// A token file.
    Token,
    /// A package file.
    Package,
    /// Anything else found in the tree (indexes, public keys, stray files).
    Other,
}

/// What happened to an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Imported (in a dry run: would be).
    Imported,
    /// Already there, or not needed; the reason says which.
    Skipped,
    /// Cannot be imported; the reason says why.
    Refused,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// What it is.
    pub kind: Kind,
    /// Its path under the imported directory.
    pub source: String,
    /// Where it went in our store (`acme/alpine/edge/main/x86_64/foo-1.0-r0.apk`,
    /// a key name, a token id prefix), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// What happened.
    pub outcome: Outcome,
    /// Why (always set for skipped and refused entries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Counts of a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Entries imported (or that would be).
    pub imported: usize,
    /// Entries skipped.
    pub skipped: usize,
    /// Entries refused.
    pub refused: usize,
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The directory imported.
    pub from_dir: String,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Every entry, in the order handled.
    pub entries: Vec<Entry>,
    /// Their counts.
    pub counts: Counts,
}

impl Report {
    fn push(&mut self, entry: Entry) {
        match entry.outcome {
            Outcome::Imported => self.counts.imported += 1,
            Outcome::Skipped => self.counts.skipped += 1,
            Outcome::Refused => self.counts.refused += 1,
        }
        tracing::debug!(source = %entry.source, outcome = ?entry.outcome, "import");
        self.entries.push(entry);
    }

    /// The entries with this outcome.
    pub fn with_outcome(&self, outcome: Outcome) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(move |e| e.outcome == outcome)
    }
}

/// Why an import stopped before its end (a refused entry does not stop it).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The directory is not an old service's tree.
    #[error("{0}")]
    NotATree(String),
    /// Reading the directory failed.
    #[error("{path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The store failed: nothing is lost, run the import again.
    #[error("the store failed (run the import again to resume): {0}")]
    Store(String),
}

/// Imports the tree at `options.from_dir` into the stores of `publisher`.
pub async fn import(
    publisher: &Publisher,
    tokens: &Tokens,
    options: &ImportOptions,
) -> Result<Report, ImportError> {
    let root = options.from_dir.as_path();
    let tree = layout::OldTree::read(root)?;
    let mut run = steps::Run {
        publisher,
        tokens,
        root,
        dry_run: options.dry_run,
        report: Report {
            from_dir: root.display().to_string(),
            dry_run: options.dry_run,
            entries: Vec::new(),
            counts: Counts::default(),
        },
    };
    for note in tree.notes {
        run.report.push(note);
    }
    for org in &tree.orgs {
        run.org(org).await?;
    }
    Ok(run.report)
}

/// `path` relative to `root`, for the report.
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}
