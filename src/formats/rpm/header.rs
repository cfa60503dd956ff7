//! One RPM header structure (the signature header or the main header),
//! parsed from its bytes with the sanity checks of rpm's `hdrblobRead`,
//! `hdrblobVerifyRegion` and `hdrblobVerifyInfo` (`lib/header.c`).
//!
//! Layout (big-endian): magic `8E AD E8 01 00 00 00 00`, u32 index count, u32
//! store size; then that many 16-byte entries {tag, type, offset, count};
//! then the store. The first entry may be a *region* tag (62 in the signature
//! header, 63 in the main header) whose data, the last 16 bytes of the region,
//! is a trailer entry pointing back over the entries the region covers.

use std::collections::HashMap;

use super::{RpmError, RpmLimits};

/// The header magic with its four reserved zero bytes.
pub(super) const MAGIC: [u8; 8] = [0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];

/// Size of the fixed intro (magic, index count, store size).
pub(super) const INTRO: usize = 16;

/// Size of one index entry.
const ENTRY: usize = 16;

/// Tags below this are refused outside the region entry (rpm's `hdrchkTag`:
/// `HEADER_I18NTABLE`).
const MIN_TAG: u32 = 100;

/// `HEADERIMAGE`, an old region tag rpm accepts in signature-region trailers.
const HEADERIMAGE: u32 = 61;

/// Data types (`rpmTagType`).
pub(super) mod kind {
    pub const CHAR: u32 = 1;
    pub const INT8: u32 = 2;
    pub const INT16: u32 = 3;
    pub const INT32: u32 = 4;
    pub const INT64: u32 = 5;
    pub const STRING: u32 = 6;
    pub const BIN: u32 = 7;
    pub const STRING_ARRAY: u32 = 8;
    pub const I18NSTRING: u32 = 9;
}

/// The intro of a header: entry count and store size, checked against the
/// limits before anything else is read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Intro {
    pub entries: u32,
    pub store: u32,
}

impl Intro {
    /// Total bytes of the header: intro, index and store.
    pub fn total(&self) -> u64 {
        INTRO as u64 + u64::from(self.entries) * ENTRY as u64 + u64::from(self.store)
    }
}

/// Parses and bounds the 16-byte intro of header `part`.
pub(super) fn parse_intro(
    raw: &[u8; INTRO],
    part: &'static str,
    max_entries: u32,
    max_store: u32,
) -> Result<Intro, RpmError> {
    if raw[..8] != MAGIC {
        return Err(RpmError::Header {
            part,
            problem: format!(
                "bad magic {} (expected 8eade801 00000000)",
                hex::encode(&raw[..8])
            ),
        });
    }
    let entries = u32::from_be_bytes(raw[8..12].try_into().expect("4 bytes"));
    let store = u32::from_be_bytes(raw[12..16].try_into().expect("4 bytes"));
    if entries == 0 {
        return Err(RpmError::Header {
            part,
            problem: "no index entries".to_owned(),
        });
    }
    if entries > max_entries {
        return Err(RpmError::Limit {
            part,
            problem: format!("{entries} index entries"),
            limit: u64::from(max_entries),
        });
    }
    if store > max_store {
        return Err(RpmError::Limit {
            part,
            problem: format!("a {store}-byte data store"),
            limit: u64::from(max_store),
        });
    }
    Ok(Intro { entries, store })
}

/// One index entry as stored.
#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u32,
    kind: u32,
    offset: u32,
    count: u32,
    /// Bytes its data takes in the store.
    len: usize,
}

/// A parsed, checked header: its entries by tag over the store bytes.
#[derive(Debug)]
pub(super) struct Header {
    part: &'static str,
    store: Vec<u8>,
    entries: HashMap<u32, Entry>,
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().expect("4 bytes"))
}

impl Header {
    /// Parses the index and store that follow `intro` (`body` is exactly
    /// `entries * 16 + store` bytes). `region` is the region tag rpm expects
    /// first (62 or 63).
    pub fn parse(
        part: &'static str,
        intro: Intro,
        body: &[u8],
        region: u32,
        limits: &RpmLimits,
    ) -> Result<Self, RpmError> {
        let bad = |problem: String| RpmError::Header { part, problem };
        let n = intro.entries as usize;
        let (index, store) = body.split_at(n * ENTRY);
        let dl = store.len();
        let raw = |i: usize| {
            let e = &index[i * ENTRY..(i + 1) * ENTRY];
            (be32(e), be32(&e[4..]), be32(&e[8..]), be32(&e[12..]))
        };

        let mut first = 0;
        let (tag0, kind0, offset0, count0) = raw(0);
        if tag0 == region {
            if kind0 != kind::BIN || count0 != ENTRY as u32 {
                return Err(bad(format!(
                    "region tag {region} has type {kind0} count {count0} (expected 7 and 16)"
                )));
            }
            let end = offset0 as usize + ENTRY;
            if offset0 as usize > dl || end > dl {
                return Err(bad(format!(
                    "region trailer at offset {offset0} lies outside the {dl}-byte store"
                )));
            }
            let t = &store[offset0 as usize..end];
            let (ttag, tkind, toff, tcount) =
                (be32(t), be32(&t[4..]), be32(&t[8..]), be32(&t[12..]));
            let ttag = if region == 62 && ttag == HEADERIMAGE {
                region
            } else {
                ttag
            };
            if ttag != region || tkind != kind::BIN || tcount != ENTRY as u32 {
                return Err(bad(format!(
                    "region trailer is tag {ttag} type {tkind} count {tcount} (expected {region}, 7, 16)"
                )));
            }
            let back = (toff as i32).unsigned_abs() as usize;
            if (toff as i32) > 0 || back % ENTRY != 0 || back / ENTRY > n || back == 0 {
                return Err(bad(format!(
                    "region trailer offset {} does not cover whole index entries (at most {n})",
                    toff as i32
                )));
            }
            first = 1;
        } else if region == 63 {
            return Err(bad(format!(
                "the first tag is {tag0}, not the immutable region 63 (written first by every rpm since 4.0)"
            )));
        }

        let mut entries = HashMap::with_capacity(n);
        let mut end = 0usize;
        for i in first..n {
            let (tag, kind, offset, count) = raw(i);
            let at = |problem: String| bad(format!("tag {tag} (entry {i}): {problem}"));
            if tag < MIN_TAG {
                return Err(at("reserved tag number".to_owned()));
            }
            let offset_us = offset as usize;
            if (offset as i32) < 0 || offset_us > dl {
                return Err(at(format!(
                    "offset {offset} is outside the {dl}-byte store"
                )));
            }
            if offset_us < end {
                return Err(at(format!(
                    "data at offset {offset} overlaps the previous tag's (ends at {end})"
                )));
            }
            let align = match kind {
                kind::INT16 => 2,
                kind::INT32 => 4,
                kind::INT64 => 8,
                _ => 1,
            };
            if offset_us % align != 0 {
                return Err(at(format!(
                    "offset {offset} is not aligned for type {kind}"
                )));
            }
            if count == 0 {
                return Err(at("count 0".to_owned()));
            }
            let len = data_len(kind, count, &store[offset_us..]).map_err(&at)?;
            if len as u64 > limits.max_tag_bytes {
                return Err(RpmError::Limit {
                    part,
                    problem: format!("tag {tag} holds {len} bytes"),
                    limit: limits.max_tag_bytes,
                });
            }
            end = offset_us + len;
            if entries
                .insert(
                    tag,
                    Entry {
                        tag,
                        kind,
                        offset,
                        count,
                        len,
                    },
                )
                .is_some()
            {
                return Err(at("tag appears twice".to_owned()));
            }
        }
        Ok(Self {
            part,
            store: store.to_vec(),
            entries,
        })
    }

    /// Every entry but the region, in tag order: (tag, type, count, data),
    /// the data as stored (what a rewritten header copies).
    pub fn raw_entries(&self) -> Vec<(u32, u32, u32, &[u8])> {
        let mut all: Vec<_> = self
            .entries
            .values()
            .map(|e| {
                let at = e.offset as usize;
                (e.tag, e.kind, e.count, &self.store[at..at + e.len])
            })
            .collect();
        all.sort_unstable_by_key(|e| e.0);
        all
    }

    /// Whether `tag` is present.
    pub fn has(&self, tag: u32) -> bool {
        self.entries.contains_key(&tag)
    }

    fn get(&self, tag: u32, kinds: &[u32]) -> Result<Option<(Entry, &[u8])>, RpmError> {
        let Some(e) = self.entries.get(&tag) else {
            return Ok(None);
        };
        if !kinds.contains(&e.kind) {
            return Err(RpmError::Tag {
                part: self.part,
                tag: e.tag,
                problem: format!("has type {} (expected one of {kinds:?})", e.kind),
            });
        }
        let data = &self.store[e.offset as usize..e.offset as usize + e.len];
        Ok(Some((*e, data)))
    }

    fn tag_err(&self, tag: u32, problem: String) -> RpmError {
        RpmError::Tag {
            part: self.part,
            tag,
            problem,
        }
    }

    /// The strings of a STRING, STRING_ARRAY or I18NSTRING tag.
    pub fn strings(&self, tag: u32) -> Result<Option<Vec<String>>, RpmError> {
        let Some((_, data)) =
            self.get(tag, &[kind::STRING, kind::STRING_ARRAY, kind::I18NSTRING])?
        else {
            return Ok(None);
        };
        let data = data.strip_suffix(&[0]).unwrap_or(data);
        data.split(|&b| b == 0)
            .map(|s| {
                String::from_utf8(s.to_vec())
                    .map_err(|_| self.tag_err(tag, "a string is not UTF-8".to_owned()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// The first string of a string tag (an I18NSTRING's default locale).
    pub fn string(&self, tag: u32) -> Result<Option<String>, RpmError> {
        Ok(self.strings(tag)?.and_then(|v| v.into_iter().next()))
    }

    /// The values of an integer tag (INT8/16/32/64, CHAR), widened.
    pub fn ints(&self, tag: u32) -> Result<Option<Vec<u64>>, RpmError> {
        let Some((e, data)) = self.get(
            tag,
            &[
                kind::CHAR,
                kind::INT8,
                kind::INT16,
                kind::INT32,
                kind::INT64,
            ],
        )?
        else {
            return Ok(None);
        };
        let width = e.len / e.count as usize;
        Ok(Some(
            data.chunks_exact(width)
                .map(|c| c.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
                .collect(),
        ))
    }

    /// The single value of an integer tag.
    pub fn int(&self, tag: u32) -> Result<Option<u64>, RpmError> {
        match self.ints(tag)? {
            None => Ok(None),
            Some(v) if v.len() == 1 => Ok(Some(v[0])),
            Some(v) => Err(self.tag_err(tag, format!("{} values where one is expected", v.len()))),
        }
    }

    /// The bytes of a BIN tag.
    pub fn bin(&self, tag: u32) -> Result<Option<&[u8]>, RpmError> {
        Ok(self.get(tag, &[kind::BIN])?.map(|(_, d)| d))
    }
}

/// Bytes taken by `count` items of type `kind` at the start of `rest` (the
/// store from the entry's offset on), as rpm's `dataLength` computes them:
/// strings must be NUL-terminated inside the store.
fn data_len(kind: u32, count: u32, rest: &[u8]) -> Result<usize, String> {
    let fixed = |size: usize| {
        let len = size
            .checked_mul(count as usize)
            .ok_or_else(|| format!("count {count} overflows"))?;
        if len > rest.len() {
            return Err(format!(
                "{count} items of {size} bytes run past the end of the store"
            ));
        }
        Ok(len)
    };
    match kind {
        kind::CHAR | kind::INT8 | kind::BIN => fixed(1),
        kind::INT16 => fixed(2),
        kind::INT32 => fixed(4),
        kind::INT64 => fixed(8),
        kind::STRING | kind::STRING_ARRAY | kind::I18NSTRING => {
            if kind == kind::STRING && count != 1 {
                return Err(format!("a STRING with count {count} (must be 1)"));
            }
            let mut at = 0;
            for _ in 0..count {
                match rest[at..].iter().position(|&b| b == 0) {
                    Some(nul) => at += nul + 1,
                    None => {
                        return Err(format!(
                            "{count} strings are not all NUL-terminated inside the store"
                        ));
                    }
                }
            }
            Ok(at)
        }
        other => Err(format!("unknown data type {other}")),
    }
}
