//! RPM: each arch folder checked as dnf reads it with `repo_gpgcheck=1`:
//! `repodata/repomd.xml` signed by `repomd.xml.asc`, read by the project's
//! [`parse_repomd`], each metadata file it names with its size and SHA-256
//! (and `open-size`/`open-checksum` once inflated), then every package
//! `primary.xml` lists, at its `location href`, with its size and checksum.

use std::io::Read;

use reqwest::Url;

use super::VerifyError;
use super::fetch::{Expected, Fetcher, FileCheck, MAX_INDEX_BYTES, join};
use super::keys::{PgpPublic, UserKeys, parse_pgp, pgp_verify_detached};
use super::report::{KeySource, Report};
use super::rpm_primary::{PrimaryPackage, PrimaryScanner};
use crate::formats::rpm::repodata::{RepomdData, parse_repomd};

/// The metadata dnf needs from every repository.
const NEEDED: [&str; 3] = ["primary", "filelists", "other"];

/// Checks every arch folder.
pub async fn verify(
    fetcher: &Fetcher,
    keys: &UserKeys,
    arch_dirs: &[Url],
    key_urls: &[Url],
    report: &mut Report,
) -> Result<(), VerifyError> {
    let trusted = trusted_keys(fetcher, keys, arch_dirs, key_urls, report).await?;
    for dir in arch_dirs {
        verify_arch(fetcher, &trusted, dir, report).await;
    }
    Ok(())
}

async fn trusted_keys(
    fetcher: &Fetcher,
    keys: &UserKeys,
    arch_dirs: &[Url],
    key_urls: &[Url],
    report: &mut Report,
) -> Result<Vec<PgpPublic>, VerifyError> {
    if !keys.is_empty() {
        if keys.pgp.is_empty() {
            return Err(VerifyError::Key(
                "RPM repositories are signed with OpenPGP keys: give an OpenPGP public key \
                 (`RPM-GPG-KEY-….asc`) with --key"
                    .to_owned(),
            ));
        }
        report.use_keys(KeySource::Given {
            files: keys.files.clone(),
        });
        return Ok(keys.pgp.clone());
    }
    let mut candidates: Vec<Url> = key_urls.to_vec();
    if candidates.is_empty() {
        for dir in arch_dirs {
            if let Some(url) = published_key_url(dir) {
                if !candidates.contains(&url) {
                    candidates.push(url);
                }
            }
        }
    }
    let mut found = Vec::new();
    for url in &candidates {
        match fetcher.get(url, 1 << 20).await {
            Ok(Some(bytes)) => match parse_pgp(url.as_str(), &bytes) {
                Ok(keys) => {
                    report.use_keys(KeySource::Published {
                        urls: vec![url.to_string()],
                    });
                    found.extend(keys);
                }
                Err(e) => report.problem(url.as_str(), e),
            },
            Ok(None) => report.problem(
                url.as_str(),
                "missing: the repository's key is not published",
            ),
            Err(e) => report.unchecked(url.as_str(), e.to_string()),
        }
    }
    if found.is_empty() && candidates.is_empty() {
        report.unchecked(
            arch_dirs.first().map_or("", Url::as_str),
            "no RPM-GPG-KEY file found next to the repository to check repomd.xml.asc with: \
             give the repository's key with --key",
        );
    }
    Ok(found)
}

/// Where this project publishes the key of the repository an arch folder
/// belongs to: `RPM-GPG-KEY-<org>-<distro>-<version>-<repo>.asc` in the repo
/// folder (Fedora: `<org>/fedora/linux/releases/<version>/<repo>/<arch>/os/`;
/// others: `<org>/<distro>/<version>/<repo>/<arch>/`).
pub fn published_key_url(dir: &Url) -> Option<Url> {
    let s: Vec<&str> = dir.path_segments()?.filter(|s| !s.is_empty()).collect();
    let n = s.len();
    let (repo_up, org, distro, version, repo) =
        if s.last() == Some(&"os") && n >= 8 && s[n - 5] == "releases" && s[n - 6] == "linux" {
            ("../../", s[n - 8], s[n - 7], s[n - 4], s[n - 3])
        } else if n >= 5 {
            ("../", s[n - 5], s[n - 4], s[n - 3], s[n - 2])
        } else {
            return None;
        };
    join(
        dir,
        &format!("{repo_up}RPM-GPG-KEY-{org}-{distro}-{version}-{repo}.asc"),
    )
}

async fn verify_arch(fetcher: &Fetcher, trusted: &[PgpPublic], dir: &Url, report: &mut Report) {
    let repomd_url = join(dir, "repodata/repomd.xml").expect("a plain name");
    let asc_url = join(dir, "repodata/repomd.xml.asc").expect("a plain name");
    let repomd = match fetcher.get(&repomd_url, MAX_INDEX_BYTES).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            report.unchecked(repomd_url.as_str(), "not found: no repository here");
            return;
        }
        Err(e) => {
            report.unchecked(repomd_url.as_str(), e.to_string());
            return;
        }
    };
    report.files += 1;
    report.bytes += repomd.len() as u64;
    match fetcher.get(&asc_url, 1 << 20).await {
        Ok(Some(sig)) => {
            report.files += 1;
            if !trusted.is_empty() {
                match pgp_verify_detached(trusted, &repomd, &sig) {
                    Err(e) => report.problem(asc_url.as_str(), e),
                    Ok(signers) if signers.is_empty() => report.problem(
                        asc_url.as_str(),
                        format!(
                            "no valid signature of repomd.xml by the trusted key(s) {} (dnf \
                             with repo_gpgcheck=1 refuses the repository)",
                            trusted
                                .iter()
                                .map(|k| k.fingerprint.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ),
                    Ok(_) => {}
                }
            }
        }
        Ok(None) => report.problem(
            asc_url.as_str(),
            "missing: repomd.xml is not signed (dnf with repo_gpgcheck=1 refuses the repository)",
        ),
        Err(e) => report.unchecked(asc_url.as_str(), e.to_string()),
    }
    let records = match std::str::from_utf8(&repomd)
        .map_err(|_| "repomd.xml is not UTF-8".to_owned())
        .and_then(|t| parse_repomd(t).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            report.problem(repomd_url.as_str(), e);
            return;
        }
    };
    for kind in NEEDED {
        if !records.iter().any(|r| r.kind == kind) {
            report.problem(
                repomd_url.as_str(),
                format!("no <data type=\"{kind}\"> record"),
            );
        }
    }
    let mut others = Vec::new();
    let mut packages = Vec::new();
    for record in &records {
        let Some(url) = join(dir, &record.href) else {
            report.problem(
                repomd_url.as_str(),
                format!("{}: not a plain path", record.href),
            );
            continue;
        };
        if NEEDED.contains(&record.kind.as_str()) {
            if let Some(found) = check_metadata(fetcher, &url, record, report).await {
                packages.extend(found);
            }
        } else {
            others.push(FileCheck {
                url,
                size: Some(record.size),
                digest: Some(Expected::Sha256(record.checksum.clone())),
                apk_checksum: None,
                package: false,
            });
        }
    }
    report
        .indexes
        .push(format!("{repomd_url} ({} packages)", packages.len()));
    fetcher.check_files(others, report).await;
    let mut checks = Vec::new();
    for p in packages {
        let Some(url) = join(dir, &p.href) else {
            report.problem(repomd_url.as_str(), format!("{}: not a plain path", p.href));
            continue;
        };
        checks.push(FileCheck {
            url,
            size: p.size,
            digest: p.checksum,
            apk_checksum: None,
            package: true,
        });
    }
    fetcher.check_files(checks, report).await;
}

/// Checks one of primary, filelists, other: stored size and SHA-256, and the
/// inflated ones; returns primary's packages.
async fn check_metadata(
    fetcher: &Fetcher,
    url: &Url,
    record: &RepomdData,
    report: &mut Report,
) -> Option<Vec<PrimaryPackage>> {
    let bytes = match fetcher.get(url, MAX_INDEX_BYTES).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            report.problem(url.as_str(), "missing (repomd.xml names it)");
            return None;
        }
        Err(e) => {
            report.unchecked(url.as_str(), e.to_string());
            return None;
        }
    };
    report.files += 1;
    report.bytes += bytes.len() as u64;
    if bytes.len() as u64 != record.size {
        report.problem(
            url.as_str(),
            format!(
                "repomd.xml gives {} bytes, the file is {} bytes",
                record.size,
                bytes.len()
            ),
        );
    }
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    if sha != record.checksum {
        report.problem(
            url.as_str(),
            format!(
                "SHA-256 mismatch: repomd.xml gives {}, the file has {sha}",
                record.checksum
            ),
        );
    }
    let href = record.href.clone();
    let primary = record.kind == "primary";
    let read = tokio::task::spawn_blocking(move || inflate_and_scan(&href, &bytes, primary))
        .await
        .expect("the metadata reader does not panic");
    let read = match read {
        Ok(r) => r,
        Err(e) => {
            report.problem(url.as_str(), e);
            return None;
        }
    };
    if record.open_size.is_some_and(|s| s != read.open_size) {
        report.problem(
            url.as_str(),
            format!(
                "repomd.xml gives an open-size of {}, it inflates to {} bytes",
                record.open_size.unwrap_or(0),
                read.open_size
            ),
        );
    }
    if let Some(open) = &record.open_checksum {
        if *open != read.open_sha256 {
            report.problem(
                url.as_str(),
                format!(
                    "open-checksum mismatch: repomd.xml gives {open}, it inflates to {}",
                    read.open_sha256
                ),
            );
        }
    }
    for p in read.problems {
        report.problem(url.as_str(), p);
    }
    primary.then_some(read.packages)
}

struct Inflated {
    open_size: u64,
    open_sha256: String,
    packages: Vec<PrimaryPackage>,
    problems: Vec<String>,
}

/// Inflates a metadata file by its name's extension, hashing it, and scans
/// `primary.xml` for packages as it goes (never whole in memory).
fn inflate_and_scan(href: &str, bytes: &[u8], primary: bool) -> Result<Inflated, String> {
    use sha2::Digest as _;
    let mut reader: Box<dyn Read + '_> = if href.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(bytes))
    } else if href.ends_with(".xz") {
        Box::new(xz2::read::XzDecoder::new(bytes))
    } else if href.ends_with(".zst") {
        Box::new(
            ruzstd::decoding::StreamingDecoder::new(bytes)
                .map_err(|e| format!("not zstd data: {e}"))?,
        )
    } else if href.ends_with(".xml") {
        Box::new(bytes)
    } else {
        return Err(format!("{href}: a compression verify does not read"));
    };
    let mut hasher = sha2::Sha256::new();
    let mut scanner = PrimaryScanner::default();
    let mut open_size = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| format!("cannot be inflated (truncated?): {e}"))?;
        if n == 0 {
            break;
        }
        open_size += n as u64;
        hasher.update(&buf[..n]);
        if primary {
            scanner.feed(&buf[..n]);
        }
    }
    let (packages, problems) = if primary {
        scanner.finish()
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(Inflated {
        open_size,
        open_sha256: hex::encode(hasher.finalize()),
        packages,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_key_is_found_from_an_arch_folder() {
        let fedora =
            Url::parse("http://h/p/acme/fedora/linux/releases/40/server/x86_64/os/").unwrap();
        assert_eq!(
            published_key_url(&fedora).unwrap().as_str(),
            "http://h/p/acme/fedora/linux/releases/40/server/RPM-GPG-KEY-acme-fedora-40-server.asc"
        );
        let rocky = Url::parse("http://h/acme/rocky/9/base/aarch64/").unwrap();
        assert_eq!(
            published_key_url(&rocky).unwrap().as_str(),
            "http://h/acme/rocky/9/base/RPM-GPG-KEY-acme-rocky-9-base.asc"
        );
        assert!(published_key_url(&Url::parse("http://h/a/").unwrap()).is_none());
    }
}
