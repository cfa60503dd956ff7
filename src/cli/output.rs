//! What commands print: data to stdout (JSON with `--json`), the same lines in
//! direct and remote mode.

use anyhow::Result;
use serde::Serialize;

use crate::repo::RepoId;

/// One line per arch a file was published into: the same in direct and remote mode.
/// Each item is `(name, version, arch, unchanged)`.
pub(super) fn print_published<'a>(
    display: &str,
    repo: &RepoId,
    published: impl IntoIterator<Item = (&'a str, &'a str, &'a str, bool)>,
) {
    for (name, version, arch, unchanged) in published {
        let note = if unchanged {
            " (already published)"
        } else {
            ""
        };
        println!("{display} {name} {version} -> {repo}/{arch}{note}");
    }
}

/// Prints `value` as pretty JSON on stdout.
pub(super) fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
