//! The package's fields from its headers, checked with rpm's rules, and the
//! dependency handling of createrepo_c (`src/parsehdr.c`, `src/misc.c`).

use std::collections::{HashMap, HashSet};

use super::header::Header;
use super::tags::{self, sense, sig};
use super::{ChangelogEntry, Dependency, RpmError, RpmFile, RpmLimits, RpmPackage};

/// Where the main header sits in the file, and the file's size and digest.
pub(super) struct Framing {
    pub header_start: u64,
    pub header_end: u64,
    pub size_package: u64,
    pub sha256: String,
}

/// Longest canonical file name we accept (file systems' limit).
const MAX_FILE_NAME: usize = 255;

/// Whether `name` is a valid package name: rpmbuild's rule for built names,
/// an ASCII letter, digit or `_` first, then letters, digits and `.-_+`.
pub fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

/// Whether `v` is a valid version or release: non-empty, letters, digits
/// and `._+~^` (rpmbuild's rule; `-` separates version from release and `:`
/// the epoch, so neither may appear).
pub fn is_valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+~^".contains(&b))
}

/// Whether `arch` is a valid architecture: `[A-Za-z0-9_]+`.
pub fn is_valid_arch(arch: &str) -> bool {
    !arch.is_empty() && arch.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn field_err(field: &'static str, problem: impl Into<String>) -> RpmError {
    RpmError::Field {
        field,
        problem: problem.into(),
    }
}

fn required(h: &Header, tag: u32, field: &'static str) -> Result<String, RpmError> {
    h.string(tag)?
        .ok_or_else(|| field_err(field, "missing from the main header"))
}

/// Builds the package from its checked headers.
pub(super) fn package_from(
    signature: &Header,
    main: &Header,
    limits: &RpmLimits,
    framing: Framing,
) -> Result<RpmPackage, RpmError> {
    let sourcerpm = main.string(tags::SOURCERPM)?;
    let sourcerpm = match sourcerpm {
        _ if main.has(tags::SOURCEPACKAGE) => {
            return Err(RpmError::SourcePackage(", and a SOURCEPACKAGE tag"));
        }
        None => return Err(RpmError::SourcePackage("")),
        Some(s) if s.is_empty() => return Err(RpmError::SourcePackage(", it is empty")),
        Some(s) => s,
    };

    let name = required(main, tags::NAME, "NAME")?;
    if !is_valid_name(&name) {
        return Err(field_err(
            "NAME",
            format!(
                "{name:?} is not a valid package name (a letter, digit or `_`, then letters, digits, `.-_+`)"
            ),
        ));
    }
    let version = required(main, tags::VERSION, "VERSION")?;
    let release = required(main, tags::RELEASE, "RELEASE")?;
    for (field, value) in [("VERSION", &version), ("RELEASE", &release)] {
        if !is_valid_version(value) {
            return Err(field_err(
                field,
                format!(
                    "{value:?} is not valid (non-empty; letters, digits and `._+~^`, no `-` or `:`)"
                ),
            ));
        }
    }
    let arch = required(main, tags::ARCH, "ARCH")?;
    if !is_valid_arch(&arch) {
        return Err(field_err(
            "ARCH",
            format!("{arch:?} is not valid (letters, digits and `_`)"),
        ));
    }
    let epoch = match main.int(tags::EPOCH)? {
        None => 0,
        Some(e) => u32::try_from(e).map_err(|_| field_err("EPOCH", format!("{e} is too large")))?,
    };

    let size_installed = match main.int(tags::LONGSIZE)? {
        Some(v) => v,
        None => main.int(tags::SIZE)?.unwrap_or(0),
    };
    let size_archive = [
        main.int(sig::LONGARCHIVESIZE)?,
        signature.int(sig::LONGARCHIVESIZE)?,
        main.int(tags::ARCHIVESIZE)?,
        signature.int(sig::PAYLOADSIZE)?,
    ]
    .into_iter()
    .flatten()
    .next()
    .unwrap_or(0);

    let signed = [sig::DSA, sig::RSA, sig::OPENPGP, sig::PGP, sig::GPG]
        .into_iter()
        .any(|t| signature.has(t));

    let pkg = RpmPackage {
        epoch,
        summary: main.string(tags::SUMMARY)?.unwrap_or_default(),
        description: main.string(tags::DESCRIPTION)?.unwrap_or_default(),
        url: main.string(tags::URL)?,
        license: main.string(tags::LICENSE)?,
        vendor: main.string(tags::VENDOR)?,
        group: main.string(tags::GROUP)?,
        buildhost: main.string(tags::BUILDHOST)?,
        sourcerpm,
        build_time: main.int(tags::BUILDTIME)?.unwrap_or(0),
        packager: main.string(tags::PACKAGER)?,
        header_start: framing.header_start,
        header_end: framing.header_end,
        size_package: framing.size_package,
        size_installed,
        size_archive,
        sha256: framing.sha256,
        payload_compressor: main.string(tags::PAYLOADCOMPRESSOR)?,
        signed,
        requires: deps(
            main,
            "requires",
            [tags::REQUIRENAME, tags::REQUIREFLAGS, tags::REQUIREVERSION],
            true,
        )?,
        provides: deps(
            main,
            "provides",
            [tags::PROVIDENAME, tags::PROVIDEFLAGS, tags::PROVIDEVERSION],
            false,
        )?,
        conflicts: deps(
            main,
            "conflicts",
            [
                tags::CONFLICTNAME,
                tags::CONFLICTFLAGS,
                tags::CONFLICTVERSION,
            ],
            false,
        )?,
        obsoletes: deps(
            main,
            "obsoletes",
            [
                tags::OBSOLETENAME,
                tags::OBSOLETEFLAGS,
                tags::OBSOLETEVERSION,
            ],
            false,
        )?,
        recommends: weak(main, "recommends", tags::RECOMMENDNAME)?,
        suggests: weak(main, "suggests", tags::SUGGESTNAME)?,
        supplements: weak(main, "supplements", tags::SUPPLEMENTNAME)?,
        enhances: weak(main, "enhances", tags::ENHANCENAME)?,
        files: files(main, limits)?,
        changelog: changelog(main)?,
        name,
        version,
        release,
        arch,
    };
    if pkg.file_name().len() > MAX_FILE_NAME {
        return Err(field_err(
            "NAME",
            format!(
                "the file name {:?} is longer than {MAX_FILE_NAME} bytes",
                pkg.file_name()
            ),
        ));
    }
    Ok(pkg)
}

fn weak(main: &Header, what: &'static str, name_tag: u32) -> Result<Vec<Dependency>, RpmError> {
    // Weak dependencies are numbered name, version, flags.
    deps(main, what, [name_tag, name_tag + 2, name_tag + 1], false)
}

/// Reads one dependency list from its name, flags and version tags, which
/// must have the same length.
fn deps(
    main: &Header,
    what: &'static str,
    [name_tag, flags_tag, version_tag]: [u32; 3],
    requires: bool,
) -> Result<Vec<Dependency>, RpmError> {
    let Some(names) = main.strings(name_tag)? else {
        return Ok(Vec::new());
    };
    let flags = main.ints(flags_tag)?.unwrap_or_default();
    let versions = main.strings(version_tag)?.unwrap_or_default();
    if flags.len() != names.len() || versions.len() != names.len() {
        return Err(field_err(
            what,
            format!(
                "{} names, {} flags and {} versions (tags {name_tag}, {flags_tag}, {version_tag} must have equal counts)",
                names.len(),
                flags.len(),
                versions.len()
            ),
        ));
    }
    names
        .into_iter()
        .zip(flags)
        .zip(versions)
        .map(|((name, flags), version)| {
            if name.is_empty() {
                return Err(field_err(what, "an empty dependency name"));
            }
            let sense_bits = flags as u32;
            let (epoch, ver, rel) = split_evr(&version);
            let pre_bits = sense::PREREQ | sense::SCRIPT_PRE | sense::SCRIPT_POST;
            Ok(Dependency {
                name,
                flags: flag_name(sense_bits).map(str::to_owned),
                epoch,
                version: ver,
                release: rel,
                pre: requires && sense_bits & pre_bits != 0,
                sense: sense_bits,
            })
        })
        .collect()
}

/// createrepo_c's `cr_flag_to_str`: the comparison in the low bits.
fn flag_name(flags: u32) -> Option<&'static str> {
    match flags & 0xf {
        2 => Some("LT"),
        4 => Some("GT"),
        8 => Some("EQ"),
        10 => Some("LE"),
        12 => Some("GE"),
        _ => None,
    }
}

/// createrepo_c's `cr_str_to_evr`: `[E:]V[-R]`, epoch `0` when missing,
/// all `None` for an empty string.
fn split_evr(s: &str) -> (Option<String>, Option<String>, Option<String>) {
    if s.is_empty() {
        return (None, None, None);
    }
    let (epoch, rest) = match s.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
            (e.to_owned(), rest)
        }
        Some((_, rest)) => ("0".to_owned(), rest),
        None => ("0".to_owned(), s),
    };
    let (version, release) = match rest.split_once('-') {
        Some((v, r)) => (v.to_owned(), Some(r.to_owned())),
        None => (rest.to_owned(), None),
    };
    (Some(epoch), Some(version), release)
}

/// The file list: `DIRNAMES[DIRINDEXES[i]] + BASENAMES[i]`, with modes and
/// flags, all four arrays of matching length.
fn files(main: &Header, limits: &RpmLimits) -> Result<Vec<RpmFile>, RpmError> {
    let Some(basenames) = main.strings(tags::BASENAMES)? else {
        return Ok(Vec::new());
    };
    let n = basenames.len();
    if n as u64 > limits.max_files {
        return Err(RpmError::Limit {
            part: "main header",
            problem: format!("{n} files"),
            limit: limits.max_files,
        });
    }
    let dirnames = main.strings(tags::DIRNAMES)?.unwrap_or_default();
    let indexes = main.ints(tags::DIRINDEXES)?.unwrap_or_default();
    let modes = main.ints(tags::FILEMODES)?.unwrap_or_else(|| vec![0; n]);
    let flags = main.ints(tags::FILEFLAGS)?.unwrap_or_else(|| vec![0; n]);
    if indexes.len() != n || modes.len() != n || flags.len() != n {
        return Err(field_err(
            "files",
            format!(
                "{n} base names but {} directory indexes, {} modes, {} flags",
                indexes.len(),
                modes.len(),
                flags.len()
            ),
        ));
    }
    let mut total = 0u64;
    let mut out = Vec::with_capacity(n);
    for (i, base) in basenames.into_iter().enumerate() {
        let dir = usize::try_from(indexes[i])
            .ok()
            .and_then(|d| dirnames.get(d))
            .ok_or_else(|| {
                field_err(
                    "files",
                    format!(
                        "file {base:?} points at directory {} of {}",
                        indexes[i],
                        dirnames.len()
                    ),
                )
            })?;
        if !dir.starts_with('/') || base.contains('/') {
            return Err(field_err(
                "files",
                format!("{dir:?} + {base:?} is not an absolute path with a plain base name"),
            ));
        }
        total += (dir.len() + base.len()) as u64;
        if total > limits.max_path_bytes {
            return Err(RpmError::Limit {
                part: "main header",
                problem: "file paths joined".to_owned(),
                limit: limits.max_path_bytes,
            });
        }
        out.push(RpmFile {
            path: format!("{dir}{base}"),
            mode: modes[i] as u32,
            flags: flags[i] as u32,
        });
    }
    Ok(out)
}

fn changelog(main: &Header) -> Result<Vec<ChangelogEntry>, RpmError> {
    let Some(times) = main.ints(tags::CHANGELOGTIME)? else {
        return Ok(Vec::new());
    };
    let names = main.strings(tags::CHANGELOGNAME)?.unwrap_or_default();
    let texts = main.strings(tags::CHANGELOGTEXT)?.unwrap_or_default();
    if names.len() != times.len() || texts.len() != times.len() {
        return Err(field_err(
            "changelog",
            format!(
                "{} times, {} authors, {} texts",
                times.len(),
                names.len(),
                texts.len()
            ),
        ));
    }
    Ok(times
        .into_iter()
        .zip(names)
        .zip(texts)
        .map(|((time, author), text)| ChangelogEntry { time, author, text })
        .collect())
}

/// See [`RpmPackage::primary_requires`]: createrepo_c's rules
/// (`cr_package_from_header`), in its order.
pub(super) fn primary_requires(pkg: &RpmPackage) -> Vec<Dependency> {
    let own_files: HashSet<&str> = pkg.files.iter().map(|f| f.path.as_str()).collect();
    // createrepo_c drops a require only when a provide has the same name,
    // comparison and version (its "name+flags+version" key), not any
    // require of a provided name: `Requires: foo >= 2` stays beside
    // `Provides: foo = 1`.
    let provided: HashSet<_> = pkg.provides.iter().map(dep_key).collect();
    // The last kept require of each name, to drop an identical repeat.
    let mut last: HashMap<&str, &Dependency> = HashMap::new();
    let mut out = Vec::new();
    let mut libc: Option<&Dependency> = None;
    for d in &pkg.requires {
        let name = d.name.as_str();
        if name.starts_with("rpmlib(")
            || (own_files.contains(name) && RpmPackage::is_primary_file(name))
            || provided.contains(&dep_key(d))
        {
            continue;
        }
        if last.get(name).is_some_and(|p| {
            (&p.flags, &p.epoch, &p.version, &p.release, p.pre)
                == (&d.flags, &d.epoch, &d.version, &d.release, d.pre)
        }) {
            continue;
        }
        if name.starts_with("libc.so.6") {
            // Only the highest libc.so.6 require is kept, listed last.
            if libc.is_none_or(|best| libc_newer(name, &best.name)) {
                libc = Some(d);
            }
            continue;
        }
        last.insert(name, d);
        out.push(d.clone());
    }
    out.extend(libc.cloned());
    out
}

/// A dependency's name, comparison and version as one comparable value
/// (an absent epoch reads as `0` on both sides).
type DepKey<'a> = (
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

fn dep_key(d: &Dependency) -> DepKey<'_> {
    (
        &d.name,
        d.flags.as_deref(),
        d.epoch.as_deref(),
        d.version.as_deref(),
        d.release.as_deref(),
    )
}

/// createrepo_c's `cr_compare_dependency` == 2: whether the version in the
/// parentheses of `new` (`libc.so.6(GLIBC_2.34)(64bit)`) is higher than
/// `old`'s.
fn libc_newer(new: &str, old: &str) -> bool {
    /// The version in the first parentheses, from its first digit; `None`
    /// for none at all, `Some("")` for empty ones.
    fn inner(s: &str) -> Option<&str> {
        let open = s.find('(')?;
        let close = s[open..].find(')').map_or(s.len(), |c| open + c);
        let body = &s[open + 1..close];
        Some(
            body.find(|c: char| c.is_ascii_digit())
                .map_or("", |d| &body[d..]),
        )
    }
    match (inner(old), inner(new)) {
        (None, Some(_)) => true,
        (_, None) => false,
        (Some(o), Some(n)) => {
            !n.is_empty()
                && (o.is_empty() || super::vercmp::rpmvercmp(n, o) == std::cmp::Ordering::Greater)
        }
    }
}

/// See [`RpmPackage::other_changelog`]: createrepo_c's
/// `cr_package_from_header`.
pub(super) fn other_changelog(pkg: &RpmPackage, limit: usize) -> Vec<ChangelogEntry> {
    // Newest first in the header; createrepo_c prepends each, so its list
    // runs oldest first, and bumps newer entries sharing a time by one
    // second each so times stay distinct.
    let mut out: Vec<ChangelogEntry> = Vec::new();
    let mut last_time = 0;
    for entry in pkg.changelog.iter().take(limit) {
        let mut entry = entry.clone();
        entry
            .author
            .truncate(entry.author.trim_end_matches(' ').len().max(1));
        let time = entry.time;
        out.insert(0, entry);
        if last_time == time {
            for (step, newer) in (time..).zip(out.iter_mut().skip(1)) {
                if newer.time != step {
                    break;
                }
                newer.time += 1;
            }
        } else {
            last_time = time;
        }
    }
    out
}
