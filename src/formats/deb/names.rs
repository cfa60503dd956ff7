//! Syntax of package names, versions and architectures (Debian Policy 5.6.1,
//! 5.6.12, 5.6.8; dpkg `lib/dpkg/parsehelp.c` `parseversion`).

/// Longest architecture name we accept (Debian's longest is 13 bytes).
pub const MAX_ARCH: usize = 32;

/// Whether `name` is a valid package name: `[a-z0-9][a-z0-9+.-]+`, at least
/// two characters (Policy 5.6.1).
pub fn is_valid_package_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"+.-".contains(&c))
}

/// Why `version` is not a valid Debian version, or `None` if it is:
/// `[epoch:]upstream[-revision]`, epoch decimal, upstream starting with a
/// digit and made of `[A-Za-z0-9.+~-:]`, revision (after the last `-`)
/// non-empty and made of `[A-Za-z0-9.+~]` (Policy 5.6.12, dpkg `parseversion`).
pub fn version_problem(version: &str) -> Option<String> {
    if version.is_empty() {
        return Some("empty version".to_owned());
    }
    if version.bytes().any(|c| c.is_ascii_whitespace()) {
        return Some("the version contains whitespace".to_owned());
    }
    let (epoch, rest) = match version.split_once(':') {
        Some((e, r)) => (Some(e), r),
        None => (None, version),
    };
    if let Some(e) = epoch {
        if e.is_empty() || !e.bytes().all(|c| c.is_ascii_digit()) {
            return Some(format!("epoch {e:?} is not a number"));
        }
        if e.parse::<u32>().map_or(true, |n| n > i32::MAX as u32) {
            return Some(format!("epoch {e} is too large"));
        }
    }
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((u, r)) => (u, Some(r)),
        None => (rest, None),
    };
    if upstream.is_empty() {
        return Some("empty upstream version".to_owned());
    }
    if !upstream.as_bytes()[0].is_ascii_digit() {
        return Some(format!(
            "upstream version {upstream:?} does not start with a digit"
        ));
    }
    if let Some(c) = upstream
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || ".+~-:".contains(c)))
    {
        return Some(format!("invalid character {c:?} in the upstream version"));
    }
    if let Some(r) = revision {
        if r.is_empty() {
            return Some("empty revision after the last `-`".to_owned());
        }
        if let Some(c) = r
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || ".+~".contains(c)))
        {
            return Some(format!("invalid character {c:?} in the revision"));
        }
    }
    None
}

/// Whether `version` is a valid Debian version (see [`version_problem`]).
pub fn is_valid_version(version: &str) -> bool {
    version_problem(version).is_none()
}

/// Whether `arch` is a valid architecture for a binary package: `all` or a
/// concrete name `[a-z0-9][a-z0-9-]*` of at most [`MAX_ARCH`] bytes; the
/// wildcards `any`, `<os>-any`, `any-<cpu>` belong to source packages only.
pub fn is_valid_arch(arch: &str) -> bool {
    let b = arch.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_ARCH
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !arch.split('-').any(|part| part == "any")
}
