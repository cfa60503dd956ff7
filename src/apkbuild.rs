//! Reads the package name and version from an `APKBUILD` without running it.
//!
//! Only plain top-level assignments are read (`pkgname=`, `pkgver=`,
//! `pkgrel=`, `arch=` and any other variable they refer to), with `'...'`,
//! `"..."` and simple `$var`/`${var}` references expanded; function bodies
//! are skipped. Anything cleverer (command substitution, `${var%...}`) is
//! refused with a message rather than guessed. The package file is
//! `<pkgname>-<pkgver>-r<pkgrel>.apk`.

use std::collections::HashMap;

use crate::formats::apk::{MAX_FILE_NAME, is_valid_pkgname, is_valid_version};

/// Longest value a variable may expand to. `$a$a$a...` chains grow
/// exponentially otherwise: a few hundred bytes of `APKBUILD` could ask for
/// gigabytes.
pub const MAX_VALUE_BYTES: usize = 64 << 10;

/// Most bytes all variables together may hold (each assignment line of a few
/// bytes could otherwise copy a [`MAX_VALUE_BYTES`] value again).
pub const MAX_VARIABLE_BYTES: usize = 1 << 20;

/// Why an `APKBUILD` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApkbuildError {
    /// A required variable is not assigned.
    #[error("no `{0}=` assignment")]
    Missing(&'static str),
    /// An assignment uses shell features we do not evaluate.
    #[error("line {line}: {reason}")]
    Unsupported {
        /// 1-based line number.
        line: usize,
        /// What was found.
        reason: String,
    },
    /// A value is not valid for its variable.
    #[error("invalid {name} `{value}`")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
}

/// What an `APKBUILD` builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apkbuild {
    /// `pkgname`.
    pub pkgname: String,
    /// `pkgver`.
    pub pkgver: String,
    /// `pkgrel`.
    pub pkgrel: u64,
    /// `arch` (e.g. `all`, `noarch`, `x86_64 aarch64`); empty when not set.
    pub arch: Vec<String>,
}

impl Apkbuild {
    /// The full version, `<pkgver>-r<pkgrel>`.
    pub fn version(&self) -> String {
        format!("{}-r{}", self.pkgver, self.pkgrel)
    }

    /// The package file name, `<pkgname>-<pkgver>-r<pkgrel>.apk`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.apk", self.pkgname, self.version())
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    vars: HashMap<String, String>,
    /// Bytes held in `vars` (names and values).
    held: usize,
}

impl Parser<'_> {
    fn unsupported(&self, reason: impl Into<String>) -> ApkbuildError {
        ApkbuildError::Unsupported {
            line: self.line,
            reason: reason.into(),
        }
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.next();
        if c == Some('\n') {
            self.line += 1;
        }
        c
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.next() {
            if c == '\n' {
                return;
            }
        }
    }

    /// Expands `$name` or `${name}` (the `$` already read).
    fn expand(&mut self, out: &mut String) -> Result<(), ApkbuildError> {
        let braced = self.chars.peek() == Some(&'{');
        if braced {
            self.next();
        }
        let mut name = String::new();
        while let Some(&c) = self.chars.peek() {
            if (name.is_empty() && is_name_start(c)) || (!name.is_empty() && is_name_char(c)) {
                name.push(c);
                self.next();
            } else {
                break;
            }
        }
        if name.is_empty() {
            return Err(self.unsupported("`$` not followed by a variable name"));
        }
        if braced && self.next() != Some('}') {
            return Err(self.unsupported(format!(
                "`${{{name}...}}` is not a simple variable reference"
            )));
        }
        match self.vars.get(&name) {
            Some(value) if out.len() + value.len() > MAX_VALUE_BYTES => {
                return Err(
                    self.unsupported(format!("the value grows beyond {MAX_VALUE_BYTES} bytes"))
                );
            }
            Some(value) => out.push_str(value),
            None => return Err(self.unsupported(format!("`${name}` is not assigned before"))),
        }
        Ok(())
    }

    /// Reads a value up to unquoted white space, `;` or end of line.
    fn value(&mut self) -> Result<String, ApkbuildError> {
        let mut out = String::new();
        while let Some(&c) = self.chars.peek() {
            match c {
                '\n' | ' ' | '\t' | ';' => break,
                '\'' => {
                    self.next();
                    loop {
                        match self.next() {
                            Some('\'') => break,
                            Some(c) => out.push(c),
                            None => return Err(self.unsupported("unterminated `'`")),
                        }
                    }
                }
                '"' => {
                    self.next();
                    loop {
                        match self.next() {
                            Some('"') => break,
                            Some('\\') => match self.next() {
                                Some('\n') => {}
                                Some(c) if matches!(c, '"' | '\\' | '$' | '`') => out.push(c),
                                Some(c) => {
                                    out.push('\\');
                                    out.push(c);
                                }
                                None => return Err(self.unsupported("unterminated `\"`")),
                            },
                            Some('$') => self.expand(&mut out)?,
                            Some('`') => return Err(self.unsupported("command substitution")),
                            Some(c) => out.push(c),
                            None => return Err(self.unsupported("unterminated `\"`")),
                        }
                    }
                }
                '$' => {
                    self.next();
                    if self.chars.peek() == Some(&'(') {
                        return Err(self.unsupported("command substitution"));
                    }
                    self.expand(&mut out)?;
                }
                '`' => return Err(self.unsupported("command substitution")),
                '\\' => {
                    self.next();
                    match self.next() {
                        Some('\n') | None => {}
                        Some(c) => out.push(c),
                    }
                }
                _ => {
                    out.push(c);
                    self.next();
                }
            }
        }
        if out.len() > MAX_VALUE_BYTES {
            return Err(self.unsupported(format!("a value longer than {MAX_VALUE_BYTES} bytes")));
        }
        Ok(out)
    }

    /// Skips a function body: up to a line that is `}` alone.
    fn skip_function(&mut self) {
        let mut line = String::new();
        while let Some(c) = self.next() {
            if c == '\n' {
                if line.trim_end() == "}" {
                    return;
                }
                line.clear();
            } else {
                line.push(c);
            }
        }
    }

    fn parse(mut self) -> Result<HashMap<String, String>, ApkbuildError> {
        loop {
            while matches!(self.chars.peek(), Some(' ' | '\t' | ';')) {
                self.next();
            }
            let Some(&c) = self.chars.peek() else {
                return Ok(self.vars);
            };
            if !is_name_start(c) {
                self.skip_line();
                continue;
            }
            let mut name = String::new();
            while let Some(&c) = self.chars.peek() {
                if is_name_char(c) {
                    name.push(c);
                    self.next();
                } else {
                    break;
                }
            }
            match self.chars.peek() {
                Some('=') => {
                    self.next();
                    let value = self.value()?;
                    let name_len = name.len();
                    self.held += name_len + value.len();
                    if self.held > MAX_VARIABLE_BYTES {
                        return Err(self.unsupported(format!(
                            "the variables hold more than {MAX_VARIABLE_BYTES} bytes"
                        )));
                    }
                    if let Some(old) = self.vars.insert(name, value) {
                        self.held -= name_len + old.len();
                    }
                    // Anything after the value on the line (a comment, `;`) is not read.
                    if self.chars.peek() != Some(&';') {
                        self.skip_line();
                    }
                }
                Some('(') => self.skip_function(),
                _ => {
                    let rest: String = {
                        let mut rest = String::new();
                        while let Some(&c) = self.chars.peek() {
                            if c == '\n' {
                                break;
                            }
                            rest.push(c);
                            self.next();
                        }
                        rest
                    };
                    // `name () {` is a function too.
                    if rest.trim_start().starts_with("()") {
                        if !rest.trim_end().ends_with('}') {
                            self.skip_function();
                        }
                    } else {
                        self.skip_line();
                    }
                }
            }
        }
    }
}

/// Reads `pkgname`, `pkgver`, `pkgrel` and `arch` from an `APKBUILD`.
pub fn parse(text: &str) -> Result<Apkbuild, ApkbuildError> {
    let vars = Parser {
        chars: text.chars().peekable(),
        line: 1,
        vars: HashMap::new(),
        held: 0,
    }
    .parse()?;
    let get = |name: &'static str| {
        vars.get(name)
            .map(|v| v.trim().to_owned())
            .ok_or(ApkbuildError::Missing(name))
    };
    let pkgname = get("pkgname")?;
    let pkgver = get("pkgver")?;
    let pkgrel_text = get("pkgrel")?;
    if !is_valid_pkgname(&pkgname) {
        return Err(ApkbuildError::Invalid {
            name: "pkgname",
            value: pkgname,
        });
    }
    let pkgrel: u64 = pkgrel_text.parse().map_err(|_| ApkbuildError::Invalid {
        name: "pkgrel",
        value: pkgrel_text.clone(),
    })?;
    if !is_valid_version(&format!("{pkgver}-r{pkgrel}")) {
        return Err(ApkbuildError::Invalid {
            name: "pkgver",
            value: pkgver,
        });
    }
    let arch = vars
        .get("arch")
        .map(|a| a.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let parsed = Apkbuild {
        pkgname,
        pkgver,
        pkgrel,
        arch,
    };
    let file_name = parsed.file_name();
    if file_name.len() > MAX_FILE_NAME {
        return Err(ApkbuildError::Invalid {
            name: "pkgname",
            value: format!(
                "{} (the file name is {} bytes, at most {MAX_FILE_NAME})",
                parsed.pkgname,
                file_name.len()
            ),
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_assignments() {
        let text = r#"# Contributor: someone
# Maintainer: someone
_pkgname=hello
pkgname=$_pkgname-tools
_ver=2.12
pkgver=${_ver}.1
pkgrel=3 # bumped
pkgdesc="Says \"hello\" (version $pkgver)"
url="https://example.org/$pkgname"
arch="x86_64 aarch64"
license="MIT"
depends="
	musl
	busybox
	"
source="https://example.org/$_pkgname-$pkgver.tar.gz"

build() {
	pkgver=9.9.9
	make
}

package() {
	make DESTDIR="$pkgdir" install
}
"#;
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.pkgname, "hello-tools");
        assert_eq!(parsed.pkgver, "2.12.1");
        assert_eq!(parsed.pkgrel, 3);
        assert_eq!(parsed.arch, ["x86_64", "aarch64"]);
        assert_eq!(parsed.file_name(), "hello-tools-2.12.1-r3.apk");
    }

    #[test]
    fn refuses_what_it_cannot_evaluate() {
        assert_eq!(
            parse("pkgname=a\npkgver=1.0\n"),
            Err(ApkbuildError::Missing("pkgrel"))
        );
        for text in [
            "pkgname=a\npkgver=$(date)\npkgrel=0\n",
            "pkgname=a\npkgver=${v%.*}\npkgrel=0\n",
            "pkgname=a\npkgver=$nope\npkgrel=0\n",
            "pkgname=a\npkgver=`x`\npkgrel=0\n",
        ] {
            assert!(
                matches!(parse(text), Err(ApkbuildError::Unsupported { .. })),
                "{text}"
            );
        }
        assert!(matches!(
            parse("pkgname=a\npkgver=1.0\npkgrel=x\n"),
            Err(ApkbuildError::Invalid { name: "pkgrel", .. })
        ));
        assert!(matches!(
            parse("pkgname=a\npkgver=not-a-version\npkgrel=0\n"),
            Err(ApkbuildError::Invalid { name: "pkgver", .. })
        ));
    }

    #[test]
    fn expansion_is_bounded() {
        // 40 doublings of 10 bytes would be 10 TiB.
        let mut text = "a0=0123456789\n".to_owned();
        for i in 1..=40 {
            text.push_str(&format!("a{i}=$a{}$a{}\n", i - 1, i - 1));
        }
        text.push_str("pkgname=a\npkgver=1.0\npkgrel=0\n");
        match parse(&text) {
            Err(ApkbuildError::Unsupported { line: 14, reason }) => {
                assert!(reason.contains("65536 bytes"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // A long literal value, and a long file name.
        let text = format!("pkgname={}\npkgver=1\npkgrel=0\n", "n".repeat(70_000));
        assert!(matches!(
            parse(&text),
            Err(ApkbuildError::Unsupported { line: 1, .. })
        ));
        let text = format!("pkgname={}\npkgver=1\npkgrel=0\n", "n".repeat(250));
        assert!(matches!(
            parse(&text),
            Err(ApkbuildError::Invalid {
                name: "pkgname",
                ..
            })
        ));
        // Many copies of a large value.
        let mut text = format!("big={}\n", "x".repeat(60_000));
        for i in 0..40 {
            text.push_str(&format!("c{i}=$big\n"));
        }
        match parse(&text) {
            Err(ApkbuildError::Unsupported { reason, .. }) => {
                assert!(reason.contains("1048576 bytes"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}
