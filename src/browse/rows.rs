//! The rows of a package table, read back from the parts a commit assembles
//! its root file from (apk: `APKINDEX` text as raw deflate; Debian:
//! `Packages` text; RPM: `primary.xml` as raw deflate), so a page shows
//! exactly what the index it is written with shows.
//!
//! Parts are content-named (a chunk's id), so the rows of each part are kept
//! per process ([`cached`]): a publish that changed one chunk reads one part.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// One package as a page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Package name.
    pub name: String,
    /// Version (RPM: `[epoch:]version-release`).
    pub version: String,
    /// Architecture as the package states it.
    pub arch: String,
    /// Size of the package file in bytes.
    pub size: u64,
    /// Build (apk) or file (RPM) time, Unix seconds; `None` when the index has none (Debian).
    pub time: Option<u64>,
    /// The file, relative to the page's folder (not yet encoded).
    pub file: String,
    /// One-line description.
    pub description: String,
    /// Debian's component; `None` elsewhere.
    pub component: Option<String>,
}

impl Row {
    /// The order rows are listed in.
    pub fn sort_key(&self) -> (&str, &str, &str, &str) {
        (
            &self.name,
            &self.version,
            &self.arch,
            self.component.as_deref().unwrap_or(""),
        )
    }
}

/// Inflates a raw deflate segment ended by a full flush (a part of
/// [`crate::formats::deflate`]) into text of `text_len` bytes.
pub fn inflate(segment: &[u8], text_len: u64) -> Option<String> {
    let len = usize::try_from(text_len).ok()?;
    // One byte of room more than promised, to notice a segment that is longer.
    let mut out = Vec::with_capacity(len.saturating_add(1));
    let mut inflater = flate2::Decompress::new(false);
    inflater
        .decompress_vec(segment, &mut out, flate2::FlushDecompress::Sync)
        .ok()?;
    // A segment without its final block stops at the flush.
    (out.len() == len).then(|| String::from_utf8_lossy(&out).into_owned())
}

/// Rows of `APKINDEX` text: `P:` name, `V:` version, `A:` arch, `S:` size,
/// `t:` build time, `T:` description; the file is `<name>-<version>.apk`.
pub fn apk_rows(text: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |letter: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(letter))
                .unwrap_or("")
        };
        let (name, version) = (field("P:"), field("V:"));
        if name.is_empty() || version.is_empty() {
            continue;
        }
        rows.push(Row {
            name: name.to_owned(),
            version: version.to_owned(),
            arch: field("A:").to_owned(),
            size: field("S:").parse().unwrap_or(0),
            time: field("t:").parse().ok(),
            file: format!("{name}-{version}.apk"),
            description: field("T:").to_owned(),
            component: None,
        });
    }
    rows
}

/// Rows of Debian `Packages` text of `component`; files are `Filename:`
/// (below the distro folder) behind `up` (the way from the page up to it).
pub fn deb_rows(text: &str, component: &str, up: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map_or("", str::trim)
        };
        let (name, filename) = (field("Package"), field("Filename"));
        if name.is_empty() || filename.is_empty() {
            continue;
        }
        rows.push(Row {
            name: name.to_owned(),
            version: field("Version").to_owned(),
            arch: field("Architecture").to_owned(),
            size: field("Size").parse().unwrap_or(0),
            time: None,
            file: format!("{up}{filename}"),
            description: field("Description").to_owned(),
            component: Some(component.to_owned()),
        });
    }
    rows
}

/// Rows of `primary.xml` `<package>` elements (as this program writes them).
pub fn rpm_rows(xml: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    for element in xml.split("<package type=\"rpm\">").skip(1) {
        let text = |tag: &str| {
            let open = format!("<{tag}>");
            let start = element.find(&open)? + open.len();
            let end = element[start..].find(&format!("</{tag}>"))? + start;
            Some(unescape_xml(&element[start..end]))
        };
        let attr = |tag: &str, name: &str| {
            let start = element.find(&format!("<{tag} "))?;
            let rest = &element[start..];
            let rest = &rest[..rest.find("/>")?];
            let key = format!(" {name}=\"");
            let at = rest.find(&key)? + key.len();
            let end = rest[at..].find('"')? + at;
            Some(unescape_xml(&rest[at..end]))
        };
        let (Some(name), Some(href)) = (text("name"), attr("location", "href")) else {
            continue;
        };
        let ver = attr("version", "ver").unwrap_or_default();
        let rel = attr("version", "rel").unwrap_or_default();
        let version = match attr("version", "epoch").as_deref() {
            None | Some("0") | Some("") => format!("{ver}-{rel}"),
            Some(epoch) => format!("{epoch}:{ver}-{rel}"),
        };
        rows.push(Row {
            name,
            version,
            arch: text("arch").unwrap_or_default(),
            size: attr("size", "package")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            time: attr("time", "file").and_then(|s| s.parse().ok()),
            file: href,
            description: text("summary").unwrap_or_default(),
            component: None,
        });
    }
    rows
}

/// Undoes XML escaping (the five named entities and numeric references).
fn unescape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Most rows kept in [`cached`] before it starts over.
const CACHE_ROWS: usize = 200_000;

struct RowCache {
    rows: usize,
    parts: HashMap<String, Arc<Vec<Row>>>,
}

static CACHE: LazyLock<Mutex<RowCache>> = LazyLock::new(|| {
    Mutex::new(RowCache {
        rows: 0,
        parts: HashMap::new(),
    })
});

/// The rows of the part named `id` (a root's folder and a chunk's content
/// id: parts never change under one), read with `read` unless this process
/// read them before.
pub fn cached(id: String, read: impl FnOnce() -> Vec<Row>) -> Arc<Vec<Row>> {
    if let Some(rows) = CACHE.lock().ok().and_then(|c| c.parts.get(&id).cloned()) {
        return rows;
    }
    let rows = Arc::new(read());
    if let Ok(mut cache) = CACHE.lock() {
        if cache.rows + rows.len() > CACHE_ROWS {
            cache.parts.clear();
            cache.rows = 0;
        }
        cache.rows += rows.len();
        cache.parts.insert(id, rows.clone());
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_apk_stanzas() {
        let text = "C:Q1x=\nP:hello\nV:1.0-r0\nA:x86_64\nS:1234\nI:5\nT:says <hi>\nt:1700000000\n\n\
                    P:a\nV:2\nA:noarch\nS:9\nT:x\n\n";
        let rows = apk_rows(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].file, "hello-1.0-r0.apk");
        assert_eq!(rows[0].description, "says <hi>");
        assert_eq!((rows[0].size, rows[0].time), (1234, Some(1_700_000_000)));
        assert_eq!(rows[1].time, None);
    }

    #[test]
    fn reads_deb_stanzas() {
        let text = "Package: hello\nVersion: 1:2.0-1\nArchitecture: amd64\nFilename: pool/main/h/hello/hello_2.0-1_amd64.deb\nSize: 77\nDescription: greets\n more\n\n";
        let rows = deb_rows(text, "main", "../../");
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].file,
            "../../pool/main/h/hello/hello_2.0-1_amd64.deb"
        );
        assert_eq!((rows[0].version.as_str(), rows[0].size), ("1:2.0-1", 77));
        assert_eq!(rows[0].description, "greets");
    }

    #[test]
    fn reads_rpm_primary() {
        let xml = "<package type=\"rpm\">\n  <name>a&amp;b</name>\n  <arch>noarch</arch>\n  \
                   <version epoch=\"2\" ver=\"1.0\" rel=\"1\"/>\n  <summary>&lt;script&gt;</summary>\n  \
                   <time file=\"1700000000\" build=\"1\"/>\n  <size package=\"42\" installed=\"1\" archive=\"1\"/>\n  \
                   <location href=\"Packages/a/a&amp;b-1.0-1.noarch.rpm\"/>\n</package>\n";
        let rows = rpm_rows(xml);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].name, "a&b");
        assert_eq!(rows[0].version, "2:1.0-1");
        assert_eq!(rows[0].description, "<script>");
        assert_eq!(rows[0].file, "Packages/a/a&b-1.0-1.noarch.rpm");
        assert_eq!((rows[0].size, rows[0].time), (42, Some(1_700_000_000)));
        assert_eq!(unescape_xml("&#60;&#x3e;&bogus"), "<>&bogus");
    }

    #[test]
    fn inflates_a_flushed_segment() {
        let text = "P:x\nV:1\n\n";
        let segment = crate::formats::deflate::raw(
            text.as_bytes(),
            6,
            crate::formats::deflate::End::FullFlush,
        );
        assert_eq!(inflate(&segment, text.len() as u64).as_deref(), Some(text));
        assert_eq!(inflate(&segment, 3), None);
    }
}
