//! Reading `repomd.xml` back: a small, strict XML reader (elements,
//! attributes, text, the five predefined entities and character references,
//! comments, CDATA and processing instructions; no DOCTYPE, so no entity
//! definitions) and the rules of a usable `repomd.xml`.

use super::{RepodataError, RepomdData};

/// Deepest element nesting accepted (`repomd.xml` needs 3).
const MAX_DEPTH: usize = 32;

/// Reads back what a published `repomd.xml` references (for check and
/// garbage collection): every `<data>` record, in document order. Refuses,
/// with an error naming the problem, text that is not well-formed XML, a
/// root other than `<repomd>`, a record without a type, checksum, location,
/// timestamp or size, a checksum that is not SHA-256 hex, a location that
/// is absolute, has a `..` segment or an `xml:base`, a number that is not
/// one, and two records of one type. Unknown elements are skipped.
pub fn parse_repomd(text: &str) -> Result<Vec<RepomdData>, RepodataError> {
    let root = Reader::new(text).document()?;
    if local(&root.name) != "repomd" {
        return Err(bad(format!(
            "the root element is <{}>, not <repomd>",
            root.name
        )));
    }
    let mut out: Vec<RepomdData> = Vec::new();
    for data in root.elements().filter(|e| local(&e.name) == "data") {
        let record = data_record(data)?;
        if out.iter().any(|d| d.kind == record.kind) {
            return Err(bad(format!("two <data type=\"{}\"> records", record.kind)));
        }
        out.push(record);
    }
    Ok(out)
}

fn bad(problem: String) -> RepodataError {
    RepodataError::Repomd(problem)
}

/// The name without its namespace prefix.
fn local(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, l)| l)
}

fn data_record(data: &Element) -> Result<RepomdData, RepodataError> {
    let kind = data
        .attr("type")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("a <data> record without a type".to_owned()))?
        .to_owned();
    let child = |name: &str| data.elements().find(|e| local(&e.name) == name);
    let need = |name: &str| {
        child(name).ok_or_else(|| bad(format!("<data type=\"{kind}\"> has no <{name}>")))
    };
    let number = |name: &str, e: &Element| {
        let t = e.text();
        t.trim().parse::<u64>().map_err(|_| {
            bad(format!(
                "<data type=\"{kind}\">: <{name}> {t:?} is not a number"
            ))
        })
    };
    let checksum = |name: &str, e: &Element| {
        let algo = e.attr("type").unwrap_or("");
        if algo != "sha256" {
            return Err(bad(format!(
                "<data type=\"{kind}\">: <{name}> of type {algo:?} (only sha256 is supported)"
            )));
        }
        let hex = e.text().trim().to_ascii_lowercase();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!(
                "<data type=\"{kind}\">: <{name}> {hex:?} is not a SHA-256 in hex"
            )));
        }
        Ok(hex)
    };

    let location = need("location")?;
    if location.attr("xml:base").is_some() {
        return Err(bad(format!(
            "<data type=\"{kind}\">: a location with xml:base (another server) is not supported"
        )));
    }
    let href = location
        .attr("href")
        .ok_or_else(|| bad(format!("<data type=\"{kind}\">: <location> has no href")))?;
    if href.is_empty()
        || href.starts_with('/')
        || href.contains('\\')
        || href.contains("://")
        || href
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        || href.chars().any(char::is_control)
    {
        return Err(bad(format!(
            "<data type=\"{kind}\">: location {href:?} is not a plain relative path"
        )));
    }
    Ok(RepomdData {
        checksum: checksum("checksum", need("checksum")?)?,
        open_checksum: child("open-checksum")
            .map(|e| checksum("open-checksum", e))
            .transpose()?,
        href: href.to_owned(),
        timestamp: number("timestamp", need("timestamp")?)?,
        size: number("size", need("size")?)?,
        open_size: child("open-size")
            .map(|e| number("open-size", e))
            .transpose()?,
        kind,
    })
}

/// An element as read: name, attributes in order, children.
#[derive(Debug)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
}

#[derive(Debug)]
enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// All text directly inside.
    fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }
}

struct Reader<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(s: &'a str) -> Self {
        Self { s, pos: 0 }
    }

    fn err<T>(&self, problem: impl Into<String>) -> Result<T, RepodataError> {
        Err(RepodataError::Xml {
            offset: self.pos,
            problem: problem.into(),
        })
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn eat(&mut self, prefix: &str) -> bool {
        let found = self.rest().starts_with(prefix);
        if found {
            self.pos += prefix.len();
        }
        found
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start_matches([' ', '\t', '\r', '\n']).len();
    }

    /// Moves past the next `end`, refusing the end of input.
    fn skip_past(&mut self, end: &str, what: &str) -> Result<&'a str, RepodataError> {
        match self.rest().find(end) {
            Some(i) => {
                let inside = &self.rest()[..i];
                self.pos += i + end.len();
                Ok(inside)
            }
            None => self.err(format!("unterminated {what}")),
        }
    }

    /// Comments, processing instructions and white space between elements.
    fn skip_misc(&mut self) -> Result<(), RepodataError> {
        loop {
            self.skip_space();
            if self.eat("<!--") {
                self.skip_past("-->", "comment")?;
            } else if self.eat("<?") {
                self.skip_past("?>", "processing instruction")?;
            } else if self.rest().starts_with("<!") {
                return self.err("a DOCTYPE or other declaration (not accepted)");
            } else {
                return Ok(());
            }
        }
    }

    /// The whole document: prolog, one root element, trailing misc.
    fn document(&mut self) -> Result<Element, RepodataError> {
        self.eat("\u{feff}");
        self.skip_misc()?;
        if !self.rest().starts_with('<') {
            return self.err("no root element");
        }
        let root = self.element(0)?;
        self.skip_misc()?;
        if !self.rest().is_empty() {
            return self.err("content after the root element");
        }
        Ok(root)
    }

    fn name(&mut self) -> Result<&'a str, RepodataError> {
        let rest = self.rest();
        let len = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | '>' | '=' | '<' | '"' | '\''))
            .unwrap_or(rest.len());
        let name = &rest[..len];
        match name.chars().next() {
            Some(c) if c.is_alphabetic() || c == '_' || c == ':' => {
                self.pos += len;
                Ok(name)
            }
            _ => self.err("expected a name"),
        }
    }

    /// One element, starting at its `<`.
    fn element(&mut self, depth: usize) -> Result<Element, RepodataError> {
        if depth >= MAX_DEPTH {
            return self.err(format!("elements nested deeper than {MAX_DEPTH}"));
        }
        self.eat("<");
        let name = self.name()?.to_owned();
        let mut attrs: Vec<(String, String)> = Vec::new();
        loop {
            let before = self.pos;
            self.skip_space();
            if self.eat("/>") {
                return Ok(Element {
                    name,
                    attrs,
                    children: Vec::new(),
                });
            }
            if self.eat(">") {
                break;
            }
            if self.pos == before {
                return self.err(format!("expected white space, `>` or `/>` in <{name}>"));
            }
            let attr = self.name()?.to_owned();
            self.skip_space();
            if !self.eat("=") {
                return self.err(format!("attribute {attr} of <{name}> has no value"));
            }
            self.skip_space();
            let quote = match self.rest().chars().next() {
                Some(q @ ('"' | '\'')) => q,
                _ => return self.err(format!("attribute {attr} of <{name}> is not quoted")),
            };
            self.pos += 1;
            let raw = self.skip_past(&quote.to_string(), "attribute value")?;
            if raw.contains('<') {
                return self.err(format!("`<` in attribute {attr} of <{name}>"));
            }
            let value = self.unescape(raw)?;
            if attrs.iter().any(|(n, _)| *n == attr) {
                return self.err(format!("attribute {attr} repeated in <{name}>"));
            }
            attrs.push((attr, value));
        }
        let mut children = Vec::new();
        loop {
            let text_len = self.rest().find('<').unwrap_or(self.rest().len());
            if text_len > 0 {
                let raw = &self.rest()[..text_len];
                let text = self.unescape(raw)?;
                self.pos += text_len;
                children.push(Node::Text(text));
            }
            if self.rest().is_empty() {
                return self.err(format!("<{name}> is not closed"));
            }
            if self.eat("</") {
                let close = self.name()?;
                if close != name {
                    return self.err(format!("</{close}> closes <{name}>"));
                }
                self.skip_space();
                if !self.eat(">") {
                    return self.err(format!("expected `>` after </{name}"));
                }
                return Ok(Element {
                    name,
                    attrs,
                    children,
                });
            } else if self.eat("<!--") {
                self.skip_past("-->", "comment")?;
            } else if self.eat("<![CDATA[") {
                let text = self.skip_past("]]>", "CDATA section")?;
                children.push(Node::Text(text.to_owned()));
            } else if self.eat("<?") {
                self.skip_past("?>", "processing instruction")?;
            } else if self.rest().starts_with("<!") {
                return self.err("a declaration inside an element");
            } else {
                children.push(Node::Element(self.element(depth + 1)?));
            }
        }
    }

    /// Replaces entity and character references; refuses any other `&`
    /// and characters XML forbids.
    fn unescape(&self, raw: &str) -> Result<String, RepodataError> {
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(amp) = rest.find('&') {
            out.push_str(&rest[..amp]);
            let after = &rest[amp + 1..];
            let Some(semi) = after.find(';') else {
                return self.err("`&` without `;`");
            };
            let entity = &after[..semi];
            let c = match entity {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let code = if let Some(hex) = entity.strip_prefix("#x") {
                        u32::from_str_radix(hex, 16).ok()
                    } else if let Some(dec) = entity.strip_prefix('#') {
                        dec.parse::<u32>().ok()
                    } else {
                        return self.err(format!("unknown entity &{entity};"));
                    };
                    match code.and_then(char::from_u32) {
                        Some(c) if !super::forbidden(c) => c,
                        _ => return self.err(format!("invalid character reference &{entity};")),
                    }
                }
            };
            out.push(c);
            rest = &after[semi + 1..];
        }
        out.push_str(rest);
        if let Some(c) = out.chars().find(|&c| super::forbidden(c)) {
            return self.err(format!("character {c:?} is not allowed in XML"));
        }
        Ok(out)
    }
}
