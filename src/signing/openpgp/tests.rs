//! OpenPGP keys: load/export, signatures checked by our verify and by the
//! real `gpgv` (which apt runs), rotation with two keys, keyrings.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use pgp::composed::{Deserializable, SignedPublicKey};
use pgp::ser::Serialize as _;
use secrecy::ExposeSecret;

use super::*;
use crate::signing::PrivateKey;

/// A throwaway RSA-3072 v4 key made once by [`PgpKey::generate`].
const FIXTURE: &str = include_str!("../../../tests/fixtures/keys/test-signing.pgp.asc");
/// Exported by gpg 2.2: Ed25519 certify-only primary, an Ed25519 signing
/// subkey and a cv25519 encryption subkey, no passphrase.
const GPG_SUBKEYS: &str = include_str!("../../../tests/fixtures/keys/gpg-ed25519-subkeys.pgp.asc");
/// Exported by gpg 2.2 with the passphrase `secret`.
const GPG_PROTECTED: &str =
    include_str!("../../../tests/fixtures/keys/gpg-ed25519-protected.pgp.asc");

/// Where gpgv lives on Debian; the tests fail (never skip) without it.
const GPGV: &str = "/usr/bin/gpgv";

const RELEASE: &str = "Origin: acme\n\
Label: acme \n\
Suite: stable\t\n\
Codename: stable\n\
Date: Fri, 27 Nov 2026 12:00:00 UTC\n\
Architectures: amd64 arm64\n\
Components: main\n\
Description: line with trailing spaces   \n\
-----BEGIN PGP SIGNATURE-----\n\
- a line that starts with a dash\n\
SHA256:\n \
0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef 1234 main/binary-amd64/Packages\n";

fn fixture() -> PgpKey {
    PgpKey::from_armored("acme", FIXTURE).unwrap()
}

fn ed25519() -> PgpKey {
    PgpKey::generate("acme", 0, &AtomicBool::new(false)).unwrap()
}

/// Runs gpgv with `keyring` (binary) on `args` (files in `dir`); whether it
/// succeeded, and what it printed (status lines included).
fn gpgv(dir: &Path, keyring: &[u8], args: &[&str]) -> (bool, String) {
    let ring = dir.join("keyring.gpg");
    std::fs::write(&ring, keyring).unwrap();
    let out = Command::new(GPGV)
        .arg("--status-fd")
        .arg("1")
        .arg("--keyring")
        .arg(ring.canonicalize().unwrap())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{GPGV} must be installed (Debian package gpgv): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Writes `files` into a new temporary directory.
fn dir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in files {
        std::fs::write(dir.path().join(name), contents).unwrap();
    }
    dir
}

#[test]
fn the_fixture_loads_and_round_trips_through_its_export() {
    let key = fixture();
    assert_eq!(key.key_id().len(), 40);
    assert!(
        key.key_id()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
        "{}",
        key.key_id()
    );
    assert_eq!(key.algorithm(), Algorithm::OpenPgp);
    assert!(key.is_rsa());
    assert_eq!(key.bits(), 3072);
    let exported = key.export_private();
    assert!(
        exported
            .expose_secret()
            .starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----")
    );
    let again = PgpKey::from_armored("acme", exported.expose_secret()).unwrap();
    assert_eq!(again.key_id(), key.key_id());
    assert_eq!(again.public_binary(), key.public_binary());

    let files = key.public_key_files();
    let stem = format!("acme-{}", &key.key_id()[24..]);
    assert_eq!(files.len(), 2);
    assert_eq!(files[0], key.public_key());
    assert_eq!(files[0].file_name, format!("{stem}.asc"));
    assert!(
        files[0]
            .text()
            .unwrap()
            .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    );
    assert_eq!(files[1].file_name, format!("{stem}.gpg"));
    assert_eq!(files[1].contents, key.public_binary());

    let debug = format!("{key:?} {key:#?}");
    assert!(debug.contains(key.key_id()), "{debug}");
    assert!(!debug.contains("BEGIN") && debug.len() < 200, "{debug}");
}

#[test]
fn an_inrelease_verifies_with_our_verify_and_with_gpgv() {
    let key = fixture();
    let signed = key
        .sign(RELEASE.as_bytes(), SignatureFormat::Cleartext)
        .unwrap();
    let text = String::from_utf8(signed.clone()).unwrap();
    assert!(
        text.starts_with("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: acme\n"),
        "{text}"
    );
    // Trailing blanks are gone, dash lines escaped, no empty line before the
    // signature block, and the armor keeps its CRC line.
    assert!(text.contains("\nLabel: acme\nSuite: stable\n"), "{text}");
    assert!(
        text.contains("\n- -----BEGIN PGP SIGNATURE-----\n"),
        "{text}"
    );
    assert!(text.contains("\n- - a line"), "{text}");
    assert!(text.contains(" main/binary-amd64/Packages\n-----BEGIN PGP SIGNATURE-----\n"));
    assert!(
        text.lines().any(|l| l.len() == 5 && l.starts_with('=')),
        "{text}"
    );

    assert!(key.verify(RELEASE.as_bytes(), &signed, SignatureFormat::Cleartext));
    assert!(!key.verify(
        RELEASE.replace("stable", "stabl3").as_bytes(),
        &signed,
        SignatureFormat::Cleartext
    ));
    assert!(!key.verify(RELEASE.as_bytes(), &signed, SignatureFormat::Detached));
    assert!(!ed25519().verify(RELEASE.as_bytes(), &signed, SignatureFormat::Cleartext));

    let dir = dir_with(&[("InRelease", &signed)]);
    let (ok, out) = gpgv(dir.path(), key.public_binary(), &["InRelease"]);
    assert!(ok, "{out}");
    assert!(out.contains("[GNUPG:] GOODSIG"), "{out}");

    let tampered = text.replace("Suite: stable", "Suite: stab1e");
    let dir = dir_with(&[("InRelease", tampered.as_bytes())]);
    let (ok, out) = gpgv(dir.path(), key.public_binary(), &["InRelease"]);
    assert!(!ok, "{out}");
    assert!(out.contains("BADSIG"), "{out}");
    assert!(!key.verify(
        RELEASE.as_bytes(),
        tampered.as_bytes(),
        SignatureFormat::Cleartext
    ));
}

#[test]
fn a_detached_signature_covers_the_exact_bytes_for_us_and_gpgv() {
    let key = fixture();
    let data: &[u8] = b"<repomd>\xff\x00 not even UTF-8  \n\n";
    let sig = key.sign(data, SignatureFormat::Detached).unwrap();
    assert!(sig.starts_with(b"-----BEGIN PGP SIGNATURE-----\n"));
    assert!(key.verify(data, &sig, SignatureFormat::Detached));
    assert!(!key.verify(b"<repomd>", &sig, SignatureFormat::Detached));

    let dir = dir_with(&[("Release", data), ("Release.gpg", &sig)]);
    let (ok, out) = gpgv(dir.path(), key.public_binary(), &["Release.gpg", "Release"]);
    assert!(ok, "{out}");
    assert!(out.contains("GOODSIG"), "{out}");

    // One changed byte of the data, or of the signature, is refused.
    let mut changed = data.to_vec();
    changed[3] ^= 1;
    let dir = dir_with(&[("Release", &changed), ("Release.gpg", &sig)]);
    let (ok, out) = gpgv(dir.path(), key.public_binary(), &["Release.gpg", "Release"]);
    assert!(!ok && out.contains("BADSIG"), "{out}");

    let text = String::from_utf8(sig.clone()).unwrap();
    let body = text.lines().nth(2).unwrap();
    let flipped: String = body
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 40 {
                if c == 'A' { 'B' } else { 'A' }
            } else {
                c
            }
        })
        .collect();
    let bad_sig = text.replacen(body, &flipped, 1);
    assert!(!key.verify(data, bad_sig.as_bytes(), SignatureFormat::Detached));
    let dir = dir_with(&[("Release", data), ("Release.gpg", bad_sig.as_bytes())]);
    let (ok, out) = gpgv(dir.path(), key.public_binary(), &["Release.gpg", "Release"]);
    assert!(!ok, "{out}");
}

#[test]
fn raw_signatures_and_non_utf8_cleartext_are_refused() {
    let key = fixture();
    assert!(matches!(
        key.sign(b"x", SignatureFormat::Raw),
        Err(SigningError::Unsupported {
            algorithm: Algorithm::OpenPgp,
            format: SignatureFormat::Raw
        })
    ));
    assert!(!key.verify(b"x", b"x", SignatureFormat::Raw));
    match key.sign(b"Origin: \xff\n", SignatureFormat::Cleartext) {
        Err(SigningError::Sign(msg)) => assert!(msg.contains("UTF-8"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        sign_many(&[], b"x", SignatureFormat::Detached),
        Err(SigningError::Sign(_))
    ));
}

#[test]
fn the_cleartext_body_drops_trailing_blanks_and_the_last_line_break() {
    assert_eq!(cleartext_body(b"a \nb\t\n\nc  \n").unwrap(), "a\nb\n\nc");
    assert_eq!(cleartext_body(b"a \r\nb\r\n").unwrap(), "a\r\nb");
    assert_eq!(cleartext_body(b"no break").unwrap(), "no break");
    assert_eq!(cleartext_body(b"").unwrap(), "");
}

#[test]
fn two_keys_sign_once_and_gpgv_accepts_either_key_alone() {
    let rsa = fixture();
    let ed = ed25519();
    let third = ed25519();
    let inrelease =
        sign_many(&[&rsa, &ed], RELEASE.as_bytes(), SignatureFormat::Cleartext).unwrap();
    let detached = sign_many(&[&rsa, &ed], RELEASE.as_bytes(), SignatureFormat::Detached).unwrap();
    for sig in [&inrelease, &detached] {
        let text = std::str::from_utf8(sig).unwrap();
        let blocks = text
            .lines()
            .filter(|l| *l == "-----BEGIN PGP SIGNATURE-----")
            .count();
        assert_eq!(blocks, 1, "{text}");
    }
    for key in [&rsa, &ed] {
        assert!(key.verify(RELEASE.as_bytes(), &inrelease, SignatureFormat::Cleartext));
        assert!(key.verify(RELEASE.as_bytes(), &detached, SignatureFormat::Detached));
    }
    assert!(!third.verify(RELEASE.as_bytes(), &inrelease, SignatureFormat::Cleartext));
    assert!(!third.verify(RELEASE.as_bytes(), &detached, SignatureFormat::Detached));

    let dir = dir_with(&[
        ("InRelease", &inrelease),
        ("Release", RELEASE.as_bytes()),
        ("Release.gpg", &detached),
    ]);
    for key in [&rsa, &ed] {
        for args in [&["InRelease"][..], &["Release.gpg", "Release"]] {
            let (_, out) = gpgv(dir.path(), key.public_binary(), args);
            // apt reads the status lines: one good signature by a key it
            // trusts, none bad; the other key is only "no public key".
            let good = format!("[GNUPG:] VALIDSIG {}", key.key_id());
            assert!(out.contains(&good), "{args:?} {out}");
            assert!(!out.contains("BADSIG"), "{args:?} {out}");
        }
    }
    let (ok, out) = gpgv(dir.path(), third.public_binary(), &["InRelease"]);
    assert!(!ok && !out.contains("GOODSIG"), "{out}");
    // Both keys in the keyring: gpgv is fully content.
    let both = keyring_binary(&[&rsa, &ed]);
    for args in [&["InRelease"][..], &["Release.gpg", "Release"]] {
        let (ok, out) = gpgv(dir.path(), &both, args);
        assert!(ok, "{args:?} {out}");
        assert_eq!(out.matches("[GNUPG:] GOODSIG").count(), 2, "{out}");
    }
}

#[test]
fn keyrings_hold_every_key_in_armored_and_binary_form() {
    let rsa = fixture();
    let ed = ed25519();
    let binary = keyring_binary(&[&rsa, &ed]);
    assert_eq!(binary, [rsa.public_binary(), ed.public_binary()].concat());
    let armored = keyring_armored(&[&rsa, &ed]);
    assert!(armored.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----\n"));
    assert_eq!(armored.matches("-----BEGIN").count(), 1);
    let (keys, _) = SignedPublicKey::from_string_many(&armored).unwrap();
    let keys: Vec<SignedPublicKey> = keys.map(Result::unwrap).collect();
    assert_eq!(keys.len(), 2);
    let again: Vec<u8> = keys.iter().flat_map(|k| k.to_bytes().unwrap()).collect();
    assert_eq!(again, binary);

    // gpgv reads the binary keyring and finds each key in it.
    for key in [&rsa, &ed] {
        let sig = key.sign(b"data", SignatureFormat::Detached).unwrap();
        let dir = dir_with(&[("data", b"data"), ("data.asc", &sig)]);
        let (ok, out) = gpgv(dir.path(), &binary, &["data.asc", "data"]);
        assert!(ok, "{out}");
    }
}

#[test]
fn generated_keys_sign_at_once_and_gpgv_accepts_them() {
    let cancel = AtomicBool::new(false);
    let now = Timestamp::now().as_secs();
    for bits in [0, 2048] {
        let key = PgpKey::generate("acme", bits, &cancel).unwrap();
        assert_eq!(key.is_rsa(), bits != 0);
        assert_eq!(key.bits(), if bits == 0 { 256 } else { 2048 });
        // Back-dated, so a signature made right now is never older than the key.
        assert!(key.created_at() <= now - BACKDATE_SECS + 5, "{bits}");
        let signed = key
            .sign(RELEASE.as_bytes(), SignatureFormat::Cleartext)
            .unwrap();
        let dir = dir_with(&[("InRelease", &signed)]);
        let (ok, out) = gpgv(dir.path(), key.public_binary(), &["InRelease"]);
        assert!(ok, "{bits}: {out}");
        let armored = key.public_armored();
        assert!(armored.contains("-----END PGP PUBLIC KEY BLOCK-----"));
        let (public, _) = SignedPublicKey::from_string(armored).unwrap();
        let uid = public.details.users[0].id.id();
        assert_eq!(uid, b"acme package signing <acme@packages.invalid>");
    }
    for bits in [1024, 8192] {
        assert!(matches!(
            PgpKey::generate("acme", bits, &cancel),
            Err(SigningError::Generate(_))
        ));
    }
    assert!(matches!(
        PgpKey::generate("a/b", 0, &cancel),
        Err(SigningError::InvalidOrg(_))
    ));
    let cancelled = AtomicBool::new(true);
    assert!(matches!(
        PgpKey::generate("acme", 4096, &cancelled),
        Err(SigningError::Cancelled)
    ));
}

#[test]
fn a_gpg_export_with_subkeys_signs_with_its_signing_subkey() {
    let key = PgpKey::from_armored("acme", GPG_SUBKEYS).unwrap();
    assert_eq!(key.key_id(), "3771213ED8F4360B49DCF3FD93961FC0FF9F5040");
    assert_eq!(key.slot, Slot::Subkey(0));
    assert!(!key.is_rsa());
    let signed = key
        .sign(RELEASE.as_bytes(), SignatureFormat::Cleartext)
        .unwrap();
    let detached = key.sign(b"data", SignatureFormat::Detached).unwrap();
    let dir = dir_with(&[
        ("InRelease", &signed),
        ("data", b"data"),
        ("data.asc", &detached),
    ]);
    for args in [&["InRelease"][..], &["data.asc", "data"]] {
        let (ok, out) = gpgv(dir.path(), key.public_binary(), args);
        assert!(ok, "{out}");
        // The signing subkey signs; the primary key is the one named as owner.
        assert!(
            out.contains("VALIDSIG EFDC4B0BBD547F8E54BD55CBC786A1AB53EB21BC"),
            "{out}"
        );
        assert!(out.contains(key.key_id()), "{out}");
    }
}

#[test]
fn protected_public_and_foreign_keys_are_refused_clearly() {
    let cases = [
        (GPG_PROTECTED.to_owned(), "passphrase"),
        (fixture().public_armored().to_owned(), "public key"),
        (
            include_str!("../../../tests/fixtures/keys/test-signing.rsa").to_owned(),
            "PGP PRIVATE KEY BLOCK",
        ),
        (FIXTURE.replacen("xcSY", "xcSZ", 1), "OpenPGP"),
    ];
    for (text, expected) in cases {
        match PgpKey::from_armored("acme", &text) {
            Err(SigningError::InvalidKey(msg)) => assert!(msg.contains(expected), "{msg}"),
            other => panic!("{expected}: {other:?}"),
        }
    }
}

#[test]
fn the_key_works_through_private_key_and_the_trait_object() {
    let key = PrivateKey::load(Algorithm::OpenPgp, "acme", FIXTURE).unwrap();
    assert_eq!(Algorithm::parse("openpgp").unwrap(), Algorithm::OpenPgp);
    assert_eq!(Algorithm::OpenPgp.to_string(), "openpgp");
    let signer: &dyn Signer = &key;
    assert_eq!(signer.algorithm(), Algorithm::OpenPgp);
    assert_eq!(signer.key_id(), fixture().key_id());
    assert_eq!(signer.public_key_files().len(), 2);
    let sig = signer.sign(b"x\n", SignatureFormat::Cleartext).unwrap();
    assert!(signer.verify(b"x\n", &sig, SignatureFormat::Cleartext));
    assert!(key.as_rsa().is_none());
    assert!(key.as_pgp().is_some());
    assert_eq!(key.rsa_bits(), Some(3072));
    // The RSA (apk) key keeps its one PEM file, byte for byte.
    let rsa = PrivateKey::load(
        Algorithm::RsaSha256,
        "acme",
        include_str!("../../../tests/fixtures/keys/test-signing.rsa"),
    )
    .unwrap();
    let files = rsa.public_key_files();
    assert_eq!(files.len(), 1);
    assert_eq!(
        files[0].contents,
        rsa.as_rsa().unwrap().public_pem().into_bytes()
    );
}
