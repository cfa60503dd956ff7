//! Alpine: each arch folder's `APKINDEX.tar.gz` checked as apk-tools 2.14
//! and 3.x read it (/work/shared/reference/apk-client.md): the signature
//! member first and cut (no end-of-archive blocks), the first `.SIGN.*`
//! entry whose key is trusted checked over every byte after that member,
//! the index text within apk's line limits ([`check_index_text`]), then
//! every record's package at `<repo>/<A:>/<P:>-<V:>.apk` with the size `S:`
//! and the identity `C:` (read by the project's own `.apk` reader).

use std::io::Read;

use flate2::bufread::{GzDecoder, MultiGzDecoder};
use reqwest::Url;

use super::VerifyError;
use super::fetch::{Fetcher, FileCheck, MAX_INDEX_BYTES, join};
use super::keys::{RsaPublic, UserKeys, parse_rsa, rsa_verify};
use super::report::{KeySource, Report};
use crate::formats::apk::limits::{Severity, check_index_text};

/// The largest `APKINDEX` text read (inflated).
pub const MAX_INDEX_TEXT: u64 = 512 << 20;

/// The largest public key file read.
const MAX_KEY_BYTES: u64 = 64 << 10;

/// One `.SIGN.<type>.<key name>` entry of the signature member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureEntry {
    /// `RSA`, `RSA256`, `RSA512`, `DSA`...
    pub kind: String,
    /// The key file name apk looks up.
    pub key_name: String,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

/// An `APKINDEX.tar.gz` taken apart.
#[derive(Debug, Clone)]
pub struct ApkIndex {
    /// The `.SIGN.*` entries, in order.
    pub signatures: Vec<SignatureEntry>,
    /// The bytes the signatures cover (every byte after the first member).
    pub signed: Vec<u8>,
    /// The `APKINDEX` text, if the rest could be read.
    pub text: Option<String>,
    /// What is wrong with the file's structure.
    pub problems: Vec<String>,
}

/// Takes an `APKINDEX.tar.gz` apart the way apk reads it. Pure.
pub fn parse_index(bytes: &[u8]) -> ApkIndex {
    let mut index = ApkIndex {
        signatures: Vec::new(),
        signed: Vec::new(),
        text: None,
        problems: Vec::new(),
    };
    let mut decoder = GzDecoder::new(bytes);
    let mut tar = Vec::new();
    if let Err(e) = (&mut decoder)
        .take(MAX_KEY_BYTES * 16)
        .read_to_end(&mut tar)
    {
        index
            .problems
            .push(format!("not a gzip file (apk: BAD archive): {e}"));
        return index;
    }
    let rest = decoder.into_inner();
    match signature_entries(&tar) {
        Ok(entries) if entries.is_empty() => {
            // Unsigned: the first member is the index itself.
            index.problems.push(
                "no `.SIGN.*` entry first: the index is not signed (apk: UNTRUSTED signature)"
                    .to_owned(),
            );
            index.signed = bytes.to_vec();
        }
        Ok(entries) => {
            index.signatures = entries;
            index.signed = rest.to_vec();
        }
        Err(problem) => {
            index.problems.push(problem);
            index.signed = rest.to_vec();
        }
    }
    match index_text(&index.signed) {
        Ok(text) => index.text = Some(text),
        Err(problem) => index.problems.push(problem),
    }
    index
}

/// The `.SIGN.*` entries of the signature member's tar, refusing what
/// makes apk fail (end-of-archive blocks, a partial block).
fn signature_entries(tar: &[u8]) -> Result<Vec<SignatureEntry>, String> {
    let mut entries = Vec::new();
    let mut at = 0;
    while at < tar.len() {
        let Some(header) = tar.get(at..at + 512) else {
            return Err("the signature member ends inside a tar header (apk: BAD archive)".into());
        };
        if header.iter().all(|&b| b == 0) {
            return Err(
                "the signature member ends with tar end-of-archive blocks: apk stops reading \
                 there and refuses the index (BAD archive)"
                    .to_owned(),
            );
        }
        let name_end = header[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let name = String::from_utf8_lossy(&header[..name_end]).into_owned();
        let size_field = String::from_utf8_lossy(&header[124..136]);
        let size = u64::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
            .map_err(|_| format!("signature member: entry {name:?} has no valid size"))?;
        let data_start = at + 512;
        let data_end = data_start
            .checked_add(usize::try_from(size).map_err(|_| "signature entry too large")?)
            .filter(|&e| e <= tar.len())
            .ok_or_else(|| format!("signature member: entry {name:?} is truncated"))?;
        let kind_flag = header[156];
        at = data_start + (data_end - data_start).div_ceil(512) * 512;
        if matches!(kind_flag, b'x' | b'g') {
            continue; // pax headers, as abuild writes them
        }
        let Some(rest) = name.strip_prefix(".SIGN.") else {
            break; // apk stops looking for signatures at the first other entry
        };
        let (kind, key_name) = rest.split_once('.').unwrap_or((rest, ""));
        entries.push(SignatureEntry {
            kind: kind.to_owned(),
            key_name: key_name.to_owned(),
            signature: tar[data_start..data_end].to_vec(),
        });
    }
    Ok(entries)
}

/// The `APKINDEX` text of the signed members.
fn index_text(signed: &[u8]) -> Result<String, String> {
    let mut tar = Vec::new();
    MultiGzDecoder::new(signed)
        .take(MAX_INDEX_TEXT * 2)
        .read_to_end(&mut tar)
        .map_err(|e| format!("the index member is not readable gzip (truncated?): {e}"))?;
    let mut archive = tar::Archive::new(tar.as_slice());
    let entries = archive
        .entries()
        .map_err(|e| format!("the index member is not a tar: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("the index member's tar is broken: {e}"))?;
        let path = entry.path_bytes().into_owned();
        if path == b"APKINDEX" {
            if entry.size() > MAX_INDEX_TEXT {
                return Err(format!(
                    "APKINDEX is {} bytes, more than {MAX_INDEX_TEXT} (the limit)",
                    entry.size()
                ));
            }
            let mut text = Vec::new();
            entry
                .read_to_end(&mut text)
                .map_err(|e| format!("APKINDEX cannot be read: {e}"))?;
            return String::from_utf8(text).map_err(|_| "APKINDEX is not UTF-8 text".to_owned());
        }
    }
    Err("the index member has no APKINDEX file".to_owned())
}

/// One package an `APKINDEX` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// `A:` (apk fetches the file from this arch folder).
    pub arch: Option<String>,
    /// `<P:>-<V:>.apk`.
    pub file: String,
    /// `S:`.
    pub size: Option<u64>,
    /// `C:`.
    pub checksum: Option<String>,
}

/// The packages an `APKINDEX` names (records without `P:` or `V:` are
/// reported by [`check_index_text`]).
pub fn records(text: &str) -> Vec<IndexEntry> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let (mut arch, mut name, mut version, mut size, mut checksum) =
            (None, None, None, None, None);
        for line in block.lines() {
            let Some((field, value)) = line.split_once(':') else {
                continue;
            };
            match field {
                "A" => arch = Some(value.to_owned()),
                "P" => name = Some(value),
                "V" => version = Some(value),
                "S" => size = value.parse().ok(),
                "C" => checksum = Some(value.to_owned()),
                _ => {}
            }
        }
        if let (Some(name), Some(version)) = (name, version) {
            out.push(IndexEntry {
                arch,
                file: format!("{name}-{version}.apk"),
                size,
                checksum,
            });
        }
    }
    out
}

/// Checks every arch folder.
pub async fn verify(
    fetcher: &Fetcher,
    keys: &UserKeys,
    arches: &[(String, Url)],
    report: &mut Report,
) -> Result<(), VerifyError> {
    if !keys.is_empty() {
        if keys.rsa.is_empty() {
            return Err(VerifyError::Key(
                "apk indexes are signed with RSA keys: give the `.rsa.pub` file with --key"
                    .to_owned(),
            ));
        }
        report.use_keys(KeySource::Given {
            files: keys.files.clone(),
        });
    }
    for (arch, dir) in arches {
        verify_arch(fetcher, keys, arch, dir, report).await;
    }
    Ok(())
}

async fn verify_arch(
    fetcher: &Fetcher,
    keys: &UserKeys,
    arch: &str,
    dir: &Url,
    report: &mut Report,
) {
    let url = join(dir, "APKINDEX.tar.gz").expect("a plain name");
    let bytes = match fetcher.get(&url, MAX_INDEX_BYTES).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            report.unchecked(url.as_str(), format!("not found: no index for arch {arch}"));
            return;
        }
        Err(e) => {
            report.unchecked(url.as_str(), e.to_string());
            return;
        }
    };
    report.files += 1;
    report.bytes += bytes.len() as u64;
    let index = tokio::task::spawn_blocking(move || parse_index(&bytes))
        .await
        .expect("the index parser does not panic");
    for problem in &index.problems {
        report.problem(url.as_str(), problem.clone());
    }
    check_signature(fetcher, keys, dir, &url, &index, report).await;
    let Some(text) = &index.text else {
        return;
    };
    for p in check_index_text(text) {
        match p.severity {
            Severity::Index | Severity::Package => report.problem(url.as_str(), p.to_string()),
            Severity::Policy => report.warn(format!("{url}: {p}")),
        }
    }
    let records = records(text);
    report
        .indexes
        .push(format!("{url} ({} packages)", records.len()));
    let repo = join(dir, "../").expect("a plain path");
    let mut checks = Vec::new();
    for IndexEntry {
        arch: record_arch,
        file,
        size,
        checksum,
    } in records
    {
        let record_arch = record_arch.unwrap_or_else(|| arch.to_owned());
        let Some(file_url) = join(&repo, &format!("{record_arch}/{file}")) else {
            report.problem(
                url.as_str(),
                format!("{file}: A:{record_arch} is not a plain folder name"),
            );
            continue;
        };
        checks.push(FileCheck {
            url: file_url,
            size,
            digest: None,
            apk_checksum: if fetcher.downloads() { checksum } else { None },
            package: true,
        });
    }
    fetcher.check_files(checks, report).await;
}

/// Checks the signature as apk does: the first entry whose key is trusted
/// decides.
async fn check_signature(
    fetcher: &Fetcher,
    keys: &UserKeys,
    dir: &Url,
    url: &Url,
    index: &ApkIndex,
    report: &mut Report,
) {
    if index.signatures.is_empty() {
        return;
    }
    let trusted: Vec<RsaPublic> = if keys.is_empty() {
        published_keys(fetcher, dir, index, report).await
    } else {
        keys.rsa.clone()
    };
    let names: Vec<&str> = index
        .signatures
        .iter()
        .map(|s| s.key_name.as_str())
        .collect();
    for entry in &index.signatures {
        let Some(key) = trusted.iter().find(|k| k.name == entry.key_name) else {
            continue;
        };
        match rsa_verify(&key.key, &entry.kind, &index.signed, &entry.signature) {
            Some(true) => {}
            Some(false) => report.problem(
                url.as_str(),
                format!(
                    "BAD signature: the .SIGN.{}.{} entry does not verify with {} (apk refuses \
                     the index)",
                    entry.kind, entry.key_name, key.source
                ),
            ),
            None => report.unchecked(
                url.as_str(),
                format!("signature type {} is not checked by verify", entry.kind),
            ),
        }
        return;
    }
    // No entry names a trusted key: apk says UNTRUSTED. Say whether a key
    // would verify under its right name.
    for entry in &index.signatures {
        if let Some(key) = trusted.iter().find(|k| {
            rsa_verify(&k.key, &entry.kind, &index.signed, &entry.signature) == Some(true)
        }) {
            report.warn(format!(
                "{url}: {} verifies the signature, but apk looks the key up by file name: \
                 install it as /etc/apk/keys/{}",
                key.source, entry.key_name
            ));
            return;
        }
    }
    let tried: Vec<&str> = trusted.iter().map(|k| k.source.as_str()).collect();
    report.problem(
        url.as_str(),
        format!(
            "UNTRUSTED signature: signed by {}, and no key checked ({}) verifies it",
            names.join(", "),
            if tried.is_empty() {
                "none found".to_owned()
            } else {
                tried.join(", ")
            }
        ),
    );
}

/// The keys the index names, as published at the repo, version or distro
/// level (the most specific first, as the publisher writes overrides).
async fn published_keys(
    fetcher: &Fetcher,
    dir: &Url,
    index: &ApkIndex,
    report: &mut Report,
) -> Vec<RsaPublic> {
    let mut found = Vec::new();
    for entry in &index.signatures {
        if entry.key_name.is_empty() || entry.key_name.contains('/') {
            continue;
        }
        let mut tried = Vec::new();
        for up in ["../", "../../", "../../../"] {
            let Some(key_url) = join(dir, &format!("{up}{}", entry.key_name)) else {
                continue;
            };
            tried.push(key_url.to_string());
            match fetcher.get(&key_url, MAX_KEY_BYTES).await {
                Ok(Some(bytes)) => {
                    match parse_rsa(&entry.key_name, key_url.as_str(), &bytes) {
                        Ok(key) => {
                            report.use_keys(KeySource::Published {
                                urls: vec![key_url.to_string()],
                            });
                            found.push(key);
                        }
                        Err(e) => report.problem(key_url.as_str(), e),
                    }
                    break;
                }
                Ok(None) => {}
                Err(e) => report.unchecked(key_url.as_str(), e.to_string()),
            }
        }
        if found.iter().all(|k| k.name != entry.key_name) {
            report.warn(format!(
                "key {} is not published at {}",
                entry.key_name,
                tried.join(", ")
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::apk::index::build_signed;
    use crate::signing::RsaKey;

    fn key() -> RsaKey {
        RsaKey::from_private_pem(
            "test",
            include_str!("../../tests/fixtures/keys/test-signing.rsa"),
        )
        .unwrap()
    }

    #[test]
    fn a_signed_index_is_taken_apart() {
        let key = key();
        let bytes = build_signed("desc", &[], &key);
        let index = parse_index(&bytes);
        assert!(index.problems.is_empty(), "{:?}", index.problems);
        assert_eq!(index.signatures.len(), 1);
        assert_eq!(index.signatures[0].kind, "RSA256");
        assert_eq!(index.signatures[0].key_name, key.key_name());
        let public = parse_rsa("k", "k", key.public_pem().as_bytes()).unwrap();
        let entry = &index.signatures[0];
        assert_eq!(
            rsa_verify(&public.key, &entry.kind, &index.signed, &entry.signature),
            Some(true)
        );
        assert_eq!(index.text.as_deref(), Some(""));
    }

    #[test]
    fn truncated_and_unsigned_indexes_are_problems() {
        let bytes = build_signed("desc", &[], &key());
        let cut = parse_index(&bytes[..bytes.len() - 20]);
        assert!(
            cut.problems.iter().any(|p| p.contains("not readable gzip")),
            "{:?}",
            cut.problems
        );
        assert!(!parse_index(b"not gzip").problems.is_empty());
        let unsigned = crate::formats::apk::index::build_unsigned("d", &[]);
        let parsed = parse_index(&unsigned);
        assert!(
            parsed.problems.iter().any(|p| p.contains("not signed")),
            "{:?}",
            parsed.problems
        );
    }

    #[test]
    fn records_name_their_files() {
        let text = "C:Q1x=\nP:a\nV:1.0-r0\nA:x86_64\nS:12\n\nP:b\nV:2-r1\n\n";
        let r = records(text);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0],
            IndexEntry {
                arch: Some("x86_64".into()),
                file: "a-1.0-r0.apk".into(),
                size: Some(12),
                checksum: Some("Q1x=".into()),
            }
        );
        assert_eq!(r[1].file, "b-2-r1.apk");
    }
}
