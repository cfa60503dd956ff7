//! Checking rendered `APKINDEX` text the way apk-tools reads it, for indexes
//! written before the limits existed (or by anything else).
//!
//! apk-tools' reader, `apk_db_fdb_read` (3.0.6 `src/database.c` line 913) and
//! `apk_db_index_read` (2.14.10 `src/database.c` line 755), refuses the whole
//! index for: a line longer than its buffer (see the parent module), a line
//! of two bytes or more whose second byte is not `:` (3.0 line 960, 2.14 line
//! 800), and a record without `P:` or `V:` (`apk_db_pkg_add`, 2.14 line 538,
//! 3.0 line 584), which 3.0 also applies to a record without a SHA-1 `C:`
//! (line 584). An unknown upper-case field makes 3.0 refuse that one package
//! (`apk_pkgtmpl_add_info`, `src/package.c` line 531).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::super::names::{is_valid_arch, is_valid_pkgname, is_valid_version};
use super::super::{ApkRecord, index};
use super::*;

/// How bad a problem is for the clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Within what apk reads, but over this project's limits: an upload with
    /// this record would be refused today.
    Policy,
    /// apk misreads this record or refuses to install its package; the rest of
    /// the index is fine.
    Package,
    /// apk-tools 2.14 or 3.x refuses the whole index: every package of the
    /// repository becomes uninstallable.
    Index,
}

/// One problem found in index text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitProblem {
    /// How bad it is.
    pub severity: Severity,
    /// 1-based line number in the text.
    pub line: usize,
    /// 0-based number of the record (in text order) the line belongs to.
    pub record: usize,
    /// The record's `P:` and `V:` as `name-version`, when the record has them.
    pub package: Option<String>,
    /// The record's `C:`, when it has one: what repair should drop.
    pub checksum: Option<String>,
    /// The field letter, when the problem is in one field.
    pub field: Option<char>,
    /// What is wrong, for people.
    pub message: String,
}

impl std::fmt::Display for LimitProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.severity {
            Severity::Index => "breaks the whole index",
            Severity::Package => "breaks this package",
            Severity::Policy => "over a limit",
        };
        write!(f, "APKINDEX line {}", self.line)?;
        match &self.package {
            Some(package) => write!(f, " ({package})")?,
            None => write!(f, " (record {})", self.record + 1)?,
        }
        write!(f, ": {what}: {}", self.message)
    }
}

/// Upper-case fields apk reads from an index, and lower-case ones it knows;
/// installed-database fields apk skips in an index (`FMRZrqasf`, 3.0 also `g`).
const KNOWN: &str = "CPVASITULomtckDpiFMRZrqasfg";

/// Checks `APKINDEX` text (the `APKINDEX` member, uncompressed) against what
/// apk-tools 2.14 and 3.x parse and against this project's limits. Pure: no
/// I/O. An empty result means a client reads every record.
pub fn check_index_text(text: &str) -> Vec<LimitProblem> {
    let mut problems = Vec::new();
    let mut record = Record::default();
    let mut number = 0;
    let mut lines = text.split('\n').enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let line_no = i + 1;
        // The empty piece after a final `\n` is not a line.
        if line.is_empty() && lines.peek().is_none() {
            break;
        }
        if line.len() > CLIENT_MAX_LINE {
            record.push(Severity::Index, line_no, field_of(line), format!(
                "the line is {} bytes; apk-tools 2.14 and 3.x read lines of at most {CLIENT_MAX_LINE} \
                 bytes (a {CLIENT_LINE_BUFFER}-byte buffer) and refuse the whole index otherwise",
                line.len()
            ));
        }
        // apk ends a record at any line shorter than two bytes.
        if line.len() < 2 {
            if record.started {
                record.finish(&mut problems, number);
                number += 1;
            }
            record = Record::default();
            continue;
        }
        record.started = true;
        if record.first_line == 0 {
            record.first_line = line_no;
        }
        let bytes = line.as_bytes();
        if bytes[1] != b':' {
            record.push(
                Severity::Index,
                line_no,
                None,
                format!(
                    "{:?} is not a `X:value` line; apk-tools refuses the whole index",
                    truncate(line, 40)
                ),
            );
            continue;
        }
        let letter = char::from(bytes[0]);
        let value = &line[2..];
        record.field(line_no, letter, value);
    }
    if record.started {
        record.finish(&mut problems, number);
    }
    problems
}

/// Renders `record` as the index does and checks it: what repair uses to
/// decide whether a stored record may stay.
pub fn check_rendered_record(record: &ApkRecord) -> Vec<LimitProblem> {
    check_index_text(&index::render_text(std::slice::from_ref(record)))
}

fn field_of(line: &str) -> Option<char> {
    (line.as_bytes().get(1) == Some(&b':')).then(|| char::from(line.as_bytes()[0]))
}

/// Longest name-version shown in a problem.
const MAX_SHOWN: usize = 120;

fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The record being read: its identity and its problems so far.
#[derive(Debug, Default)]
struct Record {
    started: bool,
    name: Option<String>,
    version: Option<String>,
    checksum: Option<String>,
    first_line: usize,
    problems: Vec<(Severity, usize, Option<char>, String)>,
}

impl Record {
    fn push(&mut self, severity: Severity, line: usize, field: Option<char>, message: String) {
        self.problems.push((severity, line, field, message));
    }

    fn field(&mut self, line: usize, letter: char, value: &str) {
        let policy = |record: &mut Self, message: String| {
            record.push(Severity::Policy, line, Some(letter), message);
        };
        if value.chars().any(|c| c.is_control() && c != '\t') {
            policy(self, "holds a control character".to_owned());
        }
        if let Some(field) = TEXT_FIELDS.iter().find(|f| f.letter == letter) {
            if value.len() > field.max_bytes {
                policy(
                    self,
                    format!(
                        "{} is {} bytes, more than the {} allowed",
                        field.key,
                        value.len(),
                        field.max_bytes
                    ),
                );
            }
        }
        if let Some((_, key)) = LIST_FIELDS.iter().find(|(l, _)| *l == letter) {
            let len = value.len() + 2;
            if len > MAX_INDEX_LINE && len <= CLIENT_MAX_LINE {
                policy(
                    self,
                    format!(
                        "the {key} line is {len} bytes, more than the {MAX_INDEX_LINE} allowed"
                    ),
                );
            }
        }
        match letter {
            'P' => {
                if !is_valid_pkgname(value) {
                    policy(
                        self,
                        format!("{:?} is not a valid package name", truncate(value, 80)),
                    );
                }
                self.name = Some(value.to_owned());
            }
            'V' => {
                if !is_valid_version(value) {
                    policy(
                        self,
                        format!("{:?} is not a valid apk version", truncate(value, 80)),
                    );
                }
                self.version = Some(value.to_owned());
            }
            'A' if !is_valid_arch(value) => {
                policy(
                    self,
                    format!("{:?} is not a valid architecture", truncate(value, 80)),
                );
            }
            'C' => {
                let sha1 = value
                    .strip_prefix("Q1")
                    .and_then(|b64| BASE64.decode(b64).ok())
                    .is_some_and(|digest| digest.len() == 20);
                if sha1 {
                    self.checksum = Some(value.to_owned());
                } else {
                    self.push(Severity::Index, line, Some('C'), format!(
                        "{:?} is not a `Q1` SHA-1 checksum; apk-tools 3 refuses the whole index \
                         when a record has none",
                        truncate(value, 80)
                    ));
                }
            }
            'S' | 'I' | 't' | 'k' => self.number(line, letter, value),
            _ if !KNOWN.contains(letter) => {
                if letter.is_ascii_lowercase() {
                    policy(
                        self,
                        "unknown field (apk warns that it is too old)".to_owned(),
                    );
                } else {
                    self.push(
                        Severity::Package,
                        line,
                        Some(letter),
                        "unknown upper-case field: \
                        apk-tools 3 refuses to install the package"
                            .to_owned(),
                    );
                }
            }
            _ => {}
        }
    }

    fn number(&mut self, line: usize, letter: char, value: &str) {
        let Ok(n) = value.parse::<u64>() else {
            self.push(
                Severity::Package,
                line,
                Some(letter),
                format!(
                    "{:?} is not a decimal number; apk misreads it",
                    truncate(value, 40)
                ),
            );
            return;
        };
        match letter {
            'k' if n > MAX_PROVIDER_PRIORITY => self.push(Severity::Package, line, Some('k'), format!(
                "provider priority {n} is more than {MAX_PROVIDER_PRIORITY}; apk keeps it in 16 bits \
                 and reads another number"
            )),
            't' if n > MAX_BUILD_TIME => self.push(Severity::Policy, line, Some('t'), format!(
                "build time {n} is more than {MAX_BUILD_TIME}; apk 2.14 reads another number"
            )),
            _ => {}
        }
    }

    fn finish(mut self, out: &mut Vec<LimitProblem>, number: usize) {
        let line = self.first_line;
        for (letter, missing) in [('P', self.name.is_none()), ('V', self.version.is_none())] {
            if missing {
                self.push(
                    Severity::Index,
                    line,
                    None,
                    format!(
                        "the record has no `{letter}:` line; apk-tools refuses the whole index"
                    ),
                );
            }
        }
        if self.checksum.is_none() && !self.problems.iter().any(|p| p.2 == Some('C')) {
            self.push(
                Severity::Index,
                line,
                None,
                "the record has no `C:` line; apk-tools 3 \
                refuses the whole index"
                    .to_owned(),
            );
        }
        // Cut, so that a record with a 100 KB name does not make 100 KB reports;
        // `checksum` identifies the record exactly.
        let package = match (&self.name, &self.version) {
            (Some(n), Some(v)) => Some(format!("{n}-{v}")),
            (Some(n), None) => Some(n.clone()),
            _ => None,
        }
        .map(|p| match truncate(&p, MAX_SHOWN) {
            cut if cut.len() < p.len() => format!("{cut}…"),
            _ => p,
        });
        out.extend(
            self.problems
                .into_iter()
                .map(|(severity, line, field, message)| LimitProblem {
                    severity,
                    line,
                    record: number,
                    package: package.clone(),
                    checksum: self.checksum.clone(),
                    field,
                    message,
                }),
        );
    }
}
