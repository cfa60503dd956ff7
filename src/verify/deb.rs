//! Debian and Ubuntu: a suite checked as apt reads it: `InRelease` (and
//! `Release` with `Release.gpg`) signed by a trusted key, the `Release`
//! fields apt needs, every file its `SHA256:` field lists (and its
//! `by-hash/SHA256/` copy with `Acquire-By-Hash: yes`) with that size and
//! hash, then every `.deb` each `Packages` index names.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, SystemTime};

use reqwest::Url;

use super::VerifyError;
use super::fetch::{Expected, Fetcher, FileCheck, MAX_INDEX_BYTES, join};
use super::keys::{PgpPublic, UserKeys, parse_pgp, pgp_verify_cleartext, pgp_verify_detached};
use super::report::{KeySource, Report};
use crate::formats::deb::parse_control;
use crate::formats::deb::release::{ReleaseEntry, release_sha256, signed_text};

/// The largest `Packages` text read (inflated).
pub const MAX_PACKAGES_TEXT: u64 = 1 << 30;

/// How far in the future a `Date:` may be before apt calls the suite "not
/// valid yet" (clock skew allowed here).
const DATE_SKEW: Duration = Duration::from_secs(300);

/// Checks one suite.
pub async fn verify(
    fetcher: &Fetcher,
    keys: &UserKeys,
    base: &Url,
    suite: &str,
    report: &mut Report,
) -> Result<(), VerifyError> {
    let dists = join(base, &format!("dists/{suite}/"))
        .ok_or_else(|| VerifyError::Url(format!("`{suite}` is not a suite name")))?;
    let trusted = trusted_keys(fetcher, keys, &dists, report).await?;
    let get = |name: &str| {
        let url = join(&dists, name).expect("a plain name");
        async move {
            let got = fetcher.get(&url, MAX_INDEX_BYTES).await;
            (url, got)
        }
    };
    let (in_release_url, in_release) = get("InRelease").await;
    let (release_url, release) = get("Release").await;
    let (gpg_url, release_gpg) = get("Release.gpg").await;
    let mut text = None;
    for (url, got) in [
        (&in_release_url, &in_release),
        (&release_url, &release),
        (&gpg_url, &release_gpg),
    ] {
        match got {
            Err(e) => report.unchecked(url.as_str(), e.to_string()),
            Ok(Some(bytes)) => {
                report.files += 1;
                report.bytes += bytes.len() as u64;
            }
            Ok(None) => {}
        }
    }
    if let Ok(Some(bytes)) = &in_release {
        report.indexes.push(in_release_url.to_string());
        match signed_text(bytes) {
            None => report.problem(
                in_release_url.as_str(),
                "not a cleartext-signed Release (apt: the file is not signed)",
            ),
            Some(body) => {
                check_pgp(
                    &in_release_url,
                    pgp_verify_cleartext(&trusted, bytes),
                    &trusted,
                    report,
                );
                text = Some(body);
            }
        }
    }
    if let Ok(Some(bytes)) = &release {
        match &release_gpg {
            Ok(Some(sig)) => check_pgp(
                &gpg_url,
                pgp_verify_detached(&trusted, bytes, sig),
                &trusted,
                report,
            ),
            Ok(None) if text.is_none() => report.problem(
                gpg_url.as_str(),
                "missing: no InRelease and no Release.gpg, apt finds the suite unsigned",
            ),
            _ => {}
        }
        let release_text = String::from_utf8_lossy(bytes).into_owned();
        match &text {
            Some(body) if *body != release_text => report.warn(format!(
                "{release_url} differs from the text InRelease signs (apt reads InRelease)"
            )),
            Some(_) => {}
            None => {
                report.indexes.push(release_url.to_string());
                text = Some(release_text);
            }
        }
    }
    let Some(text) = text else {
        if matches!((&in_release, &release), (Ok(None), Ok(None))) {
            report.unchecked(
                in_release_url.as_str(),
                format!("not found: no InRelease or Release for suite {suite}"),
            );
        }
        return Ok(());
    };
    let release_url = if matches!(in_release, Ok(Some(_))) {
        in_release_url
    } else {
        release_url
    };
    let by_hash = check_fields(&release_url, &text, suite, report);
    let entries = release_sha256(&text);
    let listed: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    let mut checks = Vec::new();
    for entry in &entries {
        let Some(url) = join(&dists, &entry.path) else {
            report.problem(
                release_url.as_str(),
                format!("{}: not a plain path", entry.path),
            );
            continue;
        };
        // Debian's archives list uncompressed indexes they do not ship: apt
        // takes a compressed one then.
        let compressed = ["gz", "xz", "bz2", "zst", "lzma"]
            .iter()
            .any(|ext| listed.contains(&format!("{}.{ext}", entry.path).as_str()));
        if compressed && !matches!(fetcher.exists(&url).await, Ok(true)) {
            report.warn(format!(
                "{url} is listed but not served (a compressed form is)"
            ));
            continue;
        }
        checks.push(index_check(url.clone(), entry));
        // apt fetches indexes by hash, not the per-arch `Release` files.
        if by_hash && !entry.path.ends_with("Release") {
            let dir = entry.path.rsplit_once('/').map_or("", |(d, _)| d);
            let hashed = format!("{dir}/by-hash/SHA256/{}", entry.sha256);
            if let Some(url) = join(&dists, hashed.trim_start_matches('/')) {
                checks.push(index_check(url, entry));
            }
        }
    }
    fetcher.check_files(checks, report).await;
    check_packages(fetcher, base, &dists, &entries, report).await;
    Ok(())
}

fn index_check(url: Url, entry: &ReleaseEntry) -> FileCheck {
    FileCheck {
        url,
        size: Some(entry.size),
        digest: Some(Expected::Sha256(entry.sha256.to_ascii_lowercase())),
        apk_checksum: None,
        package: false,
    }
}

/// The keys to check against: the user's, or the suite's published keyring.
async fn trusted_keys(
    fetcher: &Fetcher,
    keys: &UserKeys,
    dists: &Url,
    report: &mut Report,
) -> Result<Vec<PgpPublic>, VerifyError> {
    if !keys.is_empty() {
        if keys.pgp.is_empty() {
            return Err(VerifyError::Key(
                "Debian suites are signed with OpenPGP keys: give an OpenPGP public key \
                 (`.asc` or `.gpg`) with --key"
                    .to_owned(),
            ));
        }
        report.use_keys(KeySource::Given {
            files: keys.files.clone(),
        });
        return Ok(keys.pgp.clone());
    }
    for name in ["archive-keyring.asc", "archive-keyring.gpg"] {
        let url = join(dists, name).expect("a plain name");
        match fetcher.get(&url, 1 << 20).await {
            Ok(Some(bytes)) => match parse_pgp(url.as_str(), &bytes) {
                Ok(found) => {
                    report.use_keys(KeySource::Published {
                        urls: vec![url.to_string()],
                    });
                    return Ok(found);
                }
                Err(e) => report.problem(url.as_str(), e),
            },
            Ok(None) => {}
            Err(e) => report.unchecked(url.as_str(), e.to_string()),
        }
    }
    report.unchecked(
        dists.as_str(),
        "no archive-keyring.asc or archive-keyring.gpg published here to check the signature \
         with: give the suite's key with --key",
    );
    Ok(Vec::new())
}

fn check_pgp(
    url: &Url,
    verified: Result<Vec<String>, String>,
    trusted: &[PgpPublic],
    report: &mut Report,
) {
    if trusted.is_empty() {
        return;
    }
    match verified {
        Err(e) => report.problem(url.as_str(), e),
        Ok(signers) if signers.is_empty() => {
            let fingerprints: Vec<&str> = trusted.iter().map(|k| k.fingerprint.as_str()).collect();
            report.problem(
                url.as_str(),
                format!(
                    "no valid signature by the trusted key(s) {} (apt: NO_PUBKEY or BADSIG, the \
                     suite is refused)",
                    fingerprints.join(", ")
                ),
            );
        }
        Ok(_) => {}
    }
}

/// Checks the `Release` fields apt needs; returns whether `Acquire-By-Hash` is on.
fn check_fields(url: &Url, text: &str, suite: &str, report: &mut Report) -> bool {
    let fields: BTreeMap<String, String> = match parse_control(text.as_bytes()) {
        Ok(fields) => fields
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        Err(e) => {
            report.problem(
                url.as_str(),
                format!("Release is not a valid deb822 stanza: {e}"),
            );
            return false;
        }
    };
    let mut need = |name: &str, why: &str| {
        if fields
            .get(&name.to_ascii_lowercase())
            .is_none_or(|v| v.trim().is_empty())
        {
            report.problem(url.as_str(), format!("no `{name}:` field ({why})"));
        }
    };
    need("Architectures", "apt skips every arch it was not told of");
    need("Components", "apt warns the component is not in the suite");
    need("SHA256", "apt refuses a Release without strong hashes");
    if !fields.contains_key("suite") && !fields.contains_key("codename") {
        report.problem(
            url.as_str(),
            "neither `Suite:` nor `Codename:` (apt cannot tell the suite)",
        );
    } else if fields.get("suite").map(String::as_str) != Some(suite)
        && fields.get("codename").map(String::as_str) != Some(suite)
    {
        report.warn(format!(
            "{url}: neither Suite nor Codename is `{suite}` (apt warns of a conflicting distribution)"
        ));
    }
    let now = SystemTime::now();
    match fields.get("date").map(|d| parse_date(d)) {
        None => report.problem(url.as_str(), "no `Date:` field (apt refuses the Release)"),
        Some(None) => report.problem(url.as_str(), "`Date:` is not an RFC 2822 date in UTC"),
        Some(Some(date)) if date > now + DATE_SKEW => report.problem(
            url.as_str(),
            "`Date:` is in the future (apt: the Release file is not valid yet)",
        ),
        Some(Some(_)) => {}
    }
    if let Some(until) = fields.get("valid-until") {
        match parse_date(until) {
            Some(t) if t < now => report.problem(
                url.as_str(),
                "`Valid-Until:` has passed (apt: the Release file is expired)",
            ),
            Some(_) => {}
            None => report.problem(url.as_str(), "`Valid-Until:` is not a date"),
        }
    }
    fields
        .get("acquire-by-hash")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("yes"))
}

fn parse_date(text: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(&text.trim().replace("UTC", "GMT").replace("+0000", "GMT")).ok()
}

/// Reads each `binary-<arch>` folder's `Packages` (uncompressed, else `.gz`,
/// else `.xz`) and checks every `.deb` they name.
async fn check_packages(
    fetcher: &Fetcher,
    base: &Url,
    dists: &Url,
    entries: &[ReleaseEntry],
    report: &mut Report,
) {
    let rank = |p: &str| match p.rsplit_once('/').map_or(p, |(_, f)| f) {
        "Packages" => Some(0),
        "Packages.gz" => Some(1),
        "Packages.xz" => Some(2),
        _ => None,
    };
    // Each folder's `Packages` forms, as apt tries them.
    let mut forms: BTreeMap<&str, Vec<&ReleaseEntry>> = BTreeMap::new();
    for entry in entries {
        if rank(&entry.path).is_some() {
            let dir = entry.path.rsplit_once('/').map_or("", |(d, _)| d);
            forms.entry(dir).or_default().push(entry);
        }
    }
    let mut debs: BTreeMap<String, FileCheck> = BTreeMap::new();
    for (dir, mut candidates) in forms {
        candidates.sort_by_key(|e| rank(&e.path));
        let mut found = None;
        for entry in &candidates {
            let Some(url) = join(dists, &entry.path) else {
                continue;
            };
            match fetcher.get(&url, MAX_INDEX_BYTES).await {
                Ok(Some(b)) => {
                    found = Some((*entry, url, b));
                    break;
                }
                Ok(None) => {} // reported by the Release check when it matters
                Err(e) => report.unchecked(url.as_str(), e.to_string()),
            }
        }
        let Some((entry, url, bytes)) = found else {
            continue;
        };
        let text = match inflate(&entry.path, &bytes) {
            Ok(t) => t,
            Err(e) => {
                report.problem(url.as_str(), e);
                continue;
            }
        };
        // apt checks what it inflates against the uncompressed entry.
        let plain = format!("{dir}/Packages");
        if let Some(listed) = candidates
            .iter()
            .find(|e| e.path == plain && e.path != entry.path)
        {
            use sha2::Digest as _;
            let sha = hex::encode(sha2::Sha256::digest(text.as_bytes()));
            if sha != listed.sha256.to_ascii_lowercase() || text.len() as u64 != listed.size {
                report.problem(
                    url.as_str(),
                    format!(
                        "inflates to {} bytes with SHA-256 {sha}; Release lists {plain} as {} \
                         bytes with {} (apt: Hash Sum mismatch)",
                        text.len(),
                        listed.size,
                        listed.sha256
                    ),
                );
            }
        }
        for stanza in text.split("\n\n").filter(|s| !s.trim().is_empty()) {
            let fields: BTreeMap<String, String> = match parse_control(stanza.as_bytes()) {
                Ok(f) => f
                    .into_iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v))
                    .collect(),
                Err(e) => {
                    report.problem(url.as_str(), format!("a stanza apt cannot read: {e}"));
                    continue;
                }
            };
            let name = fields.get("package").cloned().unwrap_or_default();
            let Some(filename) = fields.get("filename") else {
                report.problem(url.as_str(), format!("package {name:?} has no Filename"));
                continue;
            };
            let size = fields.get("size").and_then(|s| s.trim().parse().ok());
            let digest = match (fields.get("sha256"), fields.get("md5sum")) {
                (Some(h), _) => Expected::Sha256(h.trim().to_ascii_lowercase()),
                (None, Some(h)) => Expected::Md5(h.trim().to_ascii_lowercase()),
                (None, None) => {
                    report.problem(
                        url.as_str(),
                        format!("{filename}: no SHA256 (apt refuses it)"),
                    );
                    continue;
                }
            };
            if size.is_none() {
                report.problem(url.as_str(), format!("{filename}: no valid Size"));
            }
            let Some(file_url) = join(base, filename) else {
                report.problem(url.as_str(), format!("{filename}: not a plain path"));
                continue;
            };
            if let Some(seen) = debs.get(filename) {
                if seen.digest.as_ref() != Some(&digest) || seen.size != size {
                    report.problem(
                        url.as_str(),
                        format!("{filename}: another size or hash than in another Packages"),
                    );
                }
                continue;
            }
            debs.insert(
                filename.clone(),
                FileCheck {
                    url: file_url,
                    size,
                    digest: Some(digest),
                    apk_checksum: None,
                    package: true,
                },
            );
        }
    }
    fetcher
        .check_files(debs.into_values().collect(), report)
        .await;
}

/// A `Packages` file's text, inflated by its name's extension.
fn inflate(path: &str, bytes: &[u8]) -> Result<String, String> {
    let mut text = Vec::new();
    let result = if path.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(bytes)
            .take(MAX_PACKAGES_TEXT + 1)
            .read_to_end(&mut text)
    } else if path.ends_with(".xz") {
        xz2::read::XzDecoder::new(bytes)
            .take(MAX_PACKAGES_TEXT + 1)
            .read_to_end(&mut text)
    } else {
        text.extend_from_slice(bytes);
        Ok(text.len())
    };
    result.map_err(|e| format!("cannot be inflated: {e}"))?;
    if text.len() as u64 > MAX_PACKAGES_TEXT {
        return Err(format!(
            "more than {MAX_PACKAGES_TEXT} bytes inflated (the limit)"
        ));
    }
    String::from_utf8(text).map_err(|_| "not UTF-8 text".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> Url {
        Url::parse("http://h/acme/debian/dists/bookworm/InRelease").unwrap()
    }

    #[test]
    fn release_fields_apt_needs_are_checked() {
        let good = "Origin: acme\nSuite: bookworm\nDate: Sat, 10 Aug 2024 09:09:13 UTC\n\
                    Architectures: amd64\nComponents: main\nAcquire-By-Hash: yes\nSHA256:\n \
                    00 1 main/binary-amd64/Packages\n";
        let mut report = Report::new("u", "deb", false);
        assert!(check_fields(&url(), good, "bookworm", &mut report));
        assert!(report.problems.is_empty(), "{:?}", report.problems);

        let bad = "Origin: acme\nDate: Sat, 10 Aug 2999 09:09:13 UTC\nValid-Until: Fri, 10 Aug 2001 09:09:13 UTC\n";
        let mut report = Report::new("u", "deb", false);
        assert!(!check_fields(&url(), bad, "bookworm", &mut report));
        let all: Vec<&str> = report.problems.iter().map(|p| p.problem.as_str()).collect();
        for want in [
            "Architectures",
            "Components",
            "SHA256",
            "Suite",
            "future",
            "expired",
        ] {
            assert!(all.iter().any(|p| p.contains(want)), "{want}: {all:?}");
        }
    }

    #[test]
    fn packages_files_are_inflated_by_name() {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"Package: a\n").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            inflate("main/binary-amd64/Packages.gz", &gz).unwrap(),
            "Package: a\n"
        );
        assert!(inflate("main/binary-amd64/Packages.gz", &gz[..gz.len() / 2]).is_err());
        assert_eq!(inflate("Packages", b"x").unwrap(), "x");
    }
}
