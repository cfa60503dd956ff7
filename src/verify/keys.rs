//! The keys `verify` checks signatures against, and verification with
//! public keys only (the project's signers hold private keys).
//!
//! - apk: an RSA public key in PEM (`BEGIN PUBLIC KEY`), known to apk by its
//!   file name; `.SIGN.RSA.` is PKCS#1 v1.5 over SHA-1, `RSA256` over
//!   SHA-256, `RSA512` over SHA-512.
//! - apt and dnf: OpenPGP transferable public keys, armored or binary (a
//!   keyring file may hold several); a signature made by the primary key or
//!   any subkey counts, as gpgv counts it.

use std::path::PathBuf;

use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey};
use pgp::packet::Signature;
use pgp::types::KeyDetails;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};

use super::VerifyError;

/// An RSA public key as apk knows it: its file name and the key.
#[derive(Debug, Clone)]
pub struct RsaPublic {
    /// The file name (what apk looks the key up by).
    pub name: String,
    /// Where it came from (a path or a URL).
    pub source: String,
    /// The key.
    pub key: RsaPublicKey,
}

/// One OpenPGP public key.
#[derive(Debug, Clone)]
pub struct PgpPublic {
    /// Where it came from (a path or a URL).
    pub source: String,
    /// The primary key's fingerprint, uppercase hex.
    pub fingerprint: String,
    /// The key.
    pub key: SignedPublicKey,
}

/// The keys given with `--key`.
#[derive(Debug, Clone, Default)]
pub struct UserKeys {
    /// The files, as given.
    pub files: Vec<String>,
    /// The RSA keys among them (apk).
    pub rsa: Vec<RsaPublic>,
    /// The OpenPGP keys among them (apt, dnf).
    pub pgp: Vec<PgpPublic>,
}

impl UserKeys {
    /// Reads every file: an RSA PEM public key or OpenPGP public keys.
    pub fn load(paths: &[PathBuf]) -> Result<Self, VerifyError> {
        let mut keys = UserKeys::default();
        for path in paths {
            let shown = path.display().to_string();
            let bytes = std::fs::read(path)
                .map_err(|e| VerifyError::Key(format!("--key {shown}: cannot read: {e}")))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| shown.clone());
            if looks_like_pem_public_key(&bytes) {
                let key = parse_rsa(&name, &shown, &bytes)
                    .map_err(|e| VerifyError::Key(format!("--key {shown}: {e}")))?;
                keys.rsa.push(key);
            } else {
                let found = parse_pgp(&shown, &bytes)
                    .map_err(|e| VerifyError::Key(format!("--key {shown}: {e}")))?;
                keys.pgp.extend(found);
            }
            keys.files.push(shown);
        }
        Ok(keys)
    }

    /// Whether no key was given (the published keys are used).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

fn looks_like_pem_public_key(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.contains("-----BEGIN PUBLIC KEY-----") || text.contains("-----BEGIN RSA PUBLIC KEY-----")
}

/// Reads an RSA public key in PEM (SubjectPublicKeyInfo or PKCS#1).
pub fn parse_rsa(name: &str, source: &str, bytes: &[u8]) -> Result<RsaPublic, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not PEM text".to_owned())?;
    let key = RsaPublicKey::from_public_key_pem(text.trim())
        .or_else(|_| {
            use rsa::pkcs1::DecodeRsaPublicKey;
            RsaPublicKey::from_pkcs1_pem(text.trim())
        })
        .map_err(|e| format!("not an RSA public key in PEM: {e}"))?;
    Ok(RsaPublic {
        name: name.to_owned(),
        source: source.to_owned(),
        key,
    })
}

/// Reads every OpenPGP public key of a file (armored or binary), refusing
/// keys whose self-signatures do not verify.
pub fn parse_pgp(source: &str, bytes: &[u8]) -> Result<Vec<PgpPublic>, String> {
    let (keys, _) = SignedPublicKey::from_reader_many(bytes)
        .map_err(|e| format!("not an OpenPGP public key: {e}"))?;
    let mut out = Vec::new();
    for key in keys {
        let key = key.map_err(|e| format!("not an OpenPGP public key: {e}"))?;
        key.verify_bindings()
            .map_err(|e| format!("the OpenPGP key's self-signatures do not verify: {e}"))?;
        out.push(PgpPublic {
            source: source.to_owned(),
            fingerprint: hex::encode_upper(key.fingerprint().as_bytes()),
            key,
        });
    }
    if out.is_empty() {
        return Err("no OpenPGP public key in it".to_owned());
    }
    Ok(out)
}

/// DigestInfo prefix of SHA-1 (RFC 8017 section 9.2, note 1).
const SHA1_PREFIX: [u8; 15] = [
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];

/// Whether `signature` is `key`'s PKCS#1 v1.5 signature of `data` for apk's
/// signature type `kind` (`RSA`, `RSA256`, `RSA512`). `None`: a type apk
/// knows but this check does not (`DSA`), or an unknown one.
pub fn rsa_verify(key: &RsaPublicKey, kind: &str, data: &[u8], signature: &[u8]) -> Option<bool> {
    let ok = match kind {
        "RSA" => key
            .verify(
                Pkcs1v15Sign {
                    hash_len: Some(20),
                    prefix: SHA1_PREFIX.into(),
                },
                &Sha1::digest(data),
                signature,
            )
            .is_ok(),
        "RSA256" => key
            .verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(data),
                signature,
            )
            .is_ok(),
        "RSA512" => key
            .verify(
                Pkcs1v15Sign::new::<Sha512>(),
                &Sha512::digest(data),
                signature,
            )
            .is_ok(),
        _ => return None,
    };
    Some(ok)
}

fn verifies(key: &SignedPublicKey, signature: &Signature, data: &[u8]) -> bool {
    signature.verify(&key.primary_key, data).is_ok()
        || key
            .public_subkeys
            .iter()
            .any(|sub| signature.verify(&sub.key, data).is_ok())
}

/// The fingerprints of the keys that made a valid signature in `signature`
/// (armored, detached, one or more signatures) over `data`. `Err`: the
/// signature file is unreadable.
pub fn pgp_verify_detached(
    keys: &[PgpPublic],
    data: &[u8],
    signature: &[u8],
) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(signature)
        .map_err(|_| "not an armored signature (not text)".to_owned())?;
    let (signatures, _) = DetachedSignature::from_string_many(text)
        .map_err(|e| format!("not an armored OpenPGP signature: {e}"))?;
    let signatures: Vec<Signature> = signatures
        .map(|s| s.map(|s| s.signature))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not an armored OpenPGP signature: {e}"))?;
    if signatures.is_empty() {
        return Err("no signature in it".to_owned());
    }
    Ok(signers(keys, &signatures, data))
}

/// Checks a cleartext-signed message (`InRelease`): the fingerprints of the
/// keys that made a valid signature. `Err`: not a cleartext-signed message.
pub fn pgp_verify_cleartext(keys: &[PgpPublic], message: &[u8]) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(message).map_err(|_| "not UTF-8 text".to_owned())?;
    let (message, _) = CleartextSignedMessage::from_string(text)
        .map_err(|e| format!("not a cleartext-signed OpenPGP message: {e}"))?;
    let signed = message.signed_text();
    Ok(signers(keys, message.signatures(), signed.as_bytes()))
}

fn signers(keys: &[PgpPublic], signatures: &[Signature], data: &[u8]) -> Vec<String> {
    keys.iter()
        .filter(|k| signatures.iter().any(|s| verifies(&k.key, s, data)))
        .map(|k| k.fingerprint.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{PgpKey, RsaKey, SignatureFormat, Signer};

    const RSA_KEY: &str = include_str!("../../tests/fixtures/keys/test-signing.rsa");
    const PGP_KEY: &str = include_str!("../../tests/fixtures/keys/test-signing.pgp.asc");

    #[test]
    fn rsa_signatures_verify_with_the_public_key_only() {
        let private = RsaKey::from_private_pem("test", RSA_KEY).unwrap();
        let public = parse_rsa("k.rsa.pub", "k", private.public_pem().as_bytes()).unwrap();
        let sig = private.sign_sha256(b"index");
        assert_eq!(
            rsa_verify(&public.key, "RSA256", b"index", &sig),
            Some(true)
        );
        assert_eq!(
            rsa_verify(&public.key, "RSA256", b"indey", &sig),
            Some(false)
        );
        assert_eq!(rsa_verify(&public.key, "RSA", b"index", &sig), Some(false));
        assert_eq!(rsa_verify(&public.key, "DSA", b"index", &sig), None);
    }

    #[test]
    fn pgp_signatures_verify_with_the_public_key_only() {
        let private = PgpKey::from_armored("test", PGP_KEY).unwrap();
        let armored = parse_pgp("a", private.public_armored().as_bytes()).unwrap();
        let binary = parse_pgp("b", private.public_binary()).unwrap();
        assert_eq!(armored[0].fingerprint, private.fingerprint());
        assert_eq!(binary[0].fingerprint, private.fingerprint());

        let detached = private.sign(b"repomd", SignatureFormat::Detached).unwrap();
        assert_eq!(
            pgp_verify_detached(&armored, b"repomd", &detached).unwrap(),
            vec![private.fingerprint().to_owned()]
        );
        assert!(
            pgp_verify_detached(&armored, b"repomx", &detached)
                .unwrap()
                .is_empty()
        );
        assert!(pgp_verify_detached(&armored, b"repomd", b"junk").is_err());

        let text = b"Origin: acme\nSuite: bookworm\n";
        let clear = private.sign(text, SignatureFormat::Cleartext).unwrap();
        assert_eq!(pgp_verify_cleartext(&binary, &clear).unwrap().len(), 1);
        let tampered = String::from_utf8(clear)
            .unwrap()
            .replace("bookworm", "trixie!!");
        assert!(
            pgp_verify_cleartext(&binary, tampered.as_bytes())
                .unwrap()
                .is_empty()
        );
    }
}
