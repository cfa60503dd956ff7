//! Signing packages ([`sign_rpm`]) checked by the real `rpmkeys -Kv` of rpm
//! 4.18 (which fails the test when missing, like the other rpm tests), and
//! the armored detached signature of `repomd.xml` checked by `gpgv`.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use sha2::{Digest as _, Sha256};

use super::tests::{fixture_dir, read_path};
use super::*;
use crate::signing::openpgp::{PgpKey, detached_armored, detached_binary};

/// RSA-3072, the primary key signs (tests/fixtures/keys/README.md).
const RSA_KEY: &str = include_str!("../../../tests/fixtures/keys/test-signing.pgp.asc");
/// gpg 2.2's Ed25519 key that signs with a subkey.
const GPG_SUBKEYS: &str = include_str!("../../../tests/fixtures/keys/gpg-ed25519-subkeys.pgp.asc");

fn rsa() -> PgpKey {
    PgpKey::from_armored("test", RSA_KEY).expect("fixture key")
}

fn ed25519() -> PgpKey {
    PgpKey::generate("test", 0, &AtomicBool::new(false)).expect("Ed25519 key")
}

fn sign(bytes: &[u8], key: &PgpKey) -> Result<(Vec<u8>, SignedRpm), RpmError> {
    let mut out = Vec::new();
    let signed = sign_rpm(bytes, &mut out, key, &RpmLimits::default())?;
    Ok((out, signed))
}

fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4")) as usize
}

/// The (tag, type, count) of every signature-header entry, and where the
/// main header starts.
fn signature_entries(b: &[u8]) -> (Vec<(usize, usize, usize)>, usize) {
    let n = be32(b, 96 + 8);
    let total = 16 + 16 * n + be32(b, 96 + 12);
    let entries = (0..n)
        .map(|i| {
            let at = 96 + 16 + 16 * i;
            (be32(b, at), be32(b, at + 4), be32(b, at + 12))
        })
        .collect();
    (entries, (96 + total).div_ceil(8) * 8)
}

/// Runs `rpmkeys --dbpath <db> <args>`; whether it succeeded and what it
/// printed.
fn rpmkeys(db: &Path, args: &[&Path]) -> (bool, String) {
    let out = Command::new("rpmkeys")
        .arg("--dbpath")
        .arg(db)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("rpmkeys must be installed (Debian package rpm): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A fresh rpm database in `dir` holding the armored public key `asc`.
fn db_with(dir: &Path, name: &str, asc: &str) -> std::path::PathBuf {
    let db = dir.join(format!("db-{name}"));
    let key = dir.join(format!("{name}.asc"));
    std::fs::write(&key, asc).expect("write key");
    let (ok, out) = rpmkeys(&db, &[Path::new("--import"), &key]);
    assert!(ok, "import {name}: {out}");
    db
}

/// The package as read, minus what signing changes.
fn comparable(mut pkg: RpmPackage) -> RpmPackage {
    pkg.sha256 = String::new();
    pkg.signed = false;
    pkg
}

/// Signs every fixture (and a signed one, whose signature is replaced) with
/// `key`; `rpmkeys -Kv` must accept each with `key` and refuse it with
/// the fixtures' own signing key. Returns the signed copy of acc-tool.
fn sign_fixtures_and_verify(key: &PgpKey, algo: &str, tag: usize) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let ours = db_with(dir.path(), "ours", key.public_armored());
    let signed_dir = fixture_dir().join("signed");
    let theirs = std::fs::read_to_string(signed_dir.join("signing-key.asc")).expect("key");
    let other = db_with(dir.path(), "other", &theirs);
    let short_id = key.long_key_id()[8..].to_ascii_lowercase();
    let mut inputs: Vec<_> = ["acc-data-0.9-1.noarch", "acc-hello-1.0.1-1.noarch"]
        .iter()
        .chain(&["acc-lib-1.2.0-1.x86_64", "acc-tool-2.0-1.x86_64"])
        .map(|n| fixture_dir().join(format!("{n}.rpm")))
        .collect();
    inputs.push(signed_dir.join("acc-lib-1.2.0-1.x86_64.rpm"));
    let mut tool = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let bytes = std::fs::read(input).expect("fixture");
        let before = read_path(input);
        let (out, signed) = sign(&bytes, key).expect("signs");
        // Reserved space took the signature: nothing moved.
        assert_eq!(out.len(), bytes.len(), "{}", input.display());
        assert_eq!(signed.size, out.len() as u64);
        assert_eq!(signed.sha256, hex::encode(Sha256::digest(&out)));
        assert_eq!(
            (signed.header_start, signed.header_end),
            (before.header_start, before.header_end)
        );
        assert_eq!(
            out[signed.header_start as usize..],
            bytes[before.header_start as usize..]
        );
        let after = read_rpm(&out[..], &RpmLimits::default()).expect("reads back");
        assert!(after.signed);
        assert_eq!(after.sha256, signed.sha256);
        assert_eq!(comparable(after), comparable(before));
        let (entries, _) = signature_entries(&out);
        let tags: Vec<_> = entries.iter().map(|e| e.0).collect();
        assert_eq!(
            tags,
            [62, tag, 269, 273, 1000, 1004, 1007, 1008],
            "{}",
            input.display()
        );

        let path = dir.path().join(format!("{i}.rpm"));
        std::fs::write(&path, &out).expect("write");
        let (ok, text) = rpmkeys(&ours, &[Path::new("-Kv"), &path]);
        for line in [
            format!("Header V4 {algo}/SHA256 Signature, key ID {short_id}: OK"),
            "Header SHA256 digest: OK".to_owned(),
            "Header SHA1 digest: OK".to_owned(),
            "Payload SHA256 digest: OK".to_owned(),
            "MD5 digest: OK".to_owned(),
        ] {
            assert!(text.contains(&line), "{line:?} missing:\n{text}");
        }
        assert!(ok, "{text}");
        let (ok, text) = rpmkeys(&other, &[Path::new("-Kv"), &path]);
        assert!(
            !ok && text.contains(&format!("key ID {short_id}: NOKEY")),
            "{text}"
        );
        if i == 3 {
            tool = out;
        }
    }
    tool
}

#[test]
fn rsa_signed_fixtures_verify_with_rpmkeys() {
    sign_fixtures_and_verify(&rsa(), "RSA", 268);
}

#[test]
fn ed25519_signed_fixtures_verify_with_rpmkeys_and_tampering_is_caught() {
    let key = ed25519();
    let out = sign_fixtures_and_verify(&key, "EdDSA", 267);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_with(dir.path(), "ours", key.public_armored());
    let short_id = key.long_key_id()[8..].to_ascii_lowercase();
    let (entries, main_start) = signature_entries(&out);
    assert_eq!(entries[1].0, 267);

    // One changed byte in the main header's store (the summary), and one in
    // the signature packet's last (signature) bytes.
    let pkg = read_rpm(&out[..], &RpmLimits::default()).expect("reads");
    let summary = out
        .windows(pkg.summary.len())
        .position(|w| w == pkg.summary.as_bytes())
        .expect("summary in the header");
    assert!(summary > main_start);
    let mut header = out.clone();
    header[summary] ^= 0x20;
    let sig_end = 96 + 16 + 16 * entries.len() + entries[1].2;
    let mut packet = out.clone();
    packet[sig_end - 3] ^= 0x01;
    for (what, bytes) in [("header", header), ("signature", packet)] {
        let path = dir.path().join(format!("{what}.rpm"));
        std::fs::write(&path, bytes).expect("write");
        let (ok, text) = rpmkeys(&db, &[Path::new("-Kv"), &path]);
        assert!(!ok, "{what}: {text}");
        assert!(
            text.contains(&format!("Signature, key ID {short_id}: BAD")),
            "{what}: {text}"
        );
    }
}

#[test]
fn a_gpg_signing_subkey_signs_for_rpmkeys() {
    let key = PgpKey::from_armored("test", GPG_SUBKEYS).expect("gpg key");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_with(dir.path(), "ours", key.public_armored());
    let bytes = std::fs::read(fixture_dir().join("acc-hello-1.0.1-1.noarch.rpm")).expect("fixture");
    let (out, _) = sign(&bytes, &key).expect("signs");
    let path = dir.path().join("hello.rpm");
    std::fs::write(&path, &out).expect("write");
    let (ok, text) = rpmkeys(&db, &[Path::new("-Kv"), &path]);
    assert!(
        ok && text.contains("Header V4 EdDSA/SHA256 Signature"),
        "{text}"
    );
    assert!(text.contains(": OK") && !text.contains("NOKEY"), "{text}");
}

#[test]
fn without_reserved_space_the_signature_header_grows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = "Name: tight\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\n\
                BuildArch: noarch\n%description\nd\n%install\nmkdir -p %{buildroot}/usr/share/tight\n\
                echo x > %{buildroot}/usr/share/tight/x\n%files\n/usr/share/tight\n";
    let input = super::tests_build::rpmbuild(
        dir.path(),
        spec,
        "-bb",
        &["__gpg_reserved_space 0", "_binary_payload w9.gzdio"],
    );
    let bytes = std::fs::read(&input).expect("built");
    let before = read_path(&input);
    let key = rsa();
    let (out, signed) = sign(&bytes, &key).expect("signs");
    assert!(out.len() > bytes.len(), "{} vs {}", out.len(), bytes.len());
    assert!(signed.header_start > before.header_start);
    assert_eq!(
        signed.header_end - signed.header_start,
        before.header_end - before.header_start
    );
    let after = read_rpm(&out[..], &RpmLimits::default()).expect("reads back");
    assert_eq!(
        (after.header_start, after.header_end),
        (signed.header_start, signed.header_end)
    );
    let comparable_framing = |mut p: RpmPackage| {
        (p.header_start, p.header_end, p.size_package) = (0, 0, 0);
        comparable(p)
    };
    assert_eq!(comparable_framing(after), comparable_framing(before));

    let db = db_with(dir.path(), "ours", key.public_armored());
    let path = dir.path().join("signed.rpm");
    std::fs::write(&path, &out).expect("write");
    let (ok, text) = rpmkeys(&db, &[Path::new("-Kv"), &path]);
    assert!(
        ok && text.contains("RSA/SHA256 Signature, key ID"),
        "{text}"
    );
    assert!(!text.contains("BAD") && !text.contains("NOKEY"), "{text}");

    // Signing again (replacing our own signature) keeps the grown size.
    let (again, _) = sign(&out, &key).expect("signs again");
    assert_eq!(again.len(), out.len());
}

#[test]
fn truncated_or_oversized_input_is_refused_without_panic() {
    let key = ed25519();
    let bytes = std::fs::read(fixture_dir().join("acc-tool-2.0-1.x86_64.rpm")).expect("fixture");
    let (_, main_start) = signature_entries(&bytes);
    let pkg = read_rpm(&bytes[..], &RpmLimits::default()).expect("reads");
    let mut cuts: Vec<usize> = (0..200).collect();
    cuts.extend((200..bytes.len()).step_by(97));
    cuts.extend([main_start, main_start + 8, pkg.header_end as usize - 1]);
    cuts.extend([pkg.header_end as usize, bytes.len() - 1]);
    for cut in cuts {
        let err = sign(&bytes[..cut], &key)
            .map(|_| ())
            .expect_err(&format!("signed a copy cut at {cut}"));
        assert!(
            matches!(
                err,
                RpmError::Truncated(_) | RpmError::NotRpm(_) | RpmError::Digest { .. }
            ),
            "cut at {cut}: {err}"
        );
    }
    let mut huge = bytes.clone();
    huge[96 + 12..96 + 16].copy_from_slice(&(64u32 << 20).to_be_bytes());
    let err = sign(&huge, &key).map(|_| ()).expect_err("too large");
    assert!(matches!(err, RpmError::Limit { .. }), "{err}");
    assert!(err.to_string().contains("signature header"), "{err}");
    huge[96 + 8..96 + 12].copy_from_slice(&1000u32.to_be_bytes());
    let err = sign(&huge, &key).map(|_| ()).expect_err("too many entries");
    assert!(err.to_string().contains("1000 index entries"), "{err}");

    // The new signature header must fit the limits the reader applies: a
    // package at the entry cap with no signature to replace is refused.
    let limits = RpmLimits {
        max_signature_entries: 7,
        ..RpmLimits::default()
    };
    read_rpm(&bytes[..], &limits).expect("7 entries fit");
    let err = sign_rpm(&bytes[..], &mut Vec::new(), &key, &limits)
        .map(|_| ())
        .expect_err("8 entries");
    assert!(matches!(err, RpmError::Sign(_)), "{err}");
    assert!(err.to_string().contains("8 index entries"), "{err}");

    // A changed payload byte: signed up to the end, then refused.
    let mut payload = bytes.clone();
    let last = payload.len() - 20;
    payload[last] ^= 1;
    let err = sign(&payload, &key).map(|_| ()).expect_err("bad payload");
    assert!(
        err.to_string().contains("payload SHA-256 mismatch"),
        "{err}"
    );
}

#[test]
fn a_package_without_payload_digest_is_refused() {
    let mut b = std::fs::read(fixture_dir().join("acc-lib-1.2.0-1.x86_64.rpm")).expect("fixture");
    let (entries, main) = signature_entries(&b);
    let n = be32(&b, main + 8);
    let entry = (0..n)
        .map(|i| main + 16 + 16 * i)
        .filter(|&at| [5092, 5097].contains(&be32(&b, at)))
        .collect::<Vec<_>>();
    // PAYLOADDIGEST and PAYLOADDIGESTALT become unknown tags.
    assert_eq!(entry.len(), 2);
    for (i, at) in entry.into_iter().enumerate() {
        b[at..at + 4].copy_from_slice(&(100_000 + i as u32).to_be_bytes());
    }
    // Fix the digests rpm -K checks, as a rebuilt old package would have.
    let end = main + 16 + 16 * n + be32(&b, main + 12);
    let store = 96 + 16 + 16 * entries.len();
    let at = |tag: usize| {
        let i = entries.iter().position(|e| e.0 == tag).expect("tag");
        store + be32(&b, 96 + 16 + 16 * i + 8)
    };
    let (sha256, sha1, md5) = (at(273), at(269), at(1004));
    let header = b[main..end].to_vec();
    b[sha256..sha256 + 64].copy_from_slice(hex::encode(Sha256::digest(&header)).as_bytes());
    b[sha1..sha1 + 40].copy_from_slice(hex::encode(sha1::Sha1::digest(&header)).as_bytes());
    let sum = md5::Md5::digest(&b[main..]);
    b[md5..md5 + 16].copy_from_slice(&sum);
    read_rpm(&b[..], &RpmLimits::default()).expect("still a valid package");
    let err = sign(&b, &ed25519()).map(|_| ()).expect_err("signed");
    assert!(matches!(err, RpmError::Sign(_)), "{err}");
    assert!(err.to_string().contains("no payload digest"), "{err}");
}

#[test]
fn detached_binary_is_one_v4_binary_signature_packet() {
    let key = ed25519();
    let packet = detached_binary(&key, b"data").expect("signs");
    // A signature packet (tag 2) of one body: v4, type 0x00, EdDSA (22),
    // SHA-256 (8).
    let (tag, body, len) = if packet[0] & 0x40 != 0 {
        assert!(packet[1] < 192, "{packet:02x?}");
        (packet[0] & 0x3f, 2, usize::from(packet[1]))
    } else {
        assert_eq!(packet[0] & 3, 0, "{packet:02x?}");
        ((packet[0] >> 2) & 0x0f, 2, usize::from(packet[1]))
    };
    assert_eq!(tag, 2, "{packet:02x?}");
    assert_eq!(body + len, packet.len());
    assert_eq!(&packet[body..body + 4], &[4, 0, 22, 8], "{packet:02x?}");
}

#[test]
fn the_signature_tag_follows_the_key_algorithm_as_in_rpm() {
    use super::sign::signature_tag;
    // gpg's old-format headers (two-byte length) and rpgp's new-format ones.
    assert_eq!(
        signature_tag(&[0x89, 0x01, 0xb3, 4, 0, 1, 10]).ok(),
        Some(268)
    );
    assert_eq!(signature_tag(&[0x88, 0x75, 4, 0, 22, 8]).ok(), Some(267));
    assert_eq!(signature_tag(&[0xc2, 0x75, 4, 0, 22, 8]).ok(), Some(267));
    assert_eq!(
        signature_tag(&[0xc2, 0xc1, 0x10, 4, 0, 1, 8]).ok(),
        Some(268)
    );
    // ECDSA (19): rpm 4.18 cannot verify it.
    let err = signature_tag(&[0xc2, 0x75, 4, 0, 19, 8]).expect_err("ECDSA");
    assert!(err.to_string().contains("algorithm 19"), "{err}");
    assert!(signature_tag(&[0xc2, 0x75, 3, 0, 1]).is_err());
    assert!(signature_tag(&[]).is_err());
}

/// `repomd.xml.asc` made with two keys verifies with `gpgv` and either key
/// alone, and not with a third key or over changed bytes.
#[test]
fn repomd_asc_verifies_with_gpgv_and_either_key() {
    let (a, b, c) = (rsa(), ed25519(), ed25519());
    let dir = tempfile::tempdir().expect("tempdir");
    let repomd =
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd><revision>1</revision></repomd>\n";
    let asc = detached_armored(&[&a, &b], repomd).expect("signs");
    assert!(asc.starts_with("-----BEGIN PGP SIGNATURE-----"), "{asc}");
    std::fs::write(dir.path().join("repomd.xml"), repomd).expect("write");
    std::fs::write(dir.path().join("repomd.xml.asc"), &asc).expect("write");
    let gpgv = |key: &PgpKey, file: &str| {
        let ring = dir.path().join("ring.gpg");
        std::fs::write(&ring, key.public_binary()).expect("write");
        let out = Command::new("/usr/bin/gpgv")
            .args(["--status-fd", "1", "--keyring"])
            .arg(&ring)
            .arg("repomd.xml.asc")
            .arg(file)
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("gpgv must be installed (Debian package gpgv): {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    // With one key alone gpgv exits non-zero for the other signature ("no
    // public key"); what counts is a VALIDSIG by that key and no BADSIG.
    for key in [&a, &b] {
        let (_, text) = gpgv(key, "repomd.xml");
        let good = format!("[GNUPG:] VALIDSIG {}", key.fingerprint());
        assert!(text.contains(&good) && !text.contains("BADSIG"), "{text}");
    }
    let (ok, text) = gpgv(&c, "repomd.xml");
    assert!(!ok && !text.contains("GOODSIG"), "{text}");
    std::fs::write(dir.path().join("changed.xml"), b"<repomd/>\n").expect("write");
    let (ok, text) = gpgv(&a, "changed.xml");
    assert!(!ok && text.contains("BADSIG"), "{text}");
    // One key, one signature: gpgv is fully content.
    let single = detached_armored(&[&b], repomd).expect("signs");
    std::fs::write(dir.path().join("repomd.xml.asc"), &single).expect("write");
    let (ok, text) = gpgv(&b, "repomd.xml");
    assert!(ok && text.contains("Good signature"), "{text}");
}
