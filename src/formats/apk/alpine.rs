//! [`Alpine`]: the `.apk` format as the publish core sees it.
//!
//! A root is one repo arch; its root file is the signed `APKINDEX.tar.gz`.
//! Records are [`ApkRecord`]s keyed by file name and split into
//! [`CHUNKS`] chunks by [`chunk_of`]; each chunk's cached part is its
//! `APKINDEX` text as a raw deflate segment ([`super::segmented`]), so a
//! publish compresses only the chunks it changed and the bytes equal a full
//! render.

use std::collections::BTreeSet;
use std::io::Read;

use serde::{Deserialize, Serialize};

use super::ApkRecord;
use super::index::{assemble_with_spans, chunk_segment, sign_unsigned, split_signed};
use super::limits::{LimitProblem, Severity, check_index_text, check_rendered_record};
use super::segmented::{CHUNKS, TextSegment, chunk_of};
use crate::core::RootProblem;
use crate::formats::{ClientReport, Format, Part, RenderedRoot};
use crate::keys::{KeyError, KeySet};
use crate::repo::{Key, RepoArch, RootId};
use crate::signing::{SigningError, SigningKey};

/// The Alpine Linux format (`.apk` packages, `APKINDEX.tar.gz` per repo arch).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Alpine;

/// What the manifest keeps about a chunk's deflate segment (stored as
/// `crc32` and `text_len` beside the chunk's id, as before formats were generic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// CRC-32 of the chunk's `APKINDEX` text.
    pub crc32: u32,
    /// Length of that text.
    pub text_len: u64,
}

/// The description written into every index (`DESCRIPTION`, at most 160 bytes).
pub fn description(arch: &RepoArch) -> String {
    format!("{} {}/{}", arch.repo.org, arch.repo.version, arch.repo.repo)
}

fn root_arch(root: &RootId) -> &RepoArch {
    root.arch()
        .expect("Alpine roots are repo arches: the core only gets roots from the format")
}

impl Format for Alpine {
    type Record = ApkRecord;
    type PartMeta = SegmentMeta;
    type SignKey = SigningKey;

    fn pick_key(&self, set: &KeySet) -> Result<SigningKey, KeyError> {
        set.signing_key().cloned().ok_or_else(|| KeyError::Signing {
            key: Key::PrivateKey(set.scope().clone()).path(),
            reason: SigningError::InvalidKey("the key set has no active RSA key".to_owned()),
        })
    }

    fn usage_of(&self, record: &ApkRecord) -> Option<(String, u64)> {
        Some((String::new(), record.file_size))
    }

    fn entry_key(&self, record: &ApkRecord) -> String {
        record.file_name()
    }

    fn chunks(&self) -> u32 {
        CHUNKS
    }

    fn chunk_of(&self, entry: &str) -> u32 {
        chunk_of(entry)
    }

    fn render_part(&self, records: &[&ApkRecord]) -> Part<SegmentMeta> {
        let list: Vec<ApkRecord> = records.iter().map(|r| (*r).clone()).collect();
        let segment = chunk_segment(&list);
        Part {
            meta: SegmentMeta {
                crc32: segment.crc32,
                text_len: segment.text_len,
            },
            bytes: segment.deflate,
        }
    }

    fn root_file(&self, root: &RootId) -> Key {
        Key::Index(root_arch(root).clone())
    }

    fn render_root(&self, root: &RootId, parts: &[Part<SegmentMeta>]) -> RenderedRoot {
        let segments: Vec<TextSegment> = parts
            .iter()
            .map(|p| TextSegment {
                deflate: p.bytes.clone(),
                crc32: p.meta.crc32,
                text_len: p.meta.text_len,
            })
            .collect();
        let (body, spans) = assemble_with_spans(
            &description(root_arch(root)),
            &segments.iter().collect::<Vec<_>>(),
        );
        RenderedRoot {
            files: Vec::new(),
            body,
            spans,
        }
    }

    fn reusable_body(&self, published: &[u8]) -> Option<Vec<u8>> {
        split_signed(published).map(|(_, _, unsigned)| unsigned)
    }

    fn browse_page(
        &self,
        root: &RootId,
        parts: &[Part<SegmentMeta>],
        ids: &[String],
        keys: Option<&KeySet>,
    ) -> Option<(Key, Vec<u8>)> {
        use crate::browse::{Level, root_page_from_parts, rows};
        let level = Level::Arch(root_arch(root).clone());
        Some(root_page_from_parts(&level, parts, ids, keys, |part| {
            rows::inflate(&part.bytes, part.meta.text_len)
                .map(|text| rows::apk_rows(&text))
                .unwrap_or_default()
        }))
    }

    fn sign(&self, body: Vec<u8>, key: &SigningKey) -> Result<Vec<u8>, KeyError> {
        Ok(sign_unsigned(body, key))
    }

    /// Inflates the `APKINDEX` and checks it with
    /// [`check_index_text`]: problems at [`Severity::Package`] or above are
    /// refused, [`Severity::Policy`] ones are warnings. An unreadable file
    /// reports nothing here ([`Format::verify`] calls it malformed).
    fn client_problems(&self, published: &[u8]) -> ClientReport {
        let Some(text) = split_signed(published).and_then(|(_, _, unsigned)| index_text(&unsigned))
        else {
            return ClientReport::default();
        };
        let problems = check_index_text(&text);
        let (refused, warnings): (Vec<&LimitProblem>, Vec<&LimitProblem>) = problems
            .iter()
            .partition(|p| p.severity >= Severity::Package);
        ClientReport {
            refused: listed(&refused),
            warnings: listed(&warnings),
        }
    }

    /// Renders the record alone and checks it with [`check_rendered_record`]:
    /// any problem at [`Severity::Package`] or above makes it unservable.
    fn unservable(&self, record: &ApkRecord) -> Option<String> {
        let reasons: Vec<String> = check_rendered_record(record)
            .into_iter()
            .filter(|p| p.severity >= Severity::Package)
            .map(|p| match p.field {
                Some(field) => format!("field `{field}:`: {}", p.message),
                None => p.message,
            })
            .collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    fn verify(
        &self,
        published: &[u8],
        records: &[&ApkRecord],
        key: Option<&SigningKey>,
    ) -> Vec<RootProblem> {
        let mut problems = Vec::new();
        let Some((_, signature, unsigned)) = split_signed(published) else {
            problems.push(RootProblem::Malformed);
            return problems;
        };
        if key.is_some_and(|key| !key.verify_sha256(&unsigned, &signature)) {
            problems.push(RootProblem::BadSignature);
        }
        match listed_packages(&unsigned) {
            Some(listed) => {
                let recorded: BTreeSet<String> = records
                    .iter()
                    .map(|r| format!("{}-{}", r.name, r.version))
                    .collect();
                let missing: Vec<String> = recorded.difference(&listed).cloned().collect();
                let extra: Vec<String> = listed.difference(&recorded).cloned().collect();
                if missing.is_empty() && extra.is_empty() {
                    problems.push(RootProblem::Differs);
                } else {
                    problems.push(RootProblem::Stale { missing, extra });
                }
            }
            None => problems.push(RootProblem::Malformed),
        }
        problems
    }
}

/// Most problems of one kind listed in a [`ClientReport`]; the rest are counted.
const MAX_LISTED: usize = 20;

/// Formats `problems` for a report, at most [`MAX_LISTED`] of them.
fn listed(problems: &[&LimitProblem]) -> Vec<String> {
    let mut out: Vec<String> = problems
        .iter()
        .take(MAX_LISTED)
        .map(|p| match &p.checksum {
            Some(checksum) => format!("{p} [C:{checksum}]"),
            None => p.to_string(),
        })
        .collect();
    if problems.len() > MAX_LISTED {
        out.push(format!("… and {} more", problems.len() - MAX_LISTED));
    }
    out
}

/// The `APKINDEX` member of an unsigned index (UTF-8 errors replaced, as
/// apk reads bytes), or `None` if unreadable.
fn index_text(unsigned: &[u8]) -> Option<String> {
    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(unsigned));
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        if entry.path().ok()?.to_str()? != "APKINDEX" {
            continue;
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).ok()?;
        return Some(String::from_utf8_lossy(&bytes).into_owned());
    }
    None
}

/// The `name-version` of every record in an unsigned index, or `None` if unreadable.
fn listed_packages(unsigned: &[u8]) -> Option<BTreeSet<String>> {
    let text = index_text(unsigned)?;
    let mut out = BTreeSet::new();
    for record in text.split("\n\n") {
        let field = |letter: &str| {
            record
                .lines()
                .find_map(|l| l.strip_prefix(letter))
                .map(str::to_owned)
        };
        if let (Some(name), Some(version)) = (field("P:"), field("V:")) {
            out.insert(format!("{name}-{version}"));
        }
    }
    Some(out)
}
