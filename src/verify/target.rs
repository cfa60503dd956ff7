//! What a URL given to `verify` points at: the format (from the URL, from
//! what the server has there, or `--format`), and the roots to check.
//!
//! - apk: an arch folder (`…/<repo>/<arch>/`, or its `APKINDEX.tar.gz`), or
//!   a repo folder (`…/<org>/alpine/<version>/<repo>/`) with `--arch`, else
//!   every arch of [`APK_ARCHES`] that has an index (apk has no arch listing).
//! - Debian: a distro base with `--suite`, or a `…/dists/<suite>/` URL.
//! - RPM: the folder holding `repodata/` (or `repomd.xml` itself), a repo
//!   folder above the arch folders, or the `.repo` file (its `baseurl` with
//!   `$basearch` from `--arch` or every arch of [`RPM_ARCHES`] found).

use reqwest::Url;

use super::VerifyError;
use super::fetch::{Fetcher, folder, join};

/// Arches probed below an Alpine repo URL when `--arch` is not given.
pub const APK_ARCHES: [&str; 9] = [
    "x86_64",
    "aarch64",
    "armv7",
    "armhf",
    "x86",
    "ppc64le",
    "s390x",
    "riscv64",
    "loongarch64",
];

/// Arches probed for RPM `$basearch` when `--arch` is not given.
pub const RPM_ARCHES: [&str; 7] = [
    "x86_64", "aarch64", "ppc64le", "s390x", "i686", "armhfp", "riscv64",
];

/// The largest `.repo` file read.
const MAX_REPO_FILE: u64 = 1 << 20;

/// A format asked for with `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatName {
    /// Alpine.
    Apk,
    /// Debian and Ubuntu.
    Deb,
    /// RPM (dnf, yum, zypper).
    Rpm,
}

/// What the user asked to check.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The URL.
    pub url: String,
    /// `--format`.
    pub format: Option<FormatName>,
    /// `--suite` (Debian).
    pub suite: Option<String>,
    /// `--arch` (apk arch folders, RPM `$basearch`).
    pub arches: Vec<String>,
}

/// The roots to check.
#[derive(Debug, Clone)]
pub enum TargetFormat {
    /// apk: `(arch, arch folder)` pairs.
    Apk {
        /// The arch folders.
        arches: Vec<(String, Url)>,
    },
    /// A Debian suite.
    Deb {
        /// The distro base (the folder holding `dists/` and `pool/`).
        base: Url,
        /// The suite.
        suite: String,
    },
    /// RPM arch folders (each holding `repodata/`).
    Rpm {
        /// The folders.
        arch_dirs: Vec<Url>,
        /// The keys a `.repo` file names (`gpgkey=`).
        keys: Vec<Url>,
    },
}

impl TargetFormat {
    /// `apk`, `deb` or `rpm`.
    pub fn name(&self) -> &'static str {
        match self {
            TargetFormat::Apk { .. } => "apk",
            TargetFormat::Deb { .. } => "deb",
            TargetFormat::Rpm { .. } => "rpm",
        }
    }
}

/// A URL resolved to what to check.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL given.
    pub url: Url,
    /// What it is.
    pub format: TargetFormat,
}

fn bad(message: String) -> VerifyError {
    VerifyError::Url(message)
}

fn fetch_error(url: &Url, e: impl std::fmt::Display) -> VerifyError {
    VerifyError::Fetch(format!("{url}: {e}"))
}

/// Resolves `request` (probing the server where the URL alone does not tell).
pub async fn resolve(fetcher: &Fetcher, request: &Request) -> Result<Target, VerifyError> {
    let url = Url::parse(request.url.trim())
        .map_err(|e| bad(format!("`{}` is not a URL: {e}", request.url)))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(format!(
            "`{url}`: give an `http://` or `https://` URL of a published repository"
        )));
    }
    let path = url.path().to_owned();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let format = request.format;
    let exists = |u: Url| async move { fetcher.exists(&u).await.map_err(|e| fetch_error(&u, e)) };

    // Forms the URL itself tells.
    if path.ends_with(".repo") && format.is_none_or(|f| f == FormatName::Rpm) {
        return repo_file(fetcher, &url, &request.arches).await;
    }
    if let Some(i) = segments.iter().position(|s| *s == "repodata") {
        if format.is_none_or(|f| f == FormatName::Rpm) {
            let dir = with_segments(&url, &segments[..i]);
            return Ok(rpm(url, vec![dir]));
        }
    }
    if let Some(i) = segments.iter().position(|s| *s == "dists") {
        if format.is_none_or(|f| f == FormatName::Deb) {
            let suite = match (segments.get(i + 1), &request.suite) {
                (_, Some(s)) => s.clone(),
                (Some(s), None) => (*s).to_owned(),
                (None, None) => {
                    return Err(bad(format!(
                        "`{url}`: give `--suite` (no suite after `dists/`)"
                    )));
                }
            };
            let base = with_segments(&url, &segments[..i]);
            return Ok(Target {
                url,
                format: TargetFormat::Deb { base, suite },
            });
        }
    }
    if path.ends_with("/APKINDEX.tar.gz") && format.is_none_or(|f| f == FormatName::Apk) {
        let dir = with_segments(&url, &segments[..segments.len() - 1]);
        return Ok(apk_arch(url, dir));
    }
    let here = folder(&url);
    if request.suite.is_some() || format == Some(FormatName::Deb) {
        let suite = request.suite.clone().ok_or_else(|| {
            bad(format!(
                "`{url}`: a Debian-style repository needs `--suite`"
            ))
        })?;
        return Ok(Target {
            url,
            format: TargetFormat::Deb { base: here, suite },
        });
    }

    // Ask the server.
    let join_here = |rel: &str| join(&here, rel).ok_or_else(|| bad(format!("`{url}`: bad path")));
    if format.is_none_or(|f| f == FormatName::Rpm)
        && exists(join_here("repodata/repomd.xml")?).await?
    {
        return Ok(rpm(url, vec![here]));
    }
    if format.is_none_or(|f| f == FormatName::Apk) && exists(join_here("APKINDEX.tar.gz")?).await? {
        return Ok(apk_arch(url, here));
    }
    if format.is_none_or(|f| f == FormatName::Apk) {
        let mut arches = Vec::new();
        for arch in arch_list(&request.arches, &APK_ARCHES) {
            let dir = join_here(&format!("{arch}/"))?;
            let found = exists(join(&dir, "APKINDEX.tar.gz").expect("a plain name")).await?;
            // An arch asked for by name is checked (and reported) even when missing.
            if found || !request.arches.is_empty() {
                arches.push((arch, dir));
            }
        }
        if !arches.is_empty() {
            return Ok(Target {
                url,
                format: TargetFormat::Apk { arches },
            });
        }
    }
    if format.is_none_or(|f| f == FormatName::Rpm) {
        let mut dirs = Vec::new();
        for arch in arch_list(&request.arches, &RPM_ARCHES) {
            for rel in [format!("{arch}/os/"), format!("{arch}/")] {
                let dir = join_here(&rel)?;
                if exists(join(&dir, "repodata/repomd.xml").expect("a plain name")).await? {
                    dirs.push(dir);
                    break;
                }
            }
        }
        if !dirs.is_empty() {
            return Ok(rpm(url, dirs));
        }
    }
    Err(bad(format!(
        "`{url}`: nothing to verify there (no APKINDEX.tar.gz, no repodata/repomd.xml, in it \
         or in an arch folder below it); give the URL of an arch folder, a `dists/<suite>/` \
         URL or a distro URL with `--suite`, or a `.repo` file"
    )))
}

fn arch_list(given: &[String], known: &[&str]) -> Vec<String> {
    if given.is_empty() {
        known.iter().map(|s| (*s).to_owned()).collect()
    } else {
        given.to_vec()
    }
}

fn apk_arch(url: Url, dir: Url) -> Target {
    let arch = dir
        .path_segments()
        .and_then(|mut s| s.rfind(|s| !s.is_empty()))
        .unwrap_or("")
        .to_owned();
    Target {
        url,
        format: TargetFormat::Apk {
            arches: vec![(arch, dir)],
        },
    }
}

fn rpm(url: Url, arch_dirs: Vec<Url>) -> Target {
    Target {
        url,
        format: TargetFormat::Rpm {
            arch_dirs,
            keys: Vec::new(),
        },
    }
}

/// `url` with its path replaced by `segments` (a folder).
fn with_segments(url: &Url, segments: &[&str]) -> Url {
    let mut out = url.clone();
    let path = if segments.is_empty() {
        "/".to_owned()
    } else {
        format!("/{}/", segments.join("/"))
    };
    out.set_path(&path);
    out.set_query(None);
    out.set_fragment(None);
    out
}

/// One section of a `.repo` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoSection {
    /// The section name (the repo id).
    pub id: String,
    /// `baseurl=` (the first URL).
    pub baseurl: Option<String>,
    /// `gpgkey=` URLs.
    pub gpgkeys: Vec<String>,
}

/// Reads the sections of a `.repo` file (INI: `[id]`, `key=value`,
/// continuation lines starting with white space, `#` and `;` comments).
pub fn parse_repo_file(text: &str) -> Vec<RepoSection> {
    let mut sections: Vec<RepoSection> = Vec::new();
    let mut last_key = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(id) = trimmed.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            sections.push(RepoSection {
                id: id.trim().to_owned(),
                ..Default::default()
            });
            last_key.clear();
            continue;
        }
        let Some(section) = sections.last_mut() else {
            continue;
        };
        let (key, value) = if line.starts_with([' ', '\t']) {
            (last_key.clone(), trimmed)
        } else if let Some((k, v)) = trimmed.split_once('=') {
            last_key = k.trim().to_ascii_lowercase();
            (last_key.clone(), v.trim())
        } else {
            continue;
        };
        let words = value
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty());
        match key.as_str() {
            "baseurl" if section.baseurl.is_none() => {
                section.baseurl = words.map(str::to_owned).next();
            }
            "gpgkey" => section.gpgkeys.extend(words.map(str::to_owned)),
            _ => {}
        }
    }
    sections
}

async fn repo_file(fetcher: &Fetcher, url: &Url, arches: &[String]) -> Result<Target, VerifyError> {
    let bytes = fetcher
        .get(url, MAX_REPO_FILE)
        .await
        .map_err(|e| fetch_error(url, e))?
        .ok_or_else(|| VerifyError::Fetch(format!("{url}: not found")))?;
    let text = String::from_utf8_lossy(&bytes);
    let sections = parse_repo_file(&text);
    if sections.iter().all(|s| s.baseurl.is_none()) {
        return Err(bad(format!("{url}: a .repo file without any `baseurl=`")));
    }
    let mut dirs = Vec::new();
    let mut keys = Vec::new();
    for section in &sections {
        let Some(base) = &section.baseurl else {
            continue;
        };
        if base.contains("$releasever") {
            return Err(bad(format!(
                "{url}: [{}] baseurl uses $releasever: give the arch folder's URL instead",
                section.id
            )));
        }
        for key in &section.gpgkeys {
            let key = url
                .join(key)
                .map_err(|e| bad(format!("{url}: [{}] gpgkey {key:?}: {e}", section.id)))?;
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        if !base.contains("$basearch") {
            let dir = url
                .join(base)
                .map_err(|e| bad(format!("{url}: [{}] baseurl {base:?}: {e}", section.id)))?;
            dirs.push(folder(&dir));
            continue;
        }
        for arch in arch_list(arches, &RPM_ARCHES) {
            let dir = url
                .join(&base.replace("$basearch", &arch))
                .map_err(|e| bad(format!("{url}: [{}] baseurl {base:?}: {e}", section.id)))?;
            let dir = folder(&dir);
            let repomd = join(&dir, "repodata/repomd.xml").expect("a plain name");
            let found = fetcher
                .exists(&repomd)
                .await
                .map_err(|e| fetch_error(&repomd, e))?;
            if found || !arches.is_empty() {
                dirs.push(dir);
            }
        }
    }
    if dirs.is_empty() {
        return Err(VerifyError::Fetch(format!(
            "{url}: no arch of the repository has a repodata/repomd.xml (tried {}); give `--arch`",
            RPM_ARCHES.join(", ")
        )));
    }
    Ok(Target {
        url: url.clone(),
        format: TargetFormat::Rpm {
            arch_dirs: dirs,
            keys,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_files_are_read_like_dnf_reads_them() {
        let text = "# acme\n[acme-fedora-40-server]\nname=Acme\n\
                    baseurl=http://h/acme/fedora/linux/releases/40/server/$basearch/os/\n\
                    gpgcheck=1\ngpgkey=http://h/k1.asc\n  http://h/k2.asc\n[empty]\nname=x\n";
        let sections = parse_repo_file(text);
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].id, "acme-fedora-40-server");
        assert_eq!(
            sections[0].baseurl.as_deref(),
            Some("http://h/acme/fedora/linux/releases/40/server/$basearch/os/")
        );
        assert_eq!(sections[0].gpgkeys, ["http://h/k1.asc", "http://h/k2.asc"]);
        assert_eq!(sections[1].baseurl, None);
    }

    #[test]
    fn folders_are_cut_at_a_segment() {
        let url = Url::parse("http://h/a/debian/dists/bookworm/InRelease?x").unwrap();
        assert_eq!(
            with_segments(&url, &["a", "debian"]).as_str(),
            "http://h/a/debian/"
        );
        assert_eq!(with_segments(&url, &[]).as_str(), "http://h/");
    }
}
