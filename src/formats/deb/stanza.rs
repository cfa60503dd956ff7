//! A package's `Packages` entry, written as `dpkg-scanpackages` writes it.
//!
//! dpkg-scanpackages (dpkg-dev 1.21) parses the control file, adds
//! `Filename`, `Size` and the checksums, and prints the fields in the order
//! `Dpkg::Control::FieldsCore` gives index stanzas (`CTRL_INDEX_PKG`),
//! followed by fields it does not know, sorted bytewise by name
//! (`Dpkg::Control::HashCore::output`). It writes no `SHA512` (dpkg's
//! checksum list is MD5, SHA-1, SHA-256); we add it right after `SHA256`,
//! where `apt-ftparchive` puts it, since apt prefers it.

use super::DebPackage;

/// dpkg's field order for `Packages` stanzas (`CTRL_INDEX_PKG` in
/// `Dpkg/Control/FieldsCore.pm`, dpkg 1.21.22), lowercase, with `SHA512`
/// added after `SHA256`.
const ORDER: &[&str] = &[
    "package",
    "package-type",
    "source",
    "version",
    "kernel-version",
    "built-for-profiles",
    "auto-built-package",
    "architecture",
    "subarchitecture",
    "installer-menu-item",
    "build-essential",
    "essential",
    "protected",
    "origin",
    "bugs",
    "maintainer",
    "installed-size",
    "pre-depends",
    "depends",
    "recommends",
    "suggests",
    "enhances",
    "conflicts",
    "breaks",
    "replaces",
    "provides",
    "built-using",
    "static-built-using",
    "filename",
    "size",
    "md5sum",
    "sha1",
    "sha256",
    "sha512",
    "section",
    "priority",
    "multi-arch",
    "homepage",
    "description",
    "tag",
    "task",
];

/// The fields `render` computes; a `.deb` whose control file carries them
/// has them replaced (dpkg-scanpackages warns about `Filename` and overwrites).
const COMPUTED: &[&str] = &["filename", "size", "md5sum", "sha1", "sha256", "sha512"];

fn rank(name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    ORDER.iter().position(|&o| o == lower)
}

/// Renders `pkg`'s stanza with `filename` (see [`DebPackage::stanza`]).
pub(super) fn render(pkg: &DebPackage, filename: &str) -> String {
    let size = pkg.size.to_string();
    let mut fields: Vec<(&str, &str)> = pkg
        .control
        .iter()
        .filter(|(n, _)| !COMPUTED.contains(&n.to_ascii_lowercase().as_str()))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    fields.extend([
        ("Filename", filename),
        ("Size", size.as_str()),
        ("MD5sum", pkg.md5.as_str()),
        ("SHA1", pkg.sha1.as_str()),
        ("SHA256", pkg.sha256.as_str()),
        ("SHA512", pkg.sha512.as_str()),
    ]);
    // Known fields by dpkg's rank, then unknown ones bytewise by name, as
    // Perl's `sort` with HashCore's comparator; the sort is stable and names
    // are unique, so this is total.
    fields.sort_by(|(a, _), (b, _)| match (rank(a), rank(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    });
    let mut out = String::new();
    for (name, value) in fields {
        write_field(&mut out, name, value);
    }
    out
}

/// One field as `Dpkg::Control::HashCore::output` writes it: empty
/// continuation lines and lines of only dots get a leading ` .`.
pub(super) fn write_field(out: &mut String, name: &str, value: &str) {
    let mut lines = value.split('\n');
    let first = lines.next().unwrap_or("");
    out.push_str(name);
    out.push(':');
    if !first.is_empty() {
        out.push(' ');
        out.push_str(first);
    }
    out.push('\n');
    for line in lines {
        let line = line.trim_end_matches(|c: char| c.is_ascii_whitespace());
        if line.is_empty() || line.bytes().all(|b| b == b'.') {
            out.push_str(" .");
        } else {
            out.push(' ');
        }
        out.push_str(line);
        out.push('\n');
    }
}
