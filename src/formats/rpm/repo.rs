//! An RPM repository arch as a [`Format`]: `repodata/repomd.xml`, signed by
//! a detached armored `repomd.xml.asc`, naming content-named `primary`,
//! `filelists` and `other` metadata.
//!
//! Each record carries its three XML fragments, rendered once at upload from
//! the package ([`super::repodata::package_xml`]); a chunk's part is those
//! fragments compressed as three raw deflate segments ended by a full flush,
//! and each `*.xml.gz` is assembled from every chunk's segment between a
//! head (with the package count) and a tail. Adding one package to 10,000
//! compresses one chunk's fragments, never the rest.
//!
//! `repomd.xml` is the root file, written last; its signature, the
//! repository's public key and the `.repo` file are written just before it.
//! `repomd.xml` lists no `open-checksum` (dnf does not need one, and it
//! would need every chunk's text).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::repodata::{
    FILELISTS_TAIL, OTHER_TAIL, PRIMARY_TAIL, RepomdData, filelists_head, other_head, parse_repomd,
    primary_head, repomd_xml,
};
use crate::core::RootProblem;
use crate::formats::apk::segmented::compress_segment;
use crate::formats::deb::release::{SuiteKeys, pgp_keys, pick_pgp_keys, sign_with};
use crate::formats::deflate::gzip_from_segments;
use crate::formats::{Format, Part, RenderedRoot};
use crate::keys::{KeyError, KeySet};
use crate::repo::{Key, RepoArch, RootId, Segment, rpm_arch_dir_named, rpm_repo_id};
use crate::signing::SignatureFormat;
use crate::signing::openpgp::keyring_armored;

/// How many chunks a repo arch's records are split into.
const CHUNKS: u32 = 64;

/// The metadata files, in the order of [`RpmParts::segments`].
const KINDS: [&str; 3] = ["primary", "filelists", "other"];

/// One package of an RPM repo arch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpmRecord {
    /// `NAME`.
    pub name: String,
    /// `EPOCH` (0 when absent).
    pub epoch: u32,
    /// `VERSION`.
    pub version: String,
    /// `RELEASE`.
    pub release: String,
    /// `ARCH` (`noarch` stays `noarch` in every arch it is published to).
    pub arch: String,
    /// The file name (`<name>-<version>-<release>.<arch>.rpm`): the entry key.
    pub file_name: String,
    /// Where the file is, relative to the arch folder (`Packages/a/<file>`).
    pub location: String,
    /// SHA-256 of the published file (signed by us, when the repo signs
    /// packages).
    pub sha256: String,
    /// Size of the published file.
    pub size: u64,
    /// SHA-256 of the file as uploaded: uploading it again is idempotent.
    pub source_sha256: String,
    /// Fingerprint of the key that signed the published file, when we did.
    pub signed_by: Option<String>,
    /// `SUMMARY`.
    pub summary: String,
    /// `URL`.
    pub url: String,
    /// `LICENSE`.
    pub license: String,
    /// `PACKAGER`.
    pub packager: String,
    /// `SOURCERPM`.
    pub source_rpm: String,
    /// Installed size.
    pub installed_size: u64,
    /// Requires as createrepo_c lists them (names with any version).
    pub requires: Vec<String>,
    /// Provides (names with any version).
    pub provides: Vec<String>,
    /// The `<package>` element of `primary.xml`.
    pub primary: String,
    /// The `<package>` element of `filelists.xml`.
    pub filelists: String,
    /// The `<package>` element of `other.xml`.
    pub other: String,
}

/// What the manifest keeps about one metadata file's segment of a chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// CRC-32 of the uncompressed text.
    pub crc32: u32,
    /// Length of the uncompressed text.
    pub text_len: u64,
    /// Length of the deflate segment in the part's bytes.
    pub deflate_len: u64,
}

/// What the manifest keeps about a chunk's part: how many packages it holds,
/// and its `primary`, `filelists` and `other` segments (the part's bytes are
/// the three segments one after another).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpmParts {
    /// Packages in the chunk.
    pub packages: u64,
    /// One per metadata file, in [`KINDS`] order.
    pub segments: [SegmentMeta; 3],
}

/// An RPM repo arch as a [`Format`]. What it carries decides the `.repo`
/// file: without a public URL none is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RpmRepo {
    /// The URL the public tree is served at (`PACKAGES_PUBLIC_URL`), for the
    /// `.repo` file's `baseurl` and `gpgkey`.
    pub public_url: Option<String>,
    /// Whether published packages carry our signature (`gpgcheck=1`).
    pub signs_packages: bool,
}

fn root_arch(root: &RootId) -> &RepoArch {
    match root {
        RootId::Arch(arch) => arch,
        _ => panic!("RPM roots are repo arches: the core only gets roots from the format"),
    }
}

fn repodata(arch: &RepoArch, file: &str) -> Key {
    Key::Repodata {
        arch: arch.clone(),
        file: Segment::parse("file name", file).expect("repodata names are valid segments"),
    }
}

/// The three metadata files of a repo arch, compressed, with their names.
fn metadata_files(parts: &[Part<RpmParts>]) -> Vec<(&'static str, Vec<u8>)> {
    let count: u64 = parts.iter().map(|p| p.meta.packages).sum();
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let heads = [
        primary_head(count),
        filelists_head(count),
        other_head(count),
    ];
    let tails = [PRIMARY_TAIL, FILELISTS_TAIL, OTHER_TAIL];
    let mut out = Vec::with_capacity(3);
    for (i, kind) in KINDS.iter().enumerate() {
        let head = compress_segment(heads[i].as_bytes(), false);
        let tail = compress_segment(tails[i].as_bytes(), false);
        let mut segments: Vec<(&[u8], u32, u64)> = Vec::with_capacity(parts.len() + 2);
        segments.push((&head.deflate, head.crc32, head.text_len));
        for part in parts {
            let offset: u64 = part.meta.segments[..i].iter().map(|s| s.deflate_len).sum();
            let meta = part.meta.segments[i];
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(usize::try_from(meta.deflate_len).unwrap_or(0));
            let bytes = part.bytes.get(start..end).unwrap_or_default();
            segments.push((bytes, meta.crc32, meta.text_len));
        }
        segments.push((&tail.deflate, tail.crc32, tail.text_len));
        out.push((*kind, gzip_from_segments(&segments)));
    }
    out
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl RpmRepo {
    /// The `.repo` file of the repository of `arch`, if a public URL is known.
    pub(crate) fn repo_file(&self, arch: &RepoArch) -> Option<String> {
        let base = self.public_url.as_deref()?.trim_end_matches('/');
        let repo = &arch.repo;
        let generic = rpm_arch_dir_named(repo, "$basearch");
        let key = Key::RpmKey(repo.clone()).path();
        let key = key.strip_prefix(crate::repo::STATIC_PREFIX).unwrap_or(&key);
        Some(format!(
            "[{id}]\nname={id}\nbaseurl={base}/{generic}/\nenabled=1\nrepo_gpgcheck=1\ngpgcheck={gpg}\ngpgkey={base}/{key}\nmetadata_expire=300\n",
            id = rpm_repo_id(repo),
            gpg = u8::from(self.signs_packages),
        ))
    }
}

impl Format for RpmRepo {
    type Record = RpmRecord;
    type PartMeta = RpmParts;
    type SignKey = SuiteKeys;

    fn pick_key(&self, set: &KeySet) -> Result<SuiteKeys, KeyError> {
        pick_pgp_keys(set, "RPM repositories")
    }

    fn usage_of(&self, record: &RpmRecord) -> Option<(String, u64)> {
        Some((String::new(), record.size))
    }

    fn entry_key(&self, record: &RpmRecord) -> String {
        record.file_name.clone()
    }

    fn chunks(&self) -> u32 {
        CHUNKS
    }

    fn chunk_of(&self, entry: &str) -> u32 {
        let digest = Sha256::digest(entry.as_bytes());
        u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % CHUNKS
    }

    fn render_part(&self, records: &[&RpmRecord]) -> Part<RpmParts> {
        let mut texts = [String::new(), String::new(), String::new()];
        for record in records {
            texts[0].push_str(&record.primary);
            texts[1].push_str(&record.filelists);
            texts[2].push_str(&record.other);
        }
        let mut bytes = Vec::new();
        let mut meta = RpmParts {
            packages: records.len() as u64,
            ..RpmParts::default()
        };
        for (i, text) in texts.iter().enumerate() {
            let segment = compress_segment(text.as_bytes(), false);
            bytes.extend_from_slice(&segment.deflate);
            meta.segments[i] = SegmentMeta {
                crc32: segment.crc32,
                text_len: segment.text_len,
                deflate_len: segment.deflate.len() as u64,
            };
        }
        Part { bytes, meta }
    }

    fn root_file(&self, root: &RootId) -> Key {
        repodata(root_arch(root), "repomd.xml")
    }

    fn render_root(&self, root: &RootId, parts: &[Part<RpmParts>]) -> RenderedRoot {
        let arch = root_arch(root);
        let timestamp = now();
        let mut files = Vec::new();
        let mut data = Vec::new();
        for (kind, bytes) in metadata_files(parts) {
            let checksum = hex::encode(Sha256::digest(&bytes));
            let name = format!("{checksum}-{kind}.xml.gz");
            data.push(RepomdData {
                kind: kind.to_owned(),
                href: format!("repodata/{name}"),
                checksum,
                size: bytes.len() as u64,
                open_checksum: None,
                open_size: None,
                timestamp,
            });
            files.push((repodata(arch, &name), bytes));
        }
        if let Some(text) = self.repo_file(arch) {
            files.push((Key::RepoFile(arch.repo.clone()), text.into_bytes()));
        }
        RenderedRoot {
            files,
            body: repomd_xml(timestamp, &data).into_bytes(),
            spans: Vec::new(),
        }
    }

    fn reusable_body(&self, _published: &[u8]) -> Option<Vec<u8>> {
        None
    }

    fn caches_parts(&self) -> bool {
        true
    }

    fn browse_page(
        &self,
        root: &RootId,
        parts: &[Part<RpmParts>],
        ids: &[String],
        keys: Option<&KeySet>,
    ) -> Option<(Key, Vec<u8>)> {
        use crate::browse::{Level, root_page_from_parts, rows};
        let level = Level::Arch(root_arch(root).clone());
        Some(root_page_from_parts(&level, parts, ids, keys, |part| {
            // The `primary` segment comes first.
            let primary = &part.meta.segments[0];
            usize::try_from(primary.deflate_len)
                .ok()
                .and_then(|len| part.bytes.get(..len))
                .and_then(|segment| rows::inflate(segment, primary.text_len))
                .map(|xml| rows::rpm_rows(&xml))
                .unwrap_or_default()
        }))
    }

    fn sign(&self, body: Vec<u8>, _key: &SuiteKeys) -> Result<Vec<u8>, KeyError> {
        // `repomd.xml` itself stays as rendered: its signature is a file of
        // its own (`signed_files`).
        Ok(body)
    }

    fn signed_files(
        &self,
        root: &RootId,
        rendered: &RenderedRoot,
        key: &SuiteKeys,
    ) -> Result<Vec<(Key, Vec<u8>)>, KeyError> {
        let arch = root_arch(root);
        Ok(vec![
            (
                Key::RpmKey(arch.repo.clone()),
                keyring_armored(&pgp_keys(key)).into_bytes(),
            ),
            (
                repodata(arch, "repomd.xml.asc"),
                sign_with(key, &rendered.body, SignatureFormat::Detached)?,
            ),
        ])
    }

    fn verify(
        &self,
        published: &[u8],
        records: &[&RpmRecord],
        _key: Option<&SuiteKeys>,
    ) -> Vec<RootProblem> {
        let Some(listed) = std::str::from_utf8(published)
            .ok()
            .and_then(|text| parse_repomd(text).ok())
        else {
            return vec![RootProblem::Malformed];
        };
        // The metadata the records render to, against what repomd.xml names.
        let mut chunks: std::collections::BTreeMap<u32, Vec<&RpmRecord>> = Default::default();
        for record in records {
            chunks
                .entry(self.chunk_of(&record.file_name))
                .or_default()
                .push(record);
        }
        let parts: Vec<Part<RpmParts>> = chunks
            .values_mut()
            .map(|list| {
                list.sort_by(|a, b| a.file_name.cmp(&b.file_name));
                self.render_part(list)
            })
            .collect();
        let expected: Vec<(String, String)> = metadata_files(&parts)
            .into_iter()
            .map(|(kind, bytes)| (kind.to_owned(), hex::encode(Sha256::digest(&bytes))))
            .collect();
        let mut found: Vec<(String, String)> = listed
            .into_iter()
            .filter(|d| KINDS.contains(&d.kind.as_str()))
            .map(|d| (d.kind, d.checksum))
            .collect();
        found.sort_by_key(|(kind, _)| KINDS.iter().position(|k| k == kind));
        if found != expected {
            return vec![RootProblem::Differs];
        }
        Vec::new()
    }
}
