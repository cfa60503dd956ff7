//! RPM repository metadata (`repodata/`), as dnf reads it and as
//! createrepo_c 0.17 writes it: the `primary`, `filelists` and `other`
//! documents, one `<package>` element per package in each, and `repomd.xml`,
//! which names them by checksum.
//!
//! Pure code: values in, text out. [`package_xml`] renders one package's
//! three elements from what [`read_rpm`](super::read_rpm) found and from the
//! facts of the file as published ([`PublishedFile`]: its checksum, size,
//! mtime and header range, which differ from the uploaded file's when the
//! service signs it). A publisher keeps each package's elements and joins
//! them between [`primary_head`] and [`PRIMARY_TAIL`] (and the same for
//! `filelists` and `other`), so adding a package never re-reads the others.
//! [`parse_repomd`] reads back what a `repomd.xml` references.
//!
//! The output is byte for byte what createrepo_c 0.17.3 (`src/xml_dump*.c`
//! over libxml2 2.9) writes for the same file, which the tests check against
//! Debian's `createrepo_c`. The escaping follows libxml2's serializer:
//! - element text: `&` `<` `>` as entities and carriage return as `&#13;`;
//!   quotes and non-ASCII characters as they are;
//! - attribute values: `&` `<` `>` `"` as entities, tab, newline and
//!   carriage return as `&#9;` `&#10;` `&#13;`, and every non-ASCII
//!   character as a hexadecimal reference (`é` is `&#xE9;`): libxml2 does
//!   that for nodes without a document, which is how createrepo_c dumps.
//!
//! Characters XML 1.0 forbids (control characters below U+0020 other than
//! tab, newline and carriage return, and U+FFFE, U+FFFF) cannot appear in a
//! document dnf accepts. createrepo_c 0.17 refuses a package holding one in
//! any string it writes ("Forbidden control chars found") and leaves it out
//! of the repository. Here [`forbidden_chars`] finds them, so a publisher
//! can refuse such an upload the same way, and the renderer drops them, so
//! that no input can make a document a client refuses. (The reader already
//! refuses strings that are not UTF-8, which createrepo_c would convert
//! from Latin-1.)
//!
//! Known differences from createrepo_c, all on packages rpmbuild 4.18 does
//! not make: a dependency whose version has a non-numeric epoch (`x:1`) is
//! skipped by createrepo_c and written with epoch `0` here; a require and a
//! provide that differ only in an explicit `0:` epoch count as identical
//! here (createrepo_c compares the raw version strings); legacy
//! `OLDSUGGESTS`/`OLDENHANCES` tags (pre-4.12 SUSE packages) are not read;
//! and `xml:base` locations are never written.

mod parse;

use std::fmt::Write as _;

pub use parse::parse_repomd;

use super::{Dependency, RpmPackage};

/// How many changelog entries `other` keeps per package, newest ones
/// (createrepo_c's `--changelog-limit` default).
pub const CHANGELOG_LIMIT: usize = 10;

/// End of the `primary` document (createrepo_c writes no newline after it).
pub const PRIMARY_TAIL: &str = "</metadata>";
/// End of the `filelists` document.
pub const FILELISTS_TAIL: &str = "</filelists>";
/// End of the `other` document.
pub const OTHER_TAIL: &str = "</otherdata>";

/// RPMSENSE_MISSINGOK.
const SENSE_MISSINGOK: u32 = 1 << 19;

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
const NS_COMMON: &str = "http://linux.duke.edu/metadata/common";
const NS_RPM: &str = "http://linux.duke.edu/metadata/rpm";
const NS_FILELISTS: &str = "http://linux.duke.edu/metadata/filelists";
const NS_OTHER: &str = "http://linux.duke.edu/metadata/other";
const NS_REPO: &str = "http://linux.duke.edu/metadata/repo";

/// Facts about the file as published (they may differ from the uploaded
/// file when the service re-signs it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedFile {
    /// Path relative to the repository root (the directory holding
    /// `repodata/`), e.g. `Packages/a/acc-lib-1.2.0-1.x86_64.rpm`.
    pub location_href: String,
    /// SHA-256 of the whole file, lowercase hex: the package's `pkgid`.
    pub sha256: String,
    /// Size of the file in bytes.
    pub size: u64,
    /// Unix time written as `<time file=…>` (createrepo_c uses the file's
    /// mtime).
    pub time_file: u64,
    /// Offset where the main header starts (`rpm:header-range start`).
    pub header_start: u64,
    /// Offset where the main header ends (`rpm:header-range end`).
    pub header_end: u64,
}

/// One package's three XML fragments (each a complete
/// `<package>…</package>` element with a trailing newline), as createrepo_c
/// 0.17 writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageXml {
    /// The element for `primary.xml`.
    pub primary: String,
    /// The element for `filelists.xml`.
    pub filelists: String,
    /// The element for `other.xml`.
    pub other: String,
}

/// One `<data type=…>` entry of `repomd.xml`. Checksums are SHA-256, the
/// only type written or read here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepomdData {
    /// The record type: `primary`, `filelists`, `other` (others, such as
    /// `primary_db` or `updateinfo`, are read back but not written here).
    pub kind: String,
    /// Location relative to the repository root,
    /// `repodata/<sha256>-primary.xml.gz` (see [`metadata_href`]).
    pub href: String,
    /// SHA-256 of the file as stored (compressed), lowercase hex.
    pub checksum: String,
    /// Size of the file as stored.
    pub size: u64,
    /// SHA-256 of the decompressed document.
    pub open_checksum: Option<String>,
    /// Size of the decompressed document.
    pub open_size: Option<u64>,
    /// Unix time of the record (createrepo_c: the file's mtime).
    pub timestamp: u64,
}

/// Why a `repomd.xml` was refused.
#[derive(Debug, thiserror::Error)]
pub enum RepodataError {
    /// The text is not well-formed XML (as far as `repomd.xml` needs).
    #[error("repomd.xml is not well-formed XML at byte {offset}: {problem}")]
    Xml {
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        problem: String,
    },
    /// Well-formed, but not a `repomd.xml` we can use.
    #[error("repomd.xml: {0}")]
    Repomd(String),
}

/// The content-named location of a metadata file, as createrepo_c names
/// them by default: `repodata/<sha256>-<kind>.xml.<ext>` (`ext` is `gz` or
/// `zst`).
pub fn metadata_href(kind: &str, sha256: &str, ext: &str) -> String {
    format!("repodata/{sha256}-{kind}.xml.{ext}")
}

/// The head of `primary.xml`, through the opening `<metadata>` tag.
pub fn primary_head(count: usize) -> String {
    format!(
        "{XML_DECL}<metadata xmlns=\"{NS_COMMON}\" xmlns:rpm=\"{NS_RPM}\" packages=\"{count}\">\n"
    )
}

/// The head of `filelists.xml`, through the opening `<filelists>` tag.
pub fn filelists_head(count: usize) -> String {
    format!("{XML_DECL}<filelists xmlns=\"{NS_FILELISTS}\" packages=\"{count}\">\n")
}

/// The head of `other.xml`, through the opening `<otherdata>` tag.
pub fn other_head(count: usize) -> String {
    format!("{XML_DECL}<otherdata xmlns=\"{NS_OTHER}\" packages=\"{count}\">\n")
}

/// The first character of `s` that XML 1.0 forbids (see the module
/// documentation) in any string a package's metadata holds, with where it
/// was found: `Some(("summary", '\u{7}'))`. createrepo_c refuses such a
/// package; a publisher should refuse the upload. `None` when all is well.
pub fn forbidden_chars(pkg: &RpmPackage) -> Option<(String, char)> {
    let first = |s: &str| s.chars().find(|&c| forbidden(c));
    let opt = |s: &Option<String>| s.as_deref().and_then(first);
    let fields: [(&str, Option<char>); 13] = [
        ("name", first(&pkg.name)),
        ("version", first(&pkg.version)),
        ("release", first(&pkg.release)),
        ("arch", first(&pkg.arch)),
        ("summary", first(&pkg.summary)),
        ("description", first(&pkg.description)),
        ("url", opt(&pkg.url)),
        ("license", opt(&pkg.license)),
        ("vendor", opt(&pkg.vendor)),
        ("group", opt(&pkg.group)),
        ("buildhost", opt(&pkg.buildhost)),
        ("sourcerpm", first(&pkg.sourcerpm)),
        ("packager", opt(&pkg.packager)),
    ];
    if let Some((field, c)) = fields.into_iter().find_map(|(f, c)| c.map(|c| (f, c))) {
        return Some((field.to_owned(), c));
    }
    let lists = [
        ("requires", &pkg.requires),
        ("provides", &pkg.provides),
        ("conflicts", &pkg.conflicts),
        ("obsoletes", &pkg.obsoletes),
        ("recommends", &pkg.recommends),
        ("suggests", &pkg.suggests),
        ("supplements", &pkg.supplements),
        ("enhances", &pkg.enhances),
    ];
    for (what, list) in lists {
        for d in list {
            let found = first(&d.name)
                .or_else(|| opt(&d.epoch))
                .or_else(|| opt(&d.version))
                .or_else(|| opt(&d.release));
            if let Some(c) = found {
                return Some((format!("{what} entry {:?}", d.name), c));
            }
        }
    }
    if let Some((f, c)) = pkg
        .files
        .iter()
        .find_map(|f| first(&f.path).map(|c| (f, c)))
    {
        return Some((format!("file {:?}", f.path), c));
    }
    pkg.changelog.iter().find_map(|e| {
        first(&e.author)
            .or_else(|| first(&e.text))
            .map(|c| (format!("changelog entry by {:?}", e.author), c))
    })
}

/// Renders one package's `primary`, `filelists` and `other` elements.
/// Everything about the file itself (checksum, size, mtime, header range,
/// location) comes from `file`; the rest from `pkg`. Requires are filtered
/// as createrepo_c does ([`RpmPackage::primary_requires`]), the changelog is
/// its newest [`CHANGELOG_LIMIT`] entries ([`RpmPackage::other_changelog`]).
pub fn package_xml(pkg: &RpmPackage, file: &PublishedFile) -> PackageXml {
    PackageXml {
        primary: primary_xml(pkg, file),
        filelists: filelists_xml(pkg, file),
        other: other_xml(pkg, file),
    }
}

fn primary_xml(pkg: &RpmPackage, file: &PublishedFile) -> String {
    let mut x = Xml::with_capacity(2048);
    x.raw("<package type=\"rpm\">\n");
    x.text_element(1, "name", &pkg.name);
    x.text_element(1, "arch", &pkg.arch);
    version_element(&mut x, pkg);
    x.raw("  <checksum type=\"sha256\" pkgid=\"YES\">");
    x.text(&file.sha256);
    x.raw("</checksum>\n");
    x.text_element(1, "summary", &pkg.summary);
    x.text_element(1, "description", &pkg.description);
    x.text_element(1, "packager", opt(&pkg.packager));
    x.text_element(1, "url", opt(&pkg.url));
    let _ = writeln!(
        x.out,
        "  <time file=\"{}\" build=\"{}\"/>",
        file.time_file, pkg.build_time
    );
    let _ = writeln!(
        x.out,
        "  <size package=\"{}\" installed=\"{}\" archive=\"{}\"/>",
        file.size, pkg.size_installed, pkg.size_archive
    );
    x.raw("  <location href=\"");
    x.attr(&file.location_href);
    x.raw("\"/>\n  <format>\n");
    x.text_element(2, "rpm:license", opt(&pkg.license));
    x.text_element(2, "rpm:vendor", opt(&pkg.vendor));
    x.text_element(2, "rpm:group", opt(&pkg.group));
    x.text_element(2, "rpm:buildhost", opt(&pkg.buildhost));
    x.text_element(2, "rpm:sourcerpm", &pkg.sourcerpm);
    let _ = writeln!(
        x.out,
        "    <rpm:header-range start=\"{}\" end=\"{}\"/>",
        file.header_start, file.header_end
    );
    // Requires marked MISSINGOK are weak dependencies from before rpm 4.12
    // had tags for them: createrepo_c (built with LEGACY_WEAKDEPS, as
    // Debian's and Fedora's are) lists them first among the recommends.
    let (requires, legacy): (Vec<Dependency>, Vec<Dependency>) = pkg
        .primary_requires()
        .into_iter()
        .partition(|d| d.sense & SENSE_MISSINGOK == 0);
    let recommends: Vec<Dependency> = legacy
        .into_iter()
        .map(|d| Dependency { pre: false, ..d })
        .chain(pkg.recommends.iter().cloned())
        .collect();
    // createrepo_c's order (xml_dump_primary.c), not the header's.
    dependency_list(&mut x, "rpm:provides", &pkg.provides, false);
    dependency_list(&mut x, "rpm:requires", &requires, true);
    dependency_list(&mut x, "rpm:conflicts", &pkg.conflicts, false);
    dependency_list(&mut x, "rpm:obsoletes", &pkg.obsoletes, false);
    dependency_list(&mut x, "rpm:suggests", &pkg.suggests, false);
    dependency_list(&mut x, "rpm:enhances", &pkg.enhances, false);
    dependency_list(&mut x, "rpm:recommends", &recommends, false);
    dependency_list(&mut x, "rpm:supplements", &pkg.supplements, false);
    files(&mut x, pkg, 2, true);
    x.raw("  </format>\n</package>\n");
    x.out
}

fn filelists_xml(pkg: &RpmPackage, file: &PublishedFile) -> String {
    let mut x = Xml::with_capacity(256 + 64 * pkg.files.len());
    package_open(&mut x, pkg, file);
    version_element(&mut x, pkg);
    files(&mut x, pkg, 1, false);
    x.raw("</package>\n");
    x.out
}

fn other_xml(pkg: &RpmPackage, file: &PublishedFile) -> String {
    let mut x = Xml::with_capacity(512);
    package_open(&mut x, pkg, file);
    version_element(&mut x, pkg);
    for entry in pkg.other_changelog(CHANGELOG_LIMIT) {
        x.raw("  <changelog author=\"");
        x.attr(&entry.author);
        let _ = write!(x.out, "\" date=\"{}\">", entry.time);
        x.text(&entry.text);
        x.raw("</changelog>\n");
    }
    x.raw("</package>\n");
    x.out
}

/// `<package pkgid=… name=… arch=…>` of `filelists` and `other`.
fn package_open(x: &mut Xml, pkg: &RpmPackage, file: &PublishedFile) {
    x.raw("<package pkgid=\"");
    x.attr(&file.sha256);
    x.raw("\" name=\"");
    x.attr(&pkg.name);
    x.raw("\" arch=\"");
    x.attr(&pkg.arch);
    x.raw("\">\n");
}

/// `<version epoch=… ver=… rel=…/>`, the epoch always written.
fn version_element(x: &mut Xml, pkg: &RpmPackage) {
    let _ = write!(x.out, "  <version epoch=\"{}\" ver=\"", pkg.epoch);
    x.attr(&pkg.version);
    x.raw("\" rel=\"");
    x.attr(&pkg.release);
    x.raw("\"/>\n");
}

/// One dependency list; nothing when it is empty. Entries without flags
/// carry only their name (createrepo_c ignores a version without a
/// comparison); `pre="1"` only on requires.
fn dependency_list(x: &mut Xml, element: &str, list: &[Dependency], requires: bool) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(x.out, "    <{element}>");
    for d in list {
        x.raw("      <rpm:entry name=\"");
        x.attr(&d.name);
        x.raw("\"");
        if let Some(flags) = d.flags.as_deref().filter(|f| !f.is_empty()) {
            x.attr_pair("flags", flags);
            for (name, value) in [
                ("epoch", &d.epoch),
                ("ver", &d.version),
                ("rel", &d.release),
            ] {
                if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                    x.attr_pair(name, v);
                }
            }
        }
        if requires && d.pre {
            x.raw(" pre=\"1\"");
        }
        x.raw("/>\n");
    }
    let _ = writeln!(x.out, "    </{element}>");
}

/// `<file>` elements, all of them or only the primary ones, with
/// `type="dir"` for directories and else `type="ghost"` for `%ghost` files.
fn files(x: &mut Xml, pkg: &RpmPackage, depth: usize, primary_only: bool) {
    for f in &pkg.files {
        if primary_only && !RpmPackage::is_primary_file(&f.path) {
            continue;
        }
        x.indent(depth);
        x.raw(if f.is_dir() {
            "<file type=\"dir\">"
        } else if f.is_ghost() {
            "<file type=\"ghost\">"
        } else {
            "<file>"
        });
        x.text(&f.path);
        x.raw("</file>\n");
    }
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

/// The whole `repomd.xml`: `revision` (createrepo_c writes the Unix time),
/// then one `<data>` per entry in the order given.
pub fn repomd_xml(revision: u64, data: &[RepomdData]) -> String {
    let mut x = Xml::with_capacity(512 + 600 * data.len());
    x.raw(XML_DECL);
    let _ = writeln!(
        x.out,
        "<repomd xmlns=\"{NS_REPO}\" xmlns:rpm=\"{NS_RPM}\">\n  <revision>{revision}</revision>"
    );
    for d in data {
        x.raw("  <data type=\"");
        x.attr(&d.kind);
        x.raw("\">\n    <checksum type=\"sha256\">");
        x.text(&d.checksum);
        x.raw("</checksum>\n");
        if let Some(open) = &d.open_checksum {
            x.raw("    <open-checksum type=\"sha256\">");
            x.text(open);
            x.raw("</open-checksum>\n");
        }
        x.raw("    <location href=\"");
        x.attr(&d.href);
        let _ = writeln!(
            x.out,
            "\"/>\n    <timestamp>{}</timestamp>\n    <size>{}</size>",
            d.timestamp, d.size
        );
        if let Some(open_size) = d.open_size {
            let _ = writeln!(x.out, "    <open-size>{open_size}</open-size>");
        }
        x.raw("  </data>\n");
    }
    x.raw("</repomd>\n");
    x.out
}

/// Whether XML 1.0 forbids `c` in a document (`Char` production, for the
/// characters a Rust string can hold).
fn forbidden(c: char) -> bool {
    (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}'
}

/// A string being written, with libxml2's two escapings.
struct Xml {
    out: String,
}

impl Xml {
    fn with_capacity(n: usize) -> Self {
        Self {
            out: String::with_capacity(n),
        }
    }

    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.out.push_str("  ");
        }
    }

    /// `<name>text</name>` on its own line at `depth`.
    fn text_element(&mut self, depth: usize, name: &str, text: &str) {
        self.indent(depth);
        let _ = write!(self.out, "<{name}>");
        self.text(text);
        let _ = writeln!(self.out, "</{name}>");
    }

    /// ` name="value"`.
    fn attr_pair(&mut self, name: &str, value: &str) {
        let _ = write!(self.out, " {name}=\"");
        self.attr(value);
        self.out.push('"');
    }

    /// Element text, escaped as libxml2's `xmlEscapeContent` does.
    fn text(&mut self, s: &str) {
        for c in s.chars() {
            match c {
                '&' => self.out.push_str("&amp;"),
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '\r' => self.out.push_str("&#13;"),
                c if forbidden(c) => {}
                c => self.out.push(c),
            }
        }
    }

    /// An attribute value, escaped as libxml2's
    /// `xmlBufAttrSerializeTxtContent` does for a node without a document.
    fn attr(&mut self, s: &str) {
        for c in s.chars() {
            match c {
                '&' => self.out.push_str("&amp;"),
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '"' => self.out.push_str("&quot;"),
                '\t' => self.out.push_str("&#9;"),
                '\n' => self.out.push_str("&#10;"),
                '\r' => self.out.push_str("&#13;"),
                c if forbidden(c) => {}
                c if !c.is_ascii() => {
                    let _ = write!(self.out, "&#x{:X};", u32::from(c));
                }
                c => self.out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_tools;
