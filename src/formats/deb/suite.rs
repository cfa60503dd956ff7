//! Debian-style suites as the publish core sees them ([`DebSuite`]).
//!
//! One root per suite (`dists/<suite>/`) covering every component and
//! arch, so uploads to different components of one suite go through one
//! manifest and never lose each other, and one signed `InRelease` names every
//! index file of the suite.
//!
//! Each chunk's part holds, per `(component, arch)` section of its records,
//! the `Packages` text and that text as a raw deflate segment ended by a full
//! flush; `Packages.gz` is assembled from the segments without compressing
//! unchanged chunks again (the technique of `src/formats/apk/segmented.rs`).
//! `Architecture: all` packages are one record each, listed in `binary-all`
//! and in every arch's `Packages` (`No-Support-for-Architecture-all:
//! Packages`, as Debian's archive does). Every index file is also written
//! under `by-hash/SHA256/` (`Acquire-By-Hash: yes`), where older copies stay
//! for `gc`'s grace period, so an apt holding an older `InRelease` never
//! sees "Hash Sum mismatch".
//!
//! Suite aliases (`stable -> bookworm`) are written by the suite they point
//! to: the same index files under `dists/<alias>/`, and a `Release` whose
//! `Suite:` is the alias, signed on its own.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::release::{
    SuiteKeys, pgp_keys, pick_pgp_keys, release_date, release_sha256, sign_with, signed_text,
};
use crate::core::RootProblem;
use crate::formats::apk::segmented::compress_segment;
use crate::formats::deflate::gzip_from_segments;
use crate::formats::{Format, Part, RenderedRoot};
use crate::keys::{KeyError, KeySet};
use crate::repo::{Arch, DistsFile, Key, RootId, Segment, SuiteId};
use crate::signing::openpgp::{keyring_armored, keyring_binary};
use crate::signing::{SignatureFormat, Signer};

/// How many chunks a suite's records are split into (by entry key hash).
pub const CHUNKS: u32 = 64;

/// The arch value of arch-independent packages.
pub const ARCH_ALL: &str = "all";

/// One published `.deb` in one component of a suite: the record the core keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebRecord {
    /// The component (repo) it is published in.
    pub component: String,
    /// `Package:`.
    pub package: String,
    /// `Version:`.
    pub version: String,
    /// `Architecture:` (`all` for arch-independent packages).
    pub architecture: String,
    /// `<package>_<version without epoch>_<arch>.deb`.
    pub file_name: String,
    /// The source package name (the pool folder).
    pub source: String,
    /// `Filename:`: the pool path below the distro (`pool/main/h/hello/…`).
    pub filename: String,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// Size of the file in bytes.
    pub size: u64,
    /// The `Packages` entry, ending in one `\n` (no blank line).
    pub stanza: String,
}

impl DebRecord {
    /// The entry key within the suite: `<component>/<file name>`.
    pub fn entry(&self) -> String {
        format!("{}/{}", self.component, self.file_name)
    }
}

/// One `(component, arch)` section of a chunk's part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// The component.
    pub component: String,
    /// The arch (`all` included).
    pub arch: String,
    /// Length of the `Packages` text.
    pub text_len: u64,
    /// CRC-32 of the text.
    pub crc32: u32,
    /// Length of the deflate segment following the text in the part.
    pub deflate_len: u64,
}

/// What the manifest keeps about a chunk's part: its sections, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuiteParts {
    /// The sections; the part's bytes are each section's text then its deflate segment.
    pub sections: Vec<Section>,
}

/// A Debian-style suite as a [`Format`]: what the suite's `Release` says
/// besides its files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DebSuite {
    /// Aliases pointing at this suite (`stable`, `12`).
    pub aliases: Vec<Segment>,
}

fn root_suite(root: &RootId) -> &SuiteId {
    match root {
        RootId::Suite(suite) => suite,
        _ => panic!("Debian roots are suites: the core only gets roots from the format"),
    }
}

/// One index file of the suite, with what `Release` lists about it.
struct IndexFile {
    file: DistsFile,
    bytes: Vec<u8>,
    /// The size `Release` lists (the length of `bytes` when published).
    size: u64,
    sha256: String,
    /// Whether the file is written (the uncompressed `Packages` is only listed).
    publish: bool,
}

impl IndexFile {
    fn new(file: DistsFile, bytes: Vec<u8>) -> Self {
        Self {
            size: bytes.len() as u64,
            publish: true,
            sha256: hex::encode(Sha256::digest(&bytes)),
            file,
            bytes,
        }
    }
}

impl DebSuite {
    /// The `Release` text of `suite` shown as `name` (the suite or an alias).
    fn release_text(
        &self,
        suite: &SuiteId,
        name: &str,
        date: &str,
        components: &BTreeSet<String>,
        arches: &BTreeSet<String>,
        files: &[IndexFile],
    ) -> String {
        let mut text = String::with_capacity(4096);
        let list = |set: &BTreeSet<String>| set.iter().cloned().collect::<Vec<_>>().join(" ");
        text.push_str(&format!("Origin: {}\n", suite.org));
        text.push_str(&format!("Label: {} {}\n", suite.org, suite.distro));
        text.push_str(&format!("Suite: {name}\n"));
        text.push_str(&format!("Codename: {}\n", suite.suite));
        text.push_str(&format!("Date: {date}\n"));
        text.push_str(&format!("Architectures: {}\n", list(arches)));
        text.push_str(&format!("Components: {}\n", list(components)));
        text.push_str("Acquire-By-Hash: yes\n");
        if arches.contains(ARCH_ALL) {
            text.push_str("No-Support-for-Architecture-all: Packages\n");
        }
        // Only the files apt fetches by path are listed (not the by-hash copies).
        let listed: Vec<&IndexFile> = files
            .iter()
            .filter(|f| !matches!(f.file, DistsFile::ByHash { .. }))
            .collect();
        text.push_str("SHA256:\n");
        for f in &listed {
            text.push_str(&format!(" {} {:>16} {}\n", f.sha256, f.size, f.file.path()));
        }
        text
    }

    /// The index files of one `(component, arch)`: `Packages`, `.gz`, the
    /// arch `Release` and the by-hash copies.
    fn arch_files(
        &self,
        suite: &SuiteId,
        component: &str,
        arch: &str,
        parts: &[Part<SuiteParts>],
    ) -> Option<Vec<IndexFile>> {
        let component_seg = Segment::parse("repo", component).ok()?;
        let arch_seg = Arch::parse(arch).ok()?;
        let mut text = Sha256::new();
        let mut text_len = 0u64;
        let mut segments: Vec<(&[u8], u32, u64)> = Vec::new();
        for part in parts {
            let mut at = 0usize;
            for section in &part.meta.sections {
                let len = usize::try_from(section.text_len).ok()?;
                let deflate_len = usize::try_from(section.deflate_len).ok()?;
                let wanted = section.component == component
                    && (section.arch == arch || (arch != ARCH_ALL && section.arch == ARCH_ALL));
                if wanted {
                    text.update(part.bytes.get(at..at + len)?);
                    text_len += section.text_len;
                    let deflate = part.bytes.get(at + len..at + len + deflate_len)?;
                    segments.push((deflate, section.crc32, section.text_len));
                }
                at += len + deflate_len;
            }
        }
        let gz = gzip_from_segments(&segments);
        let release = format!(
            "Archive: {}\nOrigin: {}\nLabel: {} {}\nComponent: {component}\nArchitecture: {arch}\n",
            suite.suite, suite.org, suite.org, suite.distro
        );
        let packages = |compression| DistsFile::Packages {
            component: component_seg.clone(),
            arch: arch_seg.clone(),
            compression,
        };
        let mut files = vec![
            IndexFile::new(packages(Some("gz")), gz),
            // Listed (apt finds an index by its uncompressed name and checks
            // what it inflates), not published, as in Debian's archive.
            IndexFile {
                file: packages(None),
                bytes: Vec::new(),
                size: text_len,
                sha256: hex::encode(text.finalize()),
                publish: false,
            },
            IndexFile::new(
                DistsFile::ArchRelease {
                    component: component_seg.clone(),
                    arch: arch_seg.clone(),
                },
                release.into_bytes(),
            ),
        ];
        let by_hash: Vec<IndexFile> = files[..1]
            .iter()
            .filter_map(|f| {
                Some(IndexFile {
                    file: DistsFile::ByHash {
                        component: component_seg.clone(),
                        arch: arch_seg.clone(),
                        sha256: Segment::parse("sha256", &f.sha256).ok()?,
                    },
                    bytes: f.bytes.clone(),
                    size: f.size,
                    sha256: f.sha256.clone(),
                    publish: true,
                })
            })
            .collect();
        files.extend(by_hash);
        Some(files)
    }
}

impl Format for DebSuite {
    type Record = DebRecord;
    type PartMeta = SuiteParts;
    type SignKey = SuiteKeys;

    fn pick_key(&self, set: &KeySet) -> Result<SuiteKeys, KeyError> {
        pick_pgp_keys(set, "Debian suites")
    }

    fn usage_of(&self, record: &DebRecord) -> Option<(String, u64)> {
        Some((record.component.clone(), record.size))
    }

    fn entry_key(&self, record: &DebRecord) -> String {
        record.entry()
    }

    fn chunks(&self) -> u32 {
        CHUNKS
    }

    fn chunk_of(&self, entry: &str) -> u32 {
        let digest = Sha256::digest(entry.as_bytes());
        u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % CHUNKS
    }

    fn render_part(&self, records: &[&DebRecord]) -> Part<SuiteParts> {
        let mut sections: BTreeMap<(&str, &str), String> = BTreeMap::new();
        for record in records {
            let text = sections
                .entry((&record.component, &record.architecture))
                .or_default();
            text.push_str(&record.stanza);
            text.push('\n');
        }
        let mut bytes = Vec::new();
        let mut meta = SuiteParts::default();
        for ((component, arch), text) in sections {
            let segment = compress_segment(text.as_bytes(), false);
            bytes.extend_from_slice(text.as_bytes());
            bytes.extend_from_slice(&segment.deflate);
            meta.sections.push(Section {
                component: component.to_owned(),
                arch: arch.to_owned(),
                text_len: segment.text_len,
                crc32: segment.crc32,
                deflate_len: segment.deflate.len() as u64,
            });
        }
        Part { bytes, meta }
    }

    fn root_file(&self, root: &RootId) -> Key {
        Key::Dists {
            suite: root_suite(root).clone(),
            file: DistsFile::InRelease,
        }
    }

    fn render_root(&self, root: &RootId, parts: &[Part<SuiteParts>]) -> RenderedRoot {
        let suite = root_suite(root);
        let mut components = BTreeSet::new();
        let mut arches = BTreeSet::new();
        for section in parts.iter().flat_map(|p| &p.meta.sections) {
            components.insert(section.component.clone());
            arches.insert(section.arch.clone());
        }
        let mut index = Vec::new();
        for component in &components {
            for arch in &arches {
                if let Some(files) = self.arch_files(suite, component, arch, parts) {
                    index.extend(files);
                }
            }
        }
        let date = release_date();
        let body = self.release_text(
            suite,
            suite.suite.as_str(),
            &date,
            &components,
            &arches,
            &index,
        );
        let mut files: Vec<(Key, Vec<u8>)> = Vec::new();
        for alias in &self.aliases {
            let alias_suite = SuiteId {
                suite: alias.clone(),
                ..suite.clone()
            };
            let text =
                self.release_text(suite, alias.as_str(), &date, &components, &arches, &index);
            for f in index.iter().filter(|f| f.publish) {
                files.push((
                    Key::Dists {
                        suite: alias_suite.clone(),
                        file: f.file.clone(),
                    },
                    f.bytes.clone(),
                ));
            }
            files.push((
                Key::Dists {
                    suite: alias_suite,
                    file: DistsFile::Release,
                },
                text.into_bytes(),
            ));
        }
        // The by-hash copies first, then the files apt fetches by path.
        index.sort_by_key(|f| !matches!(f.file, DistsFile::ByHash { .. }));
        let own: Vec<(Key, Vec<u8>)> = index
            .into_iter()
            .filter(|f| f.publish)
            .map(|f| {
                (
                    Key::Dists {
                        suite: suite.clone(),
                        file: f.file,
                    },
                    f.bytes,
                )
            })
            .collect();
        files.splice(0..0, own);
        files.push((
            Key::Dists {
                suite: suite.clone(),
                file: DistsFile::Release,
            },
            body.clone().into_bytes(),
        ));
        RenderedRoot {
            files,
            body: body.into_bytes(),
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
        parts: &[Part<SuiteParts>],
        ids: &[String],
        keys: Option<&KeySet>,
    ) -> Option<(Key, Vec<u8>)> {
        use crate::browse::{Level, root_page_from_parts, rows};
        let level = Level::Suite(root_suite(root).clone());
        Some(root_page_from_parts(&level, parts, ids, keys, |part| {
            // Each section's text, then its deflate segment.
            let mut out = Vec::new();
            let mut at = 0usize;
            for section in &part.meta.sections {
                let (Ok(text_len), Ok(deflate_len)) = (
                    usize::try_from(section.text_len),
                    usize::try_from(section.deflate_len),
                ) else {
                    break;
                };
                let Some(text) = part.bytes.get(at..at.saturating_add(text_len)) else {
                    break;
                };
                // `Filename:` is below the distro folder, two up from `dists/<suite>/`.
                out.extend(rows::deb_rows(
                    &String::from_utf8_lossy(text),
                    &section.component,
                    "../../",
                ));
                at = at.saturating_add(text_len).saturating_add(deflate_len);
            }
            out
        }))
    }

    fn sign(&self, body: Vec<u8>, key: &SuiteKeys) -> Result<Vec<u8>, KeyError> {
        sign_with(key, &body, SignatureFormat::Cleartext)
    }

    fn signed_files(
        &self,
        root: &RootId,
        rendered: &RenderedRoot,
        key: &SuiteKeys,
    ) -> Result<Vec<(Key, Vec<u8>)>, KeyError> {
        let suite = root_suite(root);
        let pgp = pgp_keys(key);
        let keyrings = |shown: &SuiteId| {
            [
                (
                    Key::Dists {
                        suite: shown.clone(),
                        file: DistsFile::Keyring { armored: false },
                    },
                    keyring_binary(&pgp),
                ),
                (
                    Key::Dists {
                        suite: shown.clone(),
                        file: DistsFile::Keyring { armored: true },
                    },
                    keyring_armored(&pgp).into_bytes(),
                ),
            ]
        };
        let mut out = vec![(
            Key::Dists {
                suite: suite.clone(),
                file: DistsFile::ReleaseGpg,
            },
            sign_with(key, &rendered.body, SignatureFormat::Detached)?,
        )];
        out.extend(keyrings(suite));
        for (k, bytes) in &rendered.files {
            if let Key::Dists {
                suite: shown,
                file: DistsFile::Release,
            } = k
            {
                if shown == suite {
                    continue;
                }
                out.extend(keyrings(shown));
                for (file, format) in [
                    (DistsFile::InRelease, SignatureFormat::Cleartext),
                    (DistsFile::ReleaseGpg, SignatureFormat::Detached),
                ] {
                    out.push((
                        Key::Dists {
                            suite: shown.clone(),
                            file,
                        },
                        sign_with(key, bytes, format)?,
                    ));
                }
            }
        }
        Ok(out)
    }

    fn verify(
        &self,
        published: &[u8],
        records: &[&DebRecord],
        key: Option<&SuiteKeys>,
    ) -> Vec<RootProblem> {
        let Some(text) = signed_text(published) else {
            return vec![RootProblem::Malformed];
        };
        let mut problems = Vec::new();
        if let Some(keys) = key {
            let good = keys
                .iter()
                .any(|k| k.verify(text.as_bytes(), published, SignatureFormat::Cleartext));
            if !good {
                problems.push(RootProblem::BadSignature);
            }
        }
        // The `Packages` files the records render to, by path and SHA-256,
        // against those the published `Release` lists.
        let mut chunks: BTreeMap<u32, Vec<&DebRecord>> = BTreeMap::new();
        for record in records {
            chunks
                .entry(self.chunk_of(&record.entry()))
                .or_default()
                .push(record);
        }
        let parts: Vec<Part<SuiteParts>> = chunks
            .values_mut()
            .map(|list| {
                list.sort_by_key(|r| r.entry());
                self.render_part(list)
            })
            .collect();
        let mut expected = BTreeMap::new();
        let sections: BTreeSet<(String, String)> = parts
            .iter()
            .flat_map(|p| &p.meta.sections)
            .map(|s| (s.component.clone(), s.arch.clone()))
            .collect();
        let components: BTreeSet<&String> = sections.iter().map(|(c, _)| c).collect();
        let arches: BTreeSet<&String> = sections.iter().map(|(_, a)| a).collect();
        let placeholder = SuiteId::new(
            crate::repo::Org::parse("verify").expect("a valid org name"),
            crate::repo::Distro::parse("debian").expect("a built-in distro"),
            "verify",
        )
        .expect("a valid suite name");
        for component in &components {
            for arch in &arches {
                for f in self
                    .arch_files(&placeholder, component, arch, &parts)
                    .unwrap_or_default()
                {
                    if matches!(
                        f.file,
                        DistsFile::Packages {
                            compression: None,
                            ..
                        }
                    ) {
                        expected.insert(f.file.path(), f.sha256);
                    }
                }
            }
        }
        let listed: BTreeMap<String, String> = release_sha256(&text)
            .into_iter()
            .filter(|e| e.path.ends_with("/Packages"))
            .map(|e| (e.path, e.sha256))
            .collect();
        if listed != expected {
            problems.push(RootProblem::Differs);
        }
        problems
    }
}
