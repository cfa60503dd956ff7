//! Reading a `.rpm` once, as a stream, with the checks of rpm's
//! `rpmReadPackageFile` (`lib/package.c`, `lib/rpmlead.c`, `lib/rpmvs.c`).

use std::io::{self, BufReader, Read};

use md5::Md5;
use sha1::{Digest as _, Sha1};
use sha2::{Sha256, Sha384, Sha512};

use super::fields::package_from;
use super::header::{Header, INTRO, parse_intro};
use super::tags::{self, sig};
use super::{RpmError, RpmLimits, RpmPackage};

/// Size of the lead.
pub(super) const LEAD: usize = 96;
/// The lead's magic.
const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];
/// `RPMSIGTYPE_HEADERSIG`, the only signature type rpm reads.
const HEADERSIG: u16 = 5;

/// Reads the input once, counting and hashing (SHA-256) every byte.
struct Hashing<R> {
    inner: R,
    total: u64,
    sha256: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha256.update(&buf[..n]);
        self.total += n as u64;
        Ok(n)
    }
}

impl<R: Read> Hashing<R> {
    /// Reads exactly `buf.len()` bytes or fails with [`RpmError::Truncated`]
    /// naming `part`.
    fn fill(&mut self, buf: &mut [u8], part: &'static str) -> Result<(), RpmError> {
        let mut got = 0;
        while got < buf.len() {
            match self.read(&mut buf[got..]) {
                Ok(0) => return Err(RpmError::Truncated(part)),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Reads exactly `n` bytes into a vector that grows as they arrive, so a
    /// truncated file claiming a large header costs only what it holds.
    fn fill_vec(
        &mut self,
        mut out: Vec<u8>,
        n: u64,
        part: &'static str,
    ) -> Result<Vec<u8>, RpmError> {
        let want = out.len() as u64 + n;
        (&mut *self).take(n).read_to_end(&mut out)?;
        if (out.len() as u64) < want {
            return Err(RpmError::Truncated(part));
        }
        Ok(out)
    }
}

/// A payload digest algorithm (`PGPHASHALGO_*`).
pub(super) enum PayloadHash {
    Md5(Md5),
    Sha1(Sha1),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl PayloadHash {
    pub(super) fn new(algo: u64) -> Option<Self> {
        Some(match algo {
            1 => Self::Md5(Md5::new()),
            2 => Self::Sha1(Sha1::new()),
            8 => Self::Sha256(Sha256::new()),
            9 => Self::Sha384(Sha384::new()),
            10 => Self::Sha512(Sha512::new()),
            _ => return None,
        })
    }

    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::Md5(_) => "MD5",
            Self::Sha1(_) => "SHA-1",
            Self::Sha256(_) => "SHA-256",
            Self::Sha384(_) => "SHA-384",
            Self::Sha512(_) => "SHA-512",
        }
    }

    pub(super) fn update(&mut self, data: &[u8]) {
        match self {
            Self::Md5(h) => h.update(data),
            Self::Sha1(h) => h.update(data),
            Self::Sha256(h) => h.update(data),
            Self::Sha384(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    pub(super) fn finish(self) -> String {
        match self {
            Self::Md5(h) => hex::encode(h.finalize()),
            Self::Sha1(h) => hex::encode(h.finalize()),
            Self::Sha256(h) => hex::encode(h.finalize()),
            Self::Sha384(h) => hex::encode(h.finalize()),
            Self::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

/// Reads and checks one binary `.rpm`, streaming: the lead, the signature
/// header and its padding, the main header, then the payload, hashed in
/// blocks and discarded.
///
/// Refused: anything that is not an RPM v3/v4 package with header
/// signatures; broken headers (see `header.rs`); a main header whose SHA-256
/// or SHA-1 differs from the signature header's; a payload whose digest
/// (`PAYLOADDIGEST`) or header-and-payload MD5 differs from the recorded
/// one; source packages; invalid names, versions, releases and
/// architectures. Memory stays bounded by the header caps of `limits`.
pub fn read_rpm<R: Read>(reader: R, limits: &RpmLimits) -> Result<RpmPackage, RpmError> {
    let mut file = Hashing {
        inner: BufReader::with_capacity(64 << 10, reader),
        total: 0,
        sha256: Sha256::new(),
    };
    read_lead(&mut file)?;

    let part = "signature header";
    let mut raw = [0u8; INTRO];
    file.fill(&mut raw, part)?;
    let intro = parse_intro(
        &raw,
        part,
        limits.max_signature_entries,
        limits.max_signature_store,
    )?;
    let body = file.fill_vec(Vec::new(), intro.total() - INTRO as u64, part)?;
    let signature = Header::parse(part, intro, &body, sig::REGION, limits)?;
    let padding = (8 - intro.total() % 8) % 8;
    let mut pad = [0u8; 8];
    file.fill(&mut pad[..padding as usize], part)?;
    let header_start = file.total;

    let part = "main header";
    file.fill(&mut raw, part)?;
    let max_store = u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX);
    let intro = parse_intro(&raw, part, limits.max_header_entries, max_store)?;
    if intro.total() > limits.max_header_bytes {
        return Err(RpmError::Limit {
            part,
            problem: format!("{} bytes", intro.total()),
            limit: limits.max_header_bytes,
        });
    }
    let bytes = file.fill_vec(raw.to_vec(), intro.total() - INTRO as u64, part)?;
    let main = Header::parse(part, intro, &bytes[INTRO..], tags::REGION, limits)?;
    let header_end = file.total;

    check_hex(
        &signature,
        sig::SHA256,
        "header SHA-256",
        hex::encode(Sha256::digest(&bytes)),
    )?;
    check_hex(
        &signature,
        sig::SHA1,
        "header SHA-1",
        hex::encode(Sha1::digest(&bytes)),
    )?;
    let mut md5 = signature.bin(sig::MD5)?.map(|recorded| {
        let mut h = Md5::new();
        h.update(&bytes);
        (recorded.to_vec(), h)
    });
    drop(bytes);

    let recorded_payload = main.string(tags::PAYLOADDIGEST)?;
    let mut payload_hash = match &recorded_payload {
        None => None,
        Some(_) => {
            let algo = main.int(tags::PAYLOADDIGESTALGO)?.unwrap_or(8);
            Some(PayloadHash::new(algo).ok_or_else(|| RpmError::Tag {
                part,
                tag: tags::PAYLOADDIGESTALGO,
                problem: format!("unknown digest algorithm {algo}"),
            })?)
        }
    };

    let mut block = vec![0u8; 64 << 10];
    let mut payload = 0u64;
    loop {
        let n = match file.read(&mut block) {
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
        if let Some(h) = &mut payload_hash {
            h.update(&block[..n]);
        }
        if let Some((_, h)) = &mut md5 {
            h.update(&block[..n]);
        }
    }
    if payload == 0 {
        return Err(RpmError::Truncated("the payload (it is empty)"));
    }
    if let (Some(recorded), Some(h)) = (recorded_payload, payload_hash) {
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

    let size_package = file.total;
    let sha256 = hex::encode(file.sha256.finalize());
    package_from(
        &signature,
        &main,
        limits,
        super::fields::Framing {
            header_start,
            header_end,
            size_package,
            sha256,
        },
    )
}

/// Reads and checks the 96-byte lead: magic, format 3 or 4, header-style
/// signatures (as `rpmLeadCheck` does); the rest is legacy and ignored.
fn read_lead<R: Read>(file: &mut Hashing<R>) -> Result<(), RpmError> {
    let mut lead = [0u8; LEAD];
    let mut got = 0;
    while got < LEAD {
        match file.read(&mut lead[got..]) {
            Ok(0) if got == 0 => return Err(RpmError::NotRpm("the file is empty".to_owned())),
            Ok(0) => return Err(RpmError::Truncated("the lead")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    check_lead(&lead)
}

/// Checks a lead's magic, format (3 or 4) and signature type (header-style),
/// as `rpmLeadCheck` does.
pub(super) fn check_lead(lead: &[u8; LEAD]) -> Result<(), RpmError> {
    if lead[..4] != LEAD_MAGIC {
        return Err(RpmError::NotRpm(format!(
            "the lead magic is {}, not edabeedb",
            hex::encode(&lead[..4])
        )));
    }
    if !(3..=4).contains(&lead[4]) {
        return Err(RpmError::NotRpm(format!(
            "lead format version {}.{} (rpm reads 3 and 4)",
            lead[4], lead[5]
        )));
    }
    let sig_type = u16::from_be_bytes([lead[78], lead[79]]);
    if sig_type != HEADERSIG {
        return Err(RpmError::NotRpm(format!(
            "lead signature type {sig_type}, not 5 (header-style signatures)"
        )));
    }
    Ok(())
}

/// Compares a hex digest string tag of the signature header, if present,
/// with `computed`.
pub(super) fn check_hex(
    signature: &Header,
    tag: u32,
    digest: &str,
    computed: String,
) -> Result<(), RpmError> {
    let Some(recorded) = signature.string(tag)? else {
        return Ok(());
    };
    if recorded.eq_ignore_ascii_case(&computed) {
        Ok(())
    } else {
        Err(RpmError::Digest {
            digest: digest.to_owned(),
            recorded,
            computed,
        })
    }
}
