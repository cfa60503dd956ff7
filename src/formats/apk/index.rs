//! Rendering and signing `APKINDEX.tar.gz`.
//!
//! The signed file is two gzip members, as `abuild-sign` makes it:
//!
//! 1. signature: a tar holding one regular file `.SIGN.RSA256.<key name>`
//!    (the PKCS#1 v1.5 SHA-256 signature of member 2 *as compressed*), with
//!    the end-of-archive blocks cut, because apk reads both members as one tar;
//! 2. the unsigned index: a tar of `DESCRIPTION` and `APKINDEX`, end blocks kept.
//!
//! Everything is deterministic (mtimes 0, owner root, gzip header without
//! name or time), so the same records give the same bytes and an unchanged
//! index can be recognised and not rewritten.

use super::ApkRecord;
use super::gzip;
use super::segmented::{
    TextSegment, assemble_unsigned, assemble_unsigned_with_spans, chunk_of, compress_segment,
};
use super::ustar::{self, HeaderSpec};
use crate::signing::SigningKey;

/// apk ignores a `DESCRIPTION` larger than this.
pub const MAX_DESCRIPTION_BYTES: usize = 160;

/// Prefix of the signature entry's name; the apk key name follows it.
pub const SIGNATURE_PREFIX: &str = ".SIGN.RSA256.";

/// Renders the `APKINDEX` text of `records`, sorted deterministically
/// (by name, then version, then checksum).
///
/// Each record is a block of `X:value` lines in the order apk writes them
/// (`C P V A S I T U L o m t c k D p i`), ended by an empty line.
pub fn render_text(records: &[ApkRecord]) -> String {
    let mut sorted: Vec<&ApkRecord> = records.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.name, &a.version, &a.checksum).cmp(&(&b.name, &b.version, &b.checksum))
    });
    let mut out = String::new();
    for r in sorted {
        let mut line = |field: char, value: &str| {
            out.push(field);
            out.push(':');
            // A line break would start a new field: records come from stored
            // JSON too, so never trust them to be free of one.
            out.extend(
                value
                    .chars()
                    .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
            );
            out.push('\n');
        };
        line('C', &r.checksum);
        line('P', &r.name);
        line('V', &r.version);
        line('A', &r.arch);
        line('S', &r.file_size.to_string());
        line('I', &r.installed_size.to_string());
        line('T', &r.description);
        line('U', &r.url);
        line('L', &r.license);
        if !r.origin.is_empty() {
            line('o', &r.origin);
        }
        if !r.maintainer.is_empty() {
            line('m', &r.maintainer);
        }
        if let Some(t) = r.build_time {
            line('t', &t.to_string());
        }
        if !r.commit.is_empty() {
            line('c', &r.commit);
        }
        if let Some(k) = r.provider_priority {
            line('k', &k.to_string());
        }
        for (field, list) in [('D', &r.depends), ('p', &r.provides), ('i', &r.install_if)] {
            if !list.is_empty() {
                line(field, &list.join(" "));
            }
        }
        out.push('\n');
    }
    out
}

/// Builds the signed `APKINDEX.tar.gz`: a signature gzip member
/// (`.SIGN.RSA256.<key name>`, end-of-archive cut) followed by the unsigned
/// index member (`DESCRIPTION`, `APKINDEX`, end blocks). Same input, same bytes.
///
/// `description` is cut to [`MAX_DESCRIPTION_BYTES`] (at a character boundary).
pub fn build_signed(description: &str, records: &[ApkRecord], key: &SigningKey) -> Vec<u8> {
    sign_unsigned(build_unsigned(description, records), key)
}

/// The unsigned index member: gzip of a tar with `DESCRIPTION`, `APKINDEX`
/// and the end-of-archive blocks. This is exactly what the signature covers.
///
/// The `APKINDEX` text is the records grouped by [`chunk_of`] their file
/// name, chunk by chunk, each chunk's records sorted as [`render_text`] does;
/// the member is assembled from one compressed segment per chunk
/// ([`super::segmented`]), so an incremental update that re-compresses only
/// one chunk gives exactly these bytes.
pub fn build_unsigned(description: &str, records: &[ApkRecord]) -> Vec<u8> {
    let mut chunks: std::collections::BTreeMap<u32, Vec<ApkRecord>> =
        std::collections::BTreeMap::new();
    for record in records {
        chunks
            .entry(chunk_of(&record.file_name()))
            .or_default()
            .push(record.clone());
    }
    let segments: Vec<TextSegment> = chunks
        .values()
        .map(|records| chunk_segment(records))
        .collect();
    assemble(description, &segments.iter().collect::<Vec<_>>())
}

/// The compressed segment of one chunk's records.
pub fn chunk_segment(records: &[ApkRecord]) -> TextSegment {
    compress_segment(render_text(records).as_bytes(), false)
}

/// The unsigned member from chunk segments in chunk order.
pub fn assemble(description: &str, segments: &[&TextSegment]) -> Vec<u8> {
    assemble_unsigned(
        truncate_at_char(description, MAX_DESCRIPTION_BYTES),
        segments,
    )
}

/// [`assemble`], also returning each segment's `(offset, length)` in the member.
pub fn assemble_with_spans(
    description: &str,
    segments: &[&TextSegment],
) -> (Vec<u8>, Vec<(u64, u64)>) {
    assemble_unsigned_with_spans(
        truncate_at_char(description, MAX_DESCRIPTION_BYTES),
        segments,
    )
}

/// Signs an unsigned member: the signature member followed by it.
pub fn sign_unsigned(unsigned: Vec<u8>, key: &SigningKey) -> Vec<u8> {
    let signature = key.sign_sha256(&unsigned);
    let name = format!("{SIGNATURE_PREFIX}{}", key.key_name());
    let mut signature_tar = Vec::new();
    // No end-of-archive blocks: apk would stop reading at them.
    ustar::append_entry(
        &mut signature_tar,
        &HeaderSpec::file(name.as_bytes(), signature.len() as u64, 0o644),
        &signature,
        &[],
    );
    let mut signed = gzip(&signature_tar);
    signed.extend_from_slice(&unsigned);
    signed
}

fn truncate_at_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Splits a signed index (or package) into its first gzip member's single
/// `.SIGN.*` entry and the bytes after that member: `(entry name, signature,
/// signed bytes)`. `None` if the first member is not a gzip'd tar whose first
/// entry is `.SIGN.*`. Meant for tests and checks, not for trust decisions.
pub fn split_signed(bytes: &[u8]) -> Option<(String, Vec<u8>, Vec<u8>)> {
    let mut decoder = flate2::bufread::GzDecoder::new(bytes);
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut decoder, &mut tar).ok()?;
    let rest = decoder.into_inner();

    let mut reader = ustar::Reader::new(tar.as_slice(), "signature member");
    let ustar::Next::Entry(entry) = reader.next().ok()? else {
        return None;
    };
    let name = String::from_utf8(entry.name).ok()?;
    if !name.starts_with(".SIGN.") {
        return None;
    }
    let mut signature = vec![0u8; usize::try_from(entry.size).ok()?];
    let mut filled = 0;
    while filled < signature.len() {
        match reader.read_data(&mut signature[filled..]).ok()? {
            0 => return None,
            n => filled += n,
        }
    }
    Some((name, signature, rest.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::sync::OnceLock;

    fn key() -> &'static SigningKey {
        static KEY: OnceLock<SigningKey> = OnceLock::new();
        KEY.get_or_init(|| {
            SigningKey::from_private_pem(
                "test",
                include_str!("../../../tests/fixtures/keys/test-signing.rsa"),
            )
            .unwrap()
        })
    }

    fn record(name: &str, version: &str) -> ApkRecord {
        ApkRecord {
            checksum: format!("Q1{name}{version}="),
            name: name.to_owned(),
            version: version.to_owned(),
            arch: "x86_64".to_owned(),
            file_size: 1234,
            installed_size: 4096,
            description: format!("{name} description"),
            url: String::new(),
            license: "MIT".to_owned(),
            origin: String::new(),
            maintainer: String::new(),
            build_time: None,
            commit: String::new(),
            provider_priority: None,
            depends: Vec::new(),
            provides: Vec::new(),
            install_if: Vec::new(),
            datahash: "00".repeat(32),
            sha256: "11".repeat(32),
        }
    }

    fn full_record() -> ApkRecord {
        ApkRecord {
            url: "https://example.com".to_owned(),
            origin: "full-src".to_owned(),
            maintainer: "M <m@example.com>".to_owned(),
            build_time: Some(1700000000),
            commit: "abcdef".to_owned(),
            provider_priority: Some(100),
            depends: vec!["so:libc.musl-x86_64.so.1".to_owned(), "/bin/sh".to_owned()],
            provides: vec!["cmd:full=1.0-r0".to_owned()],
            install_if: vec!["a".to_owned(), "b".to_owned()],
            ..record("full", "1.0-r0")
        }
    }

    #[test]
    fn renders_fields_in_apk_order() {
        assert_eq!(
            render_text(&[full_record()]),
            "C:Q1full1.0-r0=\nP:full\nV:1.0-r0\nA:x86_64\nS:1234\nI:4096\nT:full description\n\
             U:https://example.com\nL:MIT\no:full-src\nm:M <m@example.com>\nt:1700000000\nc:abcdef\n\
             k:100\nD:so:libc.musl-x86_64.so.1 /bin/sh\np:cmd:full=1.0-r0\ni:a b\n\n"
        );
    }

    #[test]
    fn empty_optional_fields_are_left_out_but_t_u_l_stay() {
        let text = render_text(&[ApkRecord {
            description: String::new(),
            license: String::new(),
            ..record("min", "1-r0")
        }]);
        assert_eq!(
            text,
            "C:Q1min1-r0=\nP:min\nV:1-r0\nA:x86_64\nS:1234\nI:4096\nT:\nU:\nL:\n\n"
        );
    }

    #[test]
    fn records_are_sorted_and_line_breaks_neutralised() {
        let records = [
            record("b", "1-r0"),
            record("a", "2-r0"),
            ApkRecord {
                checksum: "Q1z".to_owned(),
                ..record("a", "1-r0")
            },
            ApkRecord {
                checksum: "Q1y".to_owned(),
                description: "evil\nX:injected".to_owned(),
                ..record("a", "1-r0")
            },
        ];
        let text = render_text(&records);
        let order: Vec<&str> = text.lines().filter(|l| l.starts_with("C:")).collect();
        assert_eq!(order, ["C:Q1y", "C:Q1z", "C:Q1a2-r0=", "C:Q1b1-r0="]);
        assert!(text.contains("T:evil X:injected\n"));
        assert!(!text.lines().any(|l| l.starts_with("X:")));
        assert!(text.ends_with("\n\n"));
        assert_eq!(render_text(&[]), "");
    }

    #[test]
    fn same_input_same_bytes() {
        let records = [record("a", "1-r0"), full_record()];
        let one = build_signed("repo", &records, key());
        let mut reversed = records.clone();
        reversed.reverse();
        assert_eq!(one, build_signed("repo", &reversed, key()));
        assert_ne!(one, build_signed("other", &records, key()));
    }

    #[test]
    fn layout_matches_what_apk_expects() {
        let signed = build_signed("repo", &[record("a", "1-r0")], key());
        let (name, signature, unsigned) = split_signed(&signed).unwrap();
        assert_eq!(name, format!(".SIGN.RSA256.{}", key().key_name()));
        assert_eq!(signature.len(), 256);
        assert_eq!(unsigned, build_unsigned("repo", &[record("a", "1-r0")]));

        // The signature member is one header and the padded signature: cut.
        let sig_member_len = signed.len() - unsigned.len();
        let mut sig_tar = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&signed[..sig_member_len]),
            &mut sig_tar,
        )
        .unwrap();
        assert_eq!(sig_tar.len(), 512 + 512);
        // Both gzip headers are `gzip -n -9`'s: no name, mtime 0.
        assert_eq!(&signed[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
        assert_eq!(&unsigned[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3]);
    }

    #[test]
    fn description_is_cut_to_160_bytes_at_a_char_boundary() {
        let long = "é".repeat(100); // 200 bytes
        let unsigned = build_unsigned(&long, &[]);
        let mut tar = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(unsigned.as_slice()),
            &mut tar,
        )
        .unwrap();
        let mut reader = ustar::Reader::new(tar.as_slice(), "index");
        let ustar::Next::Entry(entry) = reader.next().unwrap() else {
            panic!()
        };
        assert_eq!(entry.name, b"DESCRIPTION");
        assert_eq!(entry.size, 160);
        assert_eq!(truncate_at_char("aé", 2), "a");
        assert_eq!(truncate_at_char("abc", 160), "abc");
    }

    #[test]
    fn split_signed_refuses_non_signatures() {
        assert!(split_signed(b"not gzip").is_none());
        let unsigned = build_unsigned("x", &[]);
        assert!(
            split_signed(&unsigned).is_none(),
            "first entry is DESCRIPTION"
        );
    }

    /// Runs `cmd`, returning (success, stdout + stderr).
    fn run(cmd: &mut Command) -> (bool, String) {
        let out = cmd.output().expect("command runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    #[test]
    fn openssl_verifies_the_signature_and_rejects_a_changed_byte() {
        let dir = tempfile::tempdir().unwrap();
        let signed = build_signed("repo", &[full_record(), record("a", "1-r0")], key());
        let (_, signature, unsigned) = split_signed(&signed).unwrap();
        let public = dir.path().join("pub.pem");
        let sig = dir.path().join("sig");
        let data = dir.path().join("unsigned.tar.gz");
        std::fs::write(&public, key().public_pem()).unwrap();
        std::fs::write(&sig, &signature).unwrap();
        std::fs::write(&data, &unsigned).unwrap();
        let verify = || {
            run(Command::new("openssl")
                .args(["dgst", "-sha256", "-verify"])
                .arg(&public)
                .arg("-signature")
                .arg(&sig)
                .arg(&data))
        };
        let (ok, text) = verify();
        assert!(ok, "{text}");
        assert!(text.contains("Verified OK"), "{text}");

        let mut tampered = unsigned.clone();
        let middle = tampered.len() / 2;
        tampered[middle] ^= 1;
        std::fs::write(&data, &tampered).unwrap();
        let (ok, text) = verify();
        assert!(!ok, "{text}");
        assert!(text.contains("Verification failure"), "{text}");
    }

    #[test]
    fn gnu_tar_reads_the_signed_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("APKINDEX.tar.gz");
        let records = [full_record()];
        std::fs::write(&path, build_signed("my repo", &records, key())).unwrap();

        let (ok, listing) = run(Command::new("tar").arg("-tzvf").arg(&path));
        assert!(ok, "{listing}");
        let names: Vec<&str> = listing
            .lines()
            .map(|l| l.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                format!(".SIGN.RSA256.{}", key().key_name()).as_str(),
                "DESCRIPTION",
                "APKINDEX"
            ]
        );
        for line in listing.lines() {
            assert!(line.starts_with("-rw-r--r-- root/root"), "{line}");
            assert!(line.contains(" 1970-01-01 00:00 "), "{line}");
        }

        let (ok, text) = run(Command::new("tar")
            .arg("-xzf")
            .arg(&path)
            .arg("-C")
            .arg(dir.path()));
        assert!(ok, "{text}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("APKINDEX")).unwrap(),
            render_text(&records)
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("DESCRIPTION")).unwrap(),
            "my repo"
        );
    }
}
