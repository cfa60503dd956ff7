//! Scanning `primary.xml` for what `verify` needs of each package (its
//! location, size and checksum), fed in pieces as it inflates: one
//! `<package>` element at a time is kept, never the whole document.

use super::fetch::Expected;

/// The largest single `<package>` element accepted.
pub const MAX_PACKAGE_XML: usize = 64 << 20;

/// What `verify` checks of one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrimaryPackage {
    /// `<location href>`, relative to the folder holding `repodata/`.
    pub href: String,
    /// `<size package>`.
    pub size: Option<u64>,
    /// `<checksum type>` and value.
    pub checksum: Option<Expected>,
}

/// Feeds on `primary.xml` text; [`PrimaryScanner::finish`] returns the
/// packages and what was wrong.
#[derive(Debug, Default)]
pub struct PrimaryScanner {
    buffer: Vec<u8>,
    packages: Vec<PrimaryPackage>,
    problems: Vec<String>,
    declared: Option<u64>,
    overflow: bool,
}

impl PrimaryScanner {
    /// Adds the next piece of text.
    pub fn feed(&mut self, data: &[u8]) {
        if self.overflow {
            return;
        }
        self.buffer.extend_from_slice(data);
        loop {
            if self.declared.is_none() {
                if let Some(at) = find(&self.buffer, b"<metadata") {
                    if let Some(end) = find(&self.buffer[at..], b">") {
                        let tag = String::from_utf8_lossy(&self.buffer[at..at + end]).into_owned();
                        self.declared = attr(&tag, "packages")
                            .and_then(|n| n.parse().ok())
                            .or(Some(u64::MAX));
                    }
                }
            }
            let Some(start) = find_package_start(&self.buffer) else {
                // Keep a tail that may hold the start of `<package` (and
                // everything until the `<metadata …>` tag is whole).
                if self.declared.is_some() {
                    let keep = self.buffer.len().min(16);
                    self.buffer.drain(..self.buffer.len() - keep);
                } else if self.buffer.len() > MAX_PACKAGE_XML {
                    self.problems.push(format!(
                        "no <metadata> tag in the first {MAX_PACKAGE_XML} bytes"
                    ));
                    self.overflow = true;
                    self.buffer = Vec::new();
                }
                return;
            };
            let Some(len) = find(&self.buffer[start..], b"</package>") else {
                self.buffer.drain(..start);
                if self.buffer.len() > MAX_PACKAGE_XML {
                    self.problems.push(format!(
                        "a <package> element longer than {MAX_PACKAGE_XML} bytes (the limit)"
                    ));
                    self.overflow = true;
                    self.buffer = Vec::new();
                }
                return;
            };
            let end = start + len + b"</package>".len();
            let element = String::from_utf8_lossy(&self.buffer[start..end]).into_owned();
            self.package(&element);
            self.buffer.drain(..end);
        }
    }

    fn package(&mut self, xml: &str) {
        let name = between(xml, "<name>", "</name>").unwrap_or("?").to_owned();
        let location = tag(xml, "location");
        let Some(href) = location.as_deref().and_then(|t| attr(t, "href")) else {
            self.problems
                .push(format!("package {name}: no <location href>"));
            return;
        };
        if location
            .as_deref()
            .and_then(|t| attr(t, "xml:base"))
            .is_some()
        {
            self.problems.push(format!(
                "package {name}: a location with xml:base (another server) is not checked"
            ));
            return;
        }
        let size = tag(xml, "size").and_then(|t| attr(&t, "package")?.parse().ok());
        if size.is_none() {
            self.problems
                .push(format!("package {name}: no <size package>"));
        }
        let checksum = tag(xml, "checksum").and_then(|t| {
            let value = between(xml, &t, "</checksum>")?.trim().to_ascii_lowercase();
            Some(match attr(&t, "type")?.as_str() {
                "sha256" => Expected::Sha256(value),
                "sha512" => Expected::Sha512(value),
                "sha" | "sha1" => Expected::Sha1(value),
                "md5" => Expected::Md5(value),
                _ => return None,
            })
        });
        if checksum.is_none() {
            self.problems.push(format!(
                "package {name}: no <checksum> of a type verify knows (sha256, sha512, sha1, md5)"
            ));
        }
        self.packages.push(PrimaryPackage {
            href,
            size,
            checksum,
        });
    }

    /// The packages found and the problems.
    pub fn finish(mut self) -> (Vec<PrimaryPackage>, Vec<String>) {
        if let Some(declared) = self.declared.filter(|&d| d != u64::MAX) {
            if declared != self.packages.len() as u64 && !self.overflow {
                self.problems.push(format!(
                    "<metadata packages=\"{declared}\"> but {} <package> elements",
                    self.packages.len()
                ));
            }
        }
        if self.declared.is_none() {
            self.problems.push("no <metadata> root element".to_owned());
        }
        (self.packages, self.problems)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `<package` followed by white space or `>` (not `<packager>`).
fn find_package_start(buffer: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = find(&buffer[from..], b"<package") {
        let at = from + i;
        match buffer.get(at + 8) {
            Some(b' ' | b'\t' | b'\n' | b'\r' | b'>') => return Some(at),
            Some(_) => from = at + 8,
            None => return None,
        }
    }
    None
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let len = text[start..].find(close)?;
    Some(&text[start..start + len])
}

/// The first start tag `<name …>` (the text from `<` to `>`).
fn tag(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}");
    let mut from = 0;
    while let Some(i) = xml[from..].find(&open) {
        let at = from + i;
        let after = xml[at + open.len()..].chars().next()?;
        if after.is_whitespace() || after == '>' || after == '/' {
            let end = xml[at..].find('>')?;
            return Some(xml[at..=at + end].to_owned());
        }
        from = at + open.len();
    }
    None
}

/// An attribute's value in a start tag, entities replaced.
fn attr(tag: &str, name: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = tag[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before_ok = at > 0 && tag[..at].ends_with(char::is_whitespace);
        let rest = tag[at + name.len()..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let rest = rest[1..].trim_start();
        let quote = rest.chars().next()?;
        if quote != '"' && quote != '\'' {
            return None;
        }
        let end = rest[1..].find(quote)?;
        return Some(unescape(&rest[1..=end]));
    }
    None
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIMARY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" packages="2">
<package type="rpm">
  <name>a&amp;b</name>
  <packager>x</packager>
  <checksum type="sha256" pkgid="YES">ABCD</checksum>
  <size package="120" installed="5" archive="9"/>
  <location href="Packages/a/a&amp;b-1-1.x86_64.rpm"/>
</package>
<package type="rpm"><name>c</name><checksum type="sha1" pkgid="YES">ef</checksum><size package="7"/><location href="Packages/c/c.rpm"/></package>
</metadata>
"#;

    #[test]
    fn packages_are_found_whatever_the_pieces() {
        for piece in [1, 7, 64, PRIMARY.len()] {
            let mut scanner = PrimaryScanner::default();
            for chunk in PRIMARY.as_bytes().chunks(piece) {
                scanner.feed(chunk);
            }
            let (packages, problems) = scanner.finish();
            assert!(problems.is_empty(), "{piece}: {problems:?}");
            assert_eq!(
                packages,
                vec![
                    PrimaryPackage {
                        href: "Packages/a/a&b-1-1.x86_64.rpm".into(),
                        size: Some(120),
                        checksum: Some(Expected::Sha256("abcd".into())),
                    },
                    PrimaryPackage {
                        href: "Packages/c/c.rpm".into(),
                        size: Some(7),
                        checksum: Some(Expected::Sha1("ef".into())),
                    },
                ],
                "{piece}"
            );
        }
    }

    #[test]
    fn a_wrong_count_and_missing_fields_are_problems() {
        let text = PRIMARY
            .replace("packages=\"2\"", "packages=\"3\"")
            .replace("<size package=\"7\"/>", "");
        let mut scanner = PrimaryScanner::default();
        scanner.feed(text.as_bytes());
        let (_, problems) = scanner.finish();
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
