//! Reading what dnf and rpm print, and the files a yum repository publishes: problem lines,
//! NEVRAs, `.repo` files, `repomd.xml` locations. Pure functions, no dnf needed.

/// Substrings of a line of dnf's (or rpm's) output that mean something went wrong, even when
/// dnf exits 0. Matched case-sensitively, anywhere in the line.
const PROBLEMS: [&str; 21] = [
    "Curl error",
    "Failed to download metadata",
    "Failed to synchronize cache",
    "checksum doesn't match",
    "Checksum",
    "[MIRROR]",
    "[FAILED]",
    "Bad GPG signature",
    "GPG verification",
    "GPG check FAILED",
    "GPG signature",
    "is not signed",
    "Problem opening package",
    "Public key for",
    "Ignoring repositories",
    "Cannot download",
    "Status code:",
    "No match for argument",
    "Unable to find a match",
    "Problem:",
    "not available",
];

/// The rpm query format of [`nevras`]: name, epoch (`(none)` when unset), version,
/// release, arch.
pub const NEVRA_QF: &str = "%{NAME} %{EPOCH} %{VERSION} %{RELEASE} %{ARCH}\n";

/// `name-[epoch:]version-release.arch` from lines of `name epoch version release arch`
/// (epoch shown only when set and not 0).
pub fn nevras(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [name, epoch, version, release, arch] = f[..] else {
                return None;
            };
            let epoch = match epoch {
                "(none)" | "0" => String::new(),
                e => format!("{e}:"),
            };
            Some(format!("{name}-{epoch}{version}-{release}.{arch}"))
        })
        .collect()
}

/// The package names of NEVRAs (the part before the version), sorted.
pub fn names(nevras: &[String]) -> Vec<String> {
    let mut out: Vec<String> = nevras
        .iter()
        .map(|n| {
            let mut parts = n.rsplitn(3, '-');
            let (_release_arch, _version) = (parts.next(), parts.next());
            parts.next().unwrap_or(n).to_string()
        })
        .collect();
    out.sort();
    out
}

/// Words of rpm's output that mean a signature check failed (`…, key ID 23524c15: BAD`,
/// `NOKEY`). Matched as whole words: a key fingerprint printed as `B9F0 C91F BADD …` holds
/// `BAD` inside a group and is no problem.
const PROBLEM_WORDS: [&str; 2] = ["BAD", "NOKEY"];

/// The lines of `output` that signal a problem (see [`PROBLEMS`], [`PROBLEM_WORDS`]), plus
/// every line starting with `Error`, `Warning` or `warning:`.
pub fn problem_lines(output: &str) -> Vec<String> {
    output
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            t.starts_with("Error")
                || t.starts_with("Warning")
                || t.starts_with("warning:")
                || PROBLEMS.iter().any(|p| t.contains(p))
                || t.split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|word| PROBLEM_WORDS.contains(&word))
        })
        .map(str::to_string)
        .collect()
}

/// Checks a `.repo` file as the tests need it: at least one `[id]` section, and in each a
/// `baseurl`, a `gpgkey`, `gpgcheck=1` and `repo_gpgcheck=1`. Ok with the section ids.
pub fn check_repo_file(text: &str) -> Result<Vec<String>, String> {
    let mut ids: Vec<String> = Vec::new();
    let mut sections: Vec<Vec<(String, String)>> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(id) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            ids.push(id.trim().to_string());
            sections.push(Vec::new());
        } else if let Some((key, value)) = line.split_once('=') {
            let Some(section) = sections.last_mut() else {
                return Err(format!("`.repo` file: `{line}` before any [section]"));
            };
            section.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    if ids.is_empty() {
        return Err("`.repo` file: no [repository] section".into());
    }
    for (id, fields) in ids.iter().zip(&sections) {
        let get = |key: &str| {
            fields
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        for key in ["baseurl", "gpgkey"] {
            if get(key).is_none_or(str::is_empty) {
                return Err(format!("`.repo` file: [{id}] has no {key}"));
            }
        }
        for key in ["gpgcheck", "repo_gpgcheck"] {
            let on = get(key)
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
            if !on {
                return Err(format!("`.repo` file: [{id}] does not set {key}=1"));
            }
        }
    }
    Ok(ids)
}

/// The metadata files a `repomd.xml` lists: `(type, href)` of each `<data type="...">` and
/// its `<location href="..."/>`, in order (e.g. `("primary",
/// "repodata/<sha256>-primary.xml.gz")`; the href is relative to the repository's base URL).
pub fn repomd_locations(repomd: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let len = tag[start..].find('"')?;
        Some(tag[start..start + len].to_string())
    };
    repomd
        .split("<data ")
        .skip(1)
        .filter_map(|block| {
            let block = &block[..block.find("</data>").unwrap_or(block.len())];
            let kind = attr(block, "type")?;
            let location = &block[block.find("<location ")?..];
            Some((kind, attr(location, "href")?))
        })
        .collect()
}
