//! The `control` file of a `.deb`: one deb822 stanza (deb822(5), Policy
//! 5.1), parsed the way dpkg parses it, then its key fields validated.

use super::DebError;
use super::names::{is_valid_arch, is_valid_package_name, version_problem};

/// Longest `<package>_<version>_<arch>.deb` file name (a file system's limit).
pub const MAX_FILE_NAME: usize = 255;

/// Parses one deb822 stanza into `(name, value)` pairs in file order.
///
/// Values are stored as dpkg parses them: the first line without surrounding
/// whitespace; each continuation line without its first space or tab and
/// trailing whitespace, and a line of only `.` characters loses one (so ` .`
/// is an empty line), joined with `\n`. Refused: `\r` and NUL anywhere, text
/// that is not UTF-8, lines without a colon, empty or malformed field names,
/// a continuation before the first field, duplicate fields (compared without
/// case), other control characters than tab, and a blank line between fields (a second stanza). Blank lines
/// before and after the stanza are allowed, as dpkg allows them.
pub fn parse_control(text: &[u8]) -> Result<Vec<(String, String)>, DebError> {
    let err = |line: usize, problem: String| DebError::Control { line, problem };
    if let Some(pos) = text.iter().position(|&b| b == b'\r') {
        let line = 1 + text[..pos].iter().filter(|&&b| b == b'\n').count();
        return Err(err(
            line,
            "carriage return (CRLF line ends?): control files use bare `\\n`".to_owned(),
        ));
    }
    if let Some(pos) = text
        .iter()
        .position(|&b| (b < 0x20 && b != b'\t' && b != b'\n') || b == 0x7f)
    {
        let line = 1 + text[..pos].iter().filter(|&&b| b == b'\n').count();
        let what = if text[pos] == 0 {
            "NUL byte".to_owned()
        } else {
            format!("control character {:#04x}", text[pos])
        };
        return Err(err(line, what));
    }
    let text = std::str::from_utf8(text).map_err(|e| {
        let line = 1 + text[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        err(line, format!("not UTF-8 ({e})"))
    })?;
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut ended_at: Option<usize> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let lno = i + 1;
        let line = raw.trim_end_matches([' ', '\t']);
        if line.is_empty() {
            if !fields.is_empty() && ended_at.is_none() {
                ended_at = Some(lno);
            }
            continue;
        }
        if let Some(blank) = ended_at {
            return Err(err(
                lno,
                format!(
                    "more than one stanza (blank line {blank} ends the first; a control file has one)"
                ),
            ));
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = fields.last_mut() else {
                return Err(err(
                    lno,
                    "continuation line before the first field".to_owned(),
                ));
            };
            let mut cont = &line[1..];
            if cont.bytes().all(|b| b == b'.') {
                cont = &cont[1..];
            }
            value.push('\n');
            value.push_str(cont);
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(err(
                lno,
                format!("line {line:?} is neither a field (`Name: value`) nor a continuation"),
            ));
        };
        if name.is_empty() {
            return Err(err(lno, "field with an empty name".to_owned()));
        }
        if let Some(c) = name.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(err(
                lno,
                format!("field name {name:?} contains {c:?} (printable ASCII only, no spaces)"),
            ));
        }
        if name.starts_with(['#', '-']) {
            return Err(err(
                lno,
                format!("field name {name:?} starts with `#` or `-`"),
            ));
        }
        if fields.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(err(lno, format!("duplicate field {name}")));
        }
        fields.push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
    }
    if fields.is_empty() {
        return Err(err(1, "no fields (empty control file)".to_owned()));
    }
    Ok(fields)
}

/// The validated key fields of a control stanza.
#[derive(Debug)]
pub(super) struct KeyFields {
    pub package: String,
    pub version: String,
    pub architecture: String,
    pub source: String,
}

fn get<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn single_line<'a>(fields: &'a [(String, String)], name: &str) -> Result<&'a str, DebError> {
    let bad = |problem: &str| DebError::Field {
        field: name.to_owned(),
        problem: problem.to_owned(),
    };
    let value = get(fields, name).ok_or_else(|| bad("missing (dpkg requires it)"))?;
    if value.is_empty() {
        return Err(bad("empty value"));
    }
    if value.contains('\n') {
        return Err(bad("spans several lines (it must be one line)"));
    }
    Ok(value)
}

/// Checks the fields dpkg and apt rely on: `Package`, `Version`,
/// `Architecture` (required), `Installed-Size` and `Source` (if present).
pub(super) fn validate(fields: &[(String, String)]) -> Result<KeyFields, DebError> {
    let bad = |field: &str, problem: String| DebError::Field {
        field: field.to_owned(),
        problem,
    };
    let package = single_line(fields, "Package")?;
    if !is_valid_package_name(package) {
        return Err(bad(
            "Package",
            format!(
                "{package:?} is not a valid package name (Policy 5.6.1: `[a-z0-9][a-z0-9+.-]+`)"
            ),
        ));
    }
    let version = single_line(fields, "Version")?;
    if let Some(p) = version_problem(version) {
        return Err(bad(
            "Version",
            format!("{version:?} is not a valid Debian version: {p} (Policy 5.6.12)"),
        ));
    }
    let architecture = single_line(fields, "Architecture")?;
    if !is_valid_arch(architecture) {
        return Err(bad(
            "Architecture",
            format!(
                "{architecture:?} is not a binary package architecture (`all` or `[a-z0-9][a-z0-9-]*`, at most 32 bytes, no `any` wildcard)"
            ),
        ));
    }
    if get(fields, "Installed-Size").is_some() {
        let size = single_line(fields, "Installed-Size")?;
        if !size.bytes().all(|b| b.is_ascii_digit()) || size.parse::<u64>().is_err() {
            return Err(bad(
                "Installed-Size",
                format!("{size:?} is not a number of KiB"),
            ));
        }
    }
    let source = match get(fields, "Source") {
        None => package.to_owned(),
        Some(_) => parse_source(single_line(fields, "Source")?)?,
    };
    let keys = KeyFields {
        package: package.to_owned(),
        version: version.to_owned(),
        architecture: architecture.to_owned(),
        source,
    };
    let without_epoch = version.split_once(':').map_or(version, |(_, v)| v);
    let file_len = package.len() + without_epoch.len() + architecture.len() + 6;
    if file_len > MAX_FILE_NAME {
        return Err(bad(
            "Package",
            format!(
                "the file name `<Package>_<Version>_<Architecture>.deb` would be {file_len} bytes, more than {MAX_FILE_NAME}"
            ),
        ));
    }
    Ok(keys)
}

/// The source name of a `Source` value, `name` or `name (version)`.
fn parse_source(value: &str) -> Result<String, DebError> {
    let bad = |problem: String| DebError::Field {
        field: "Source".to_owned(),
        problem,
    };
    let (name, version) = match value.split_once(' ') {
        None => (value, None),
        Some((name, rest)) => {
            let inner = rest
                .trim_start()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| bad(format!("{value:?} is neither `name` nor `name (version)`")))?;
            (name, Some(inner.trim()))
        }
    };
    if !is_valid_package_name(name) {
        return Err(bad(format!(
            "{name:?} is not a valid source package name (Policy 5.6.1)"
        )));
    }
    if let Some(v) = version {
        if let Some(p) = version_problem(v) {
            return Err(bad(format!("version {v:?} is not valid: {p}")));
        }
    }
    Ok(name.to_owned())
}
