//! Signing a `.rpm` with an OpenPGP key, streaming, the way `rpmsign
//! --addsign` of rpm 4.18 does it (`sign/rpmgensig.c`, `rpmSign`).
//!
//! What is written, and why:
//!
//! - One *header-only* signature: a binary-mode (type 0x00) OpenPGP v4
//!   signature over the main header's bytes (magic included), in
//!   `RPMSIGTAG_RSA` (268) for an RSA key and `RPMSIGTAG_DSA` (267) for an
//!   EdDSA one (`makeSigTag`: DSA and EdDSA go to 267, RSA to 268; rpm 4.18
//!   knows no other algorithm, so ECDSA keys are refused). rpmsign 4.18 writes
//!   nothing else unless asked for `--rpmv3`; observed with Debian's rpmsign
//!   4.18.0 and gpg 2.2.40 on the fixtures (an Ed25519 key gives tag 267, an
//!   RSA key 268, the file size unchanged).
//! - No header+payload ("v3") signature (`RPMSIGTAG_PGP` 1002 /
//!   `RPMSIGTAG_GPG` 1005): the header signature covers the payload through
//!   the header's `PAYLOADDIGEST`. rpmsign adds the v3 one when a package
//!   has no payload digest (built by rpm < 4.14); that signature would cover
//!   the payload, which comes after the signature header, so a single pass
//!   cannot make it. Such packages are refused ([`RpmError::Sign`]).
//! - Every other signature-header tag is kept byte for byte: the header
//!   SHA-256 and SHA-1, sizes, the header+payload MD5, file signatures. Old
//!   OpenPGP signatures (267, 268, 278, 1002, 1005, 1006) are dropped.
//! - `RPMSIGTAG_RESERVEDSPACE` (1008), the zeros rpmbuild leaves for a later
//!   signature, shrinks (or grows) by what the signature takes, so the
//!   signature header, the main header's offset and the file size stay as
//!   they were. When it is absent or too small the signature header grows
//!   (rpmsign then keeps the reserved space as it was; so does this).
//!
//! The signature is checked with the key's public half before anything is
//! written. The input's header digests are checked first; its payload
//! digest and MD5 only as the payload streams through, so when
//! [`sign_rpm`] fails the output holds a partial or unusable package and must
//! be discarded. Memory is bounded by the header caps of [`RpmLimits`].

use std::io::{self, BufReader, Read, Write};

use md5::Md5;
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

use super::header::{Header, INTRO, MAGIC, kind, parse_intro};
use super::read::{LEAD, PayloadHash, check_hex, check_lead};
use super::tags::{self, sig};
use super::{RpmError, RpmLimits};
use crate::signing::openpgp::{PgpKey, detached_binary};

/// `RPMSIGTAG_PGP5`, an old signature tag rpmsign deletes as well.
const PGP5: u32 = 1006;
/// `RPMSIGTAG_RESERVEDSPACE`.
const RESERVED: u32 = 1008;
/// `RPMTAG_PAYLOADDIGESTALT` (digest of the uncompressed payload).
const PAYLOADDIGESTALT: u32 = 5097;
/// Signature tags replaced by the new signature.
const OLD_SIGNATURES: [u32; 6] = [sig::DSA, sig::RSA, sig::OPENPGP, sig::PGP, sig::GPG, PGP5];

/// The package written by [`sign_rpm`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRpm {
    /// SHA-256 of the output, lowercase hex (createrepo_c's pkgid).
    pub sha256: String,
    /// Size of the output in bytes.
    pub size: u64,
    /// Byte offset where the main header starts in the output.
    pub header_start: u64,
    /// Byte offset where the main header ends (the payload starts).
    pub header_end: u64,
}

/// Reads exactly `buf.len()` bytes, or fails naming `part`.
fn fill(input: &mut impl Read, buf: &mut [u8], part: &'static str) -> Result<(), RpmError> {
    input.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => RpmError::Truncated(part),
        _ => RpmError::Io(e),
    })
}

/// Reads `n` more bytes onto `out`, growing as they arrive (a truncated file
/// claiming a large header costs only what it holds).
fn fill_vec(
    input: &mut impl Read,
    mut out: Vec<u8>,
    n: u64,
    part: &'static str,
) -> Result<Vec<u8>, RpmError> {
    let want = out.len() as u64 + n;
    input.take(n).read_to_end(&mut out)?;
    if (out.len() as u64) < want {
        return Err(RpmError::Truncated(part));
    }
    Ok(out)
}

/// Counts and hashes (SHA-256) what is written.
struct Output<W> {
    inner: W,
    size: u64,
    sha256: Sha256,
}

impl<W: Write> Output<W> {
    fn put(&mut self, data: &[u8]) -> Result<(), RpmError> {
        self.inner.write_all(data)?;
        self.sha256.update(data);
        self.size += data.len() as u64;
        Ok(())
    }
}

/// Streams the package `input` to `output` with its signature header
/// replaced by one carrying a header-only OpenPGP signature by `key` (see
/// the module documentation for what is kept, dropped and refused). The
/// file size and header range stay unchanged when the reserved space holds
/// the signature. On error, discard whatever reached `output`.
pub fn sign_rpm<R: Read, W: Write>(
    input: R,
    output: W,
    key: &PgpKey,
    limits: &RpmLimits,
) -> Result<SignedRpm, RpmError> {
    let mut input = BufReader::with_capacity(64 << 10, input);
    let mut lead = [0u8; LEAD];
    fill(&mut input, &mut lead, "the lead")?;
    check_lead(&lead)?;

    let part = "signature header";
    let mut raw = [0u8; INTRO];
    fill(&mut input, &mut raw, part)?;
    let intro = parse_intro(
        &raw,
        part,
        limits.max_signature_entries,
        limits.max_signature_store,
    )?;
    let old_total = intro.total();
    let body = fill_vec(&mut input, Vec::new(), old_total - INTRO as u64, part)?;
    let signature = Header::parse(part, intro, &body, sig::REGION, limits)?;
    drop(body);
    let mut pad = [0u8; 8];
    fill(&mut input, &mut pad[..padding(old_total)], part)?;

    let part = "main header";
    fill(&mut input, &mut raw, part)?;
    let max_store = u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX);
    let intro = parse_intro(&raw, part, limits.max_header_entries, max_store)?;
    if intro.total() > limits.max_header_bytes {
        return Err(RpmError::Limit {
            part,
            problem: format!("{} bytes", intro.total()),
            limit: limits.max_header_bytes,
        });
    }
    let main_bytes = fill_vec(&mut input, raw.to_vec(), intro.total() - INTRO as u64, part)?;
    let main = Header::parse(part, intro, &main_bytes[INTRO..], tags::REGION, limits)?;

    // Refuse to sign what rpm -K would already call broken.
    check_hex(
        &signature,
        sig::SHA256,
        "header SHA-256",
        hex::encode(Sha256::digest(&main_bytes)),
    )?;
    check_hex(
        &signature,
        sig::SHA1,
        "header SHA-1",
        hex::encode(Sha1::digest(&main_bytes)),
    )?;
    let recorded_payload = main.string(tags::PAYLOADDIGEST)?;
    if recorded_payload.is_none() && !main.has(PAYLOADDIGESTALT) {
        return Err(RpmError::Sign(
            "the package has no payload digest (built by rpm older than 4.14), so a \
             header signature would not cover its payload; rebuild it with a newer rpm"
                .to_owned(),
        ));
    }
    let mut payload_hash = match recorded_payload {
        None => None,
        Some(recorded) => {
            let algo = main.int(tags::PAYLOADDIGESTALGO)?.unwrap_or(8);
            let hash = PayloadHash::new(algo).ok_or_else(|| RpmError::Tag {
                part,
                tag: tags::PAYLOADDIGESTALGO,
                problem: format!("unknown digest algorithm {algo}"),
            })?;
            Some((recorded, hash))
        }
    };
    let mut md5 = signature.bin(sig::MD5)?.map(|recorded| {
        let mut h = Md5::new();
        h.update(&main_bytes);
        (recorded.to_vec(), h)
    });

    let packet = detached_binary(key, &main_bytes).map_err(|e| RpmError::Sign(format!("{e}")))?;
    let tag = signature_tag(&packet)?;
    let new_header = signature_header(&signature, tag, &packet, old_total)?;
    check_written(&new_header, limits)?;

    let mut out = Output {
        inner: output,
        size: 0,
        sha256: Sha256::new(),
    };
    out.put(&lead)?;
    out.put(&new_header)?;
    out.put(&[0u8; 8][..padding(new_header.len() as u64)])?;
    let header_start = out.size;
    out.put(&main_bytes)?;
    let header_end = out.size;
    drop(main_bytes);

    let mut block = vec![0u8; 64 << 10];
    let mut payload = 0u64;
    loop {
        let n = match input.read(&mut block) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        payload += n as u64;
        if payload > limits.max_payload_bytes {
            return Err(RpmError::Limit {
                part: "payload",
                problem: format!("more than {} bytes", limits.max_payload_bytes),
                limit: limits.max_payload_bytes,
            });
        }
        if let Some((_, h)) = &mut payload_hash {
            h.update(&block[..n]);
        }
        if let Some((_, h)) = &mut md5 {
            h.update(&block[..n]);
        }
        out.put(&block[..n])?;
    }
    if payload == 0 {
        return Err(RpmError::Truncated("the payload (it is empty)"));
    }
    if let Some((recorded, h)) = payload_hash {
        let digest = format!("payload {}", h.name());
        let computed = h.finish();
        if !recorded.eq_ignore_ascii_case(&computed) {
            return Err(RpmError::Digest {
                digest,
                recorded,
                computed,
            });
        }
    }
    if let Some((recorded, h)) = md5 {
        let computed = h.finalize();
        if recorded[..] != computed[..] {
            return Err(RpmError::Digest {
                digest: "header and payload MD5".to_owned(),
                recorded: hex::encode(recorded),
                computed: hex::encode(computed),
            });
        }
    }
    out.inner.flush()?;
    Ok(SignedRpm {
        sha256: hex::encode(out.sha256.finalize()),
        size: out.size,
        header_start,
        header_end,
    })
}

/// Reads the new signature header back as [`read_rpm`](super::read_rpm)
/// (and rpm) will: within the limits, well formed.
fn check_written(header: &[u8], limits: &RpmLimits) -> Result<(), RpmError> {
    let part = "signature header";
    let intro = parse_intro(
        header[..INTRO].try_into().expect("16 bytes"),
        part,
        limits.max_signature_entries,
        limits.max_signature_store,
    )
    .map_err(|e| RpmError::Sign(format!("the new signature header: {e}")))?;
    Header::parse(part, intro, &header[INTRO..], sig::REGION, limits)
        .map_err(|e| RpmError::Sign(format!("the new signature header: {e}")))?;
    Ok(())
}

/// Zero bytes after a signature header of `total` bytes, to a multiple of 8.
fn padding(total: u64) -> usize {
    ((8 - total % 8) % 8) as usize
}

/// The signature-header tag for a signature packet, by its public-key
/// algorithm, as rpm 4.18's `makeSigTag` chooses it.
pub(super) fn signature_tag(packet: &[u8]) -> Result<u32, RpmError> {
    // Packet header: old format (bit 6 clear) with a 1, 2 or 4-byte length,
    // or new format with a 1, 2 or 5-byte length.
    let first = packet.first().copied().unwrap_or(0);
    let header = if first & 0x40 == 0 {
        1 + [1, 2, 4, 0][usize::from(first & 3)]
    } else {
        match packet.get(1).copied().unwrap_or(0) {
            0..=191 => 2,
            192..=223 => 3,
            _ => 6,
        }
    };
    match packet.get(header..header + 3) {
        Some(&[4, _, algo]) => match algo {
            1 => Ok(sig::RSA),
            17 | 22 => Ok(sig::DSA),
            other => Err(RpmError::Sign(format!(
                "OpenPGP public-key algorithm {other}: rpm 4.18 verifies RSA, DSA and \
                 EdDSA package signatures only"
            ))),
        },
        _ => Err(RpmError::Sign(
            "the signature is not an OpenPGP v4 signature packet".to_owned(),
        )),
    }
}

/// Builds the new signature header: the region, the kept entries of `old`
/// and `packet` under `tag`, in tag order, data in the same order (aligned
/// for its type), the region trailer last; the reserved space, if `old` had
/// one, sized so the header stays `old_total` bytes when it fits.
fn signature_header(
    old: &Header,
    tag: u32,
    packet: &[u8],
    old_total: u64,
) -> Result<Vec<u8>, RpmError> {
    let mut entries: Vec<(u32, u32, u32, &[u8])> = Vec::new();
    let mut reserved = None;
    for entry in old.raw_entries() {
        if entry.0 == RESERVED {
            if entry.1 != kind::BIN {
                return Err(RpmError::Tag {
                    part: "signature header",
                    tag: RESERVED,
                    problem: format!("has type {} (expected 7, binary)", entry.1),
                });
            }
            reserved = Some(entry.3.len());
        } else if !OLD_SIGNATURES.contains(&entry.0) {
            entries.push(entry);
        }
    }
    let count = u32::try_from(packet.len())
        .map_err(|_| RpmError::Sign("the signature packet is too large".to_owned()))?;
    entries.push((tag, kind::BIN, count, packet));
    entries.sort_unstable_by_key(|e| e.0);

    // The index (region first) and the store without the reserved space.
    let n = entries.len() + 1 + usize::from(reserved.is_some());
    let mut index: Vec<[u32; 4]> = Vec::with_capacity(n);
    let mut store = Vec::new();
    let mut placed = Vec::with_capacity(entries.len());
    for &(tag, kind, count, data) in &entries {
        let align = match kind {
            kind::INT16 => 2,
            kind::INT32 => 4,
            kind::INT64 => 8,
            _ => 1,
        };
        store.resize(store.len().next_multiple_of(align), 0);
        placed.push([tag, kind, store.len() as u32, count]);
        store.extend_from_slice(data);
    }
    // The reserved space last (binary, so unaligned; data must follow index
    // order, which need not be tag order), then the region trailer.
    if let Some(old_len) = reserved {
        let without = INTRO + 16 * n + store.len() + 16;
        let len = usize::try_from(old_total)
            .ok()
            .and_then(|t| t.checked_sub(without))
            .filter(|&len| len > 0)
            .unwrap_or(old_len);
        placed.push([RESERVED, kind::BIN, store.len() as u32, len as u32]);
        store.resize(store.len() + len, 0);
    }
    let trailer_at = store.len() as u32;
    let back = -(16 * n as i64) as i32;
    for v in [sig::REGION, kind::BIN, back as u32, 16] {
        store.extend_from_slice(&v.to_be_bytes());
    }
    index.push([sig::REGION, kind::BIN, trailer_at, 16]);
    index.extend(placed);

    let store_len = u32::try_from(store.len())
        .map_err(|_| RpmError::Sign("the signature header grows too large".to_owned()))?;
    let mut out = Vec::with_capacity(INTRO + 16 * n + store.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(n as u32).to_be_bytes());
    out.extend_from_slice(&store_len.to_be_bytes());
    for e in &index {
        for v in e {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
    out.extend_from_slice(&store);
    Ok(out)
}
