//! What a package name, version and architecture may look like.
//!
//! The same rules apply to uploads (`.PKGINFO`), to `APKBUILD`s and to names
//! typed on the command line, so that `<name>-<version>.apk` is always a plain
//! file name that apk-tools accepts.

/// Longest `<name>-<version>.apk`: it is a file name in the repository.
pub const MAX_FILE_NAME: usize = 255;

/// Whether `name` is a valid package name: `[A-Za-z0-9][A-Za-z0-9._+-]*`
/// without `..`, so that `<name>-<version>.apk` is a plain file name.
pub fn is_valid_pkgname(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
        && !name.contains("..")
}

/// Whether `arch` is a safe architecture token, `[A-Za-z0-9_]+` (`x86_64`, `noarch`, ...).
pub fn is_valid_arch(arch: &str) -> bool {
    !arch.is_empty() && arch.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `version` is a valid apk version, as apk-tools 3 `apk_version_validate`
/// decides: `digits{.digits}*[letter]{_suffix[digits]}*[~hash][-rN]`.
pub fn is_valid_version(version: &str) -> bool {
    // Token kinds in the order they may follow each other.
    #[derive(PartialEq, PartialOrd)]
    enum Token {
        Digit,
        Letter,
        Suffix,
        SuffixNo,
        Hash,
        Revision,
    }
    const SUFFIXES: [&[u8]; 9] = [
        b"alpha", b"beta", b"pre", b"rc", b"cvs", b"svn", b"git", b"hg", b"p",
    ];
    let b = version.as_bytes();
    let span = |from: usize, pred: fn(&u8) -> bool| {
        from + b[from..].iter().take_while(|c| pred(c)).count()
    };
    let mut i = span(0, u8::is_ascii_digit);
    if i == 0 {
        return false;
    }
    let mut token = Token::Digit;
    while i < b.len() {
        match b[i] {
            b'a'..=b'z' if token <= Token::Digit => {
                token = Token::Letter;
                i += 1;
            }
            b'.' if token <= Token::Digit => {
                let end = span(i + 1, u8::is_ascii_digit);
                if end == i + 1 {
                    return false;
                }
                i = end;
            }
            b'0'..=b'9' if token == Token::Suffix => {
                token = Token::SuffixNo;
                i = span(i, u8::is_ascii_digit);
            }
            b'_' if token <= Token::SuffixNo => {
                let end = span(i + 1, u8::is_ascii_lowercase);
                if !SUFFIXES.contains(&&b[i + 1..end]) {
                    return false;
                }
                token = Token::Suffix;
                i = end;
            }
            b'~' if token < Token::Hash => {
                let end = span(i + 1, u8::is_ascii_hexdigit);
                if end == i + 1 {
                    return false;
                }
                token = Token::Hash;
                i = end;
            }
            b'-' if token < Token::Revision && b.get(i + 1) == Some(&b'r') => {
                let end = span(i + 2, u8::is_ascii_digit);
                if end == i + 2 {
                    return false;
                }
                token = Token::Revision;
                i = end;
            }
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for v in [
            "1",
            "0",
            "1.0",
            "3.2.0-r23",
            "1.2.3a-r1",
            "2.0_rc1",
            "1.0_alpha2_p3-r4",
            "1.0~abc123-r0",
            "0.1_git20230101",
            "1.0_p",
            "10.20.30z_beta-r100",
            "1.0~DEADbeef",
        ] {
            assert!(is_valid_version(v), "{v} should be valid");
        }
        for v in [
            "",
            "a1",
            "v1.0",
            "1.0-1",
            "1..0",
            "1.",
            ".1",
            "1.0-r",
            "1.0_foo",
            "1.0ab",
            "1.0a1",
            "1/0",
            "1.0-r1-r2",
            "1.0 ",
            "1.0~",
            "1.0_rc1.2",
            "1.0-r1_p1",
            "1.0~ab~cd",
            "1.0A",
            "1.0_",
            "1.0-",
        ] {
            assert!(!is_valid_version(v), "{v} should be invalid");
        }
    }

    #[test]
    fn names_and_arches() {
        for n in ["a", "Zlib", "py3-foo", "gtk+3.0", "lib_x", "a.b", "7zip"] {
            assert!(is_valid_pkgname(n), "{n}");
        }
        for n in ["", "-a", ".a", "_a", "a..b", "a/b", "a b", "ä", "a:b"] {
            assert!(!is_valid_pkgname(n), "{n}");
        }
        for a in ["x86_64", "aarch64", "noarch", "armv7"] {
            assert!(is_valid_arch(a), "{a}");
        }
        for a in ["", "x86-64", "../x", "a b"] {
            assert!(!is_valid_arch(a), "{a}");
        }
    }
}
