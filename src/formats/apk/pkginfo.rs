//! `.PKGINFO`: streamed out of the control member line by line, checked, and
//! turned into the package's index record.
//!
//! Memory stays bounded: one line of at most [`ApkLimits::max_pkginfo_line`]
//! bytes, and list fields (`depend`, `provides`, `install_if`) are refused as
//! soon as their index line would pass [`limits::MAX_INDEX_LINE`], not after
//! the whole list was collected.

use super::limits::{self, LimitError};
use super::names::{MAX_FILE_NAME, is_valid_arch, is_valid_pkgname, is_valid_version};
use super::{ApkError, ApkLimits, ApkRecord, ustar};

/// The list fields, in the order of [`PkgInfo::lists`].
const LIST_KEYS: [&str; 3] = ["depend", "provides", "install_if"];

/// `.PKGINFO` as read, before validation.
#[derive(Debug, Default)]
pub(super) struct PkgInfo {
    pkgname: Option<String>,
    pkgver: Option<String>,
    pkgdesc: Option<String>,
    url: Option<String>,
    size: Option<String>,
    license: Option<String>,
    arch: Option<String>,
    origin: Option<String>,
    maintainer: Option<String>,
    builddate: Option<String>,
    commit: Option<String>,
    provider_priority: Option<String>,
    datahash: Option<String>,
    /// `depend`, `provides`, `install_if` atoms.
    lists: [Vec<String>; 3],
    /// The length each list's index line (`D:a b`) has so far.
    line_lengths: [usize; 3],
}

/// Streams `.PKGINFO` out of the tar line by line, holding at most one line
/// of `limits.max_pkginfo_line` bytes.
pub(super) fn parse_pkginfo<S: ustar::Source>(
    tar: &mut ustar::Reader<S>,
    limits: &ApkLimits,
) -> Result<PkgInfo, ApkError> {
    let max_line = limits.max_pkginfo_line;
    let mut info = PkgInfo::default();
    let mut line = Vec::new();
    let mut line_no = 1;
    let mut buf = [0u8; 8192];
    loop {
        let n = tar.read_data(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            let (part, ends_line) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..i], true),
                None => (chunk, false),
            };
            if line.len() + part.len() > max_line {
                return Err(ApkError::PkgInfo(format!(
                    "line {line_no} is longer than {max_line} bytes"
                )));
            }
            line.extend_from_slice(part);
            chunk = &chunk[part.len() + usize::from(ends_line)..];
            if ends_line {
                info.apply_line(line_no, &line)?;
                line.clear();
                line_no += 1;
            }
        }
    }
    if !line.is_empty() {
        info.apply_line(line_no, &line)?;
    }
    Ok(info)
}

impl PkgInfo {
    fn apply_line(&mut self, line_no: usize, line: &[u8]) -> Result<(), ApkError> {
        let err = |msg: &str| ApkError::PkgInfo(format!("line {line_no}: {msg}"));
        let line = std::str::from_utf8(line).map_err(|_| err("not valid UTF-8"))?;
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(err("contains a control character"));
        }
        if line.trim().is_empty() || line.starts_with('#') {
            return Ok(());
        }
        // `key = value`; abuild writes `commit = ` with an empty value, and a
        // trimmed editor may leave `commit =`.
        let (key, value) = line
            .split_once(" = ")
            .or_else(|| line.strip_suffix(" =").map(|k| (k, "")))
            .ok_or_else(|| err("expected `key = value`"))?;
        let slot = match key {
            "pkgname" => &mut self.pkgname,
            "pkgver" => &mut self.pkgver,
            "pkgdesc" => &mut self.pkgdesc,
            "url" => &mut self.url,
            "size" => &mut self.size,
            "license" => &mut self.license,
            "arch" => &mut self.arch,
            "origin" => &mut self.origin,
            "maintainer" => &mut self.maintainer,
            "builddate" => &mut self.builddate,
            "commit" => &mut self.commit,
            "provider_priority" => &mut self.provider_priority,
            "datahash" => &mut self.datahash,
            _ => {
                // packager, replaces, triggers, ...: not part of the index.
                if let Some(i) = LIST_KEYS.iter().position(|k| *k == key) {
                    self.add_atoms(i, value)?;
                }
                return Ok(());
            }
        };
        if slot.is_some() {
            return Err(err(&format!("{key} is given twice")));
        }
        *slot = Some(value.to_owned());
        Ok(())
    }

    /// Adds the atoms of one list line (apk reads several space-separated
    /// atoms from one line too), refusing the package as soon as the list's
    /// index line is over the limit.
    fn add_atoms(&mut self, list: usize, value: &str) -> Result<(), ApkError> {
        for atom in value.split_whitespace() {
            let len = &mut self.line_lengths[list];
            // `D:` before the first atom, a space before the others.
            *len += if *len == 0 { 2 } else { 1 } + atom.len();
            if *len > limits::MAX_INDEX_LINE {
                return Err(LimitError::list_line(LIST_KEYS[list], *len).into());
            }
            self.lists[list].push(atom.to_owned());
        }
        Ok(())
    }

    /// Checks the fields and makes the package's record, with the fields that
    /// come from the file itself (`checksum`, `file_size`, `sha256`) left empty.
    pub(super) fn validate(self) -> Result<ApkRecord, ApkError> {
        let err = |msg: String| ApkError::PkgInfo(msg);
        let required =
            |v: Option<String>, key: &str| v.ok_or_else(|| err(format!("missing {key}")));
        let number = |v: Option<String>, key: &str| -> Result<Option<u64>, ApkError> {
            v.map(|s| {
                s.parse::<u64>()
                    .map_err(|_| err(format!("{key} {s:?} is not a non-negative integer")))
            })
            .transpose()
        };

        let name = required(self.pkgname, "pkgname")?;
        if !is_valid_pkgname(&name) {
            return Err(err(format!(
                "pkgname {name:?} is not a valid package name ([A-Za-z0-9][A-Za-z0-9._+-]*, no `..`)"
            )));
        }
        let version = required(self.pkgver, "pkgver")?;
        if !is_valid_version(&version) {
            return Err(err(format!(
                "pkgver {version:?} is not a valid apk version (like 1.2.3-r0)"
            )));
        }
        let arch = required(self.arch, "arch")?;
        if !is_valid_arch(&arch) {
            return Err(err(format!(
                "arch {arch:?} is not a valid architecture ([A-Za-z0-9_]+)"
            )));
        }
        let installed_size =
            number(Some(required(self.size, "size")?), "size")?.unwrap_or_default();
        let datahash = required(
            self.datahash,
            "datahash (packages without it are not supported by apk 3)",
        )?;
        if datahash.len() != 64 || !datahash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err(format!("datahash {datahash:?} is not a hex SHA-256")));
        }
        let file_name_len = name.len() + 1 + version.len() + ".apk".len();
        if file_name_len > MAX_FILE_NAME {
            return Err(err(format!(
                "pkgname and pkgver make a file name of {file_name_len} bytes (at most {MAX_FILE_NAME})"
            )));
        }
        let [depends, provides, install_if] = self.lists;
        let record = ApkRecord {
            checksum: String::new(),
            name,
            version,
            arch,
            file_size: 0,
            installed_size,
            description: self.pkgdesc.unwrap_or_default(),
            url: self.url.unwrap_or_default(),
            license: self.license.unwrap_or_default(),
            origin: self.origin.unwrap_or_default(),
            maintainer: self.maintainer.unwrap_or_default(),
            build_time: number(self.builddate, "builddate")?,
            commit: self.commit.unwrap_or_default(),
            provider_priority: number(self.provider_priority, "provider_priority")?,
            depends,
            provides,
            install_if,
            datahash: datahash.to_ascii_lowercase(),
            sha256: String::new(),
        };
        limits::check_record(&record)?;
        Ok(record)
    }
}
