//! Signing behind one interface: "sign these bytes" with a named key.
//!
//! A [`Signer`] knows its [`Algorithm`], the id a signature names it by, the
//! public key file clients install, and how to sign and verify bytes in a
//! [`SignatureFormat`]. Formats sign through `&dyn Signer` only, so a new
//! kind of key (OpenPGP for Debian `InRelease` and RPM `repomd.xml.asc` is the
//! next one) is a new implementation plus a variant of [`Algorithm`] and
//! [`PrivateKey`], with no change to the code that signs.
//!
//! Implementations:
//! - [`rsa`]: RSA, PKCS#1 v1.5 over SHA-256, as apk verifies `.SIGN.RSA256.*`.
//! - [`openpgp`]: OpenPGP v4 keys (RSA or EdDSA), cleartext (`InRelease`) and
//!   armored detached (`Release.gpg`, `repomd.xml.asc`) signatures, as apt and
//!   dnf verify them; several keys can sign at once during a rotation
//!   ([`openpgp::sign_many`]).
//!
//! Everything here is pure: key text in, key text and signature bytes out. Where
//! keys are stored and which one signs a repository is [`crate::keys`]'s business.

pub mod openpgp;
pub mod rsa;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use secrecy::SecretString;

pub use self::openpgp::{DEFAULT_PGP_KEY_BITS, PgpKey, keyring_armored, keyring_binary, sign_many};
pub use self::rsa::{MIN_KEY_BITS, RsaKey};

/// The RSA key apk indexes are signed with (the name predates [`Signer`]).
pub type SigningKey = RsaKey;

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The key text is not a usable private key.
    #[error("invalid private key: {0}")]
    InvalidKey(String),
    /// The data cannot be signed as asked, or the signature failed its check.
    #[error("signing failed: {0}")]
    Sign(String),
    /// Key generation failed.
    #[error("key generation failed: {0}")]
    Generate(String),
    /// The org name cannot be part of a key file name.
    #[error("invalid org name for a key file name: {0:?}")]
    InvalidOrg(String),
    /// Key generation was stopped because its caller went away.
    #[error("key generation was cancelled")]
    Cancelled,
    /// The key cannot make this kind of signature.
    #[error("{algorithm} keys cannot make {format} signatures")]
    Unsupported {
        /// The key's algorithm.
        algorithm: Algorithm,
        /// The signature asked for.
        format: SignatureFormat,
    },
    /// The stored algorithm name is not one this build knows.
    #[error("unknown signing algorithm `{0}`")]
    UnknownAlgorithm(String),
}

/// A kind of signing key. The stored name ([`Algorithm::as_str`]) must never change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSA with PKCS#1 v1.5 signatures over SHA-256 (apk's `.SIGN.RSA256.`).
    #[default]
    RsaSha256,
    /// An OpenPGP v4 key ([`PgpKey`]): Debian and RPM repository metadata.
    OpenPgp,
}

impl Algorithm {
    /// The name stored in key sets.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RsaSha256 => "rsa-sha256",
            Algorithm::OpenPgp => "openpgp",
        }
    }

    /// The algorithm of a stored name.
    pub fn parse(name: &str) -> Result<Self, SigningError> {
        match name {
            "rsa-sha256" => Ok(Algorithm::RsaSha256),
            "openpgp" => Ok(Algorithm::OpenPgp),
            other => Err(SigningError::UnknownAlgorithm(other.to_owned())),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The shape of a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureFormat {
    /// The algorithm's bare signature bytes (RSA: PKCS#1 v1.5 over SHA-256;
    /// what apk reads from `.SIGN.RSA256.<key name>`).
    Raw,
    /// An ASCII-armored detached signature (`Release.gpg`, `repomd.xml.asc`).
    Detached,
    /// The data wrapped in a cleartext-signed message (Debian `InRelease`).
    Cleartext,
}

impl fmt::Display for SignatureFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureFormat::Raw => "raw",
            SignatureFormat::Detached => "detached",
            SignatureFormat::Cleartext => "cleartext",
        })
    }
}

/// A public key file as clients install it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyFile {
    /// The file name it is published under (apk: `<org>-<8 hex>.rsa.pub`;
    /// OpenPGP: `<org>-<16 hex>.asc` and `.gpg`).
    pub file_name: String,
    /// Its contents (RSA: PEM `BEGIN PUBLIC KEY`; OpenPGP: the armored or the
    /// binary transferable public key).
    pub contents: Vec<u8>,
}

impl PublicKeyFile {
    /// The contents as text, when they are (PEM, armor); `None` for binary files.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.contents).ok()
    }
}

/// Something that signs bytes with one private key.
///
/// Implementations keep the private key out of `Debug`.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The kind of key.
    fn algorithm(&self) -> Algorithm;

    /// The id signatures name the key by (apk: the key file name; OpenPGP: the fingerprint).
    fn key_id(&self) -> &str;

    /// The public half, as clients install it (the main file: RSA's PEM,
    /// OpenPGP's armored `.asc`).
    fn public_key(&self) -> PublicKeyFile;

    /// Every file the public half is published as (OpenPGP: `.asc` and the
    /// binary `.gpg` that apt's `signed-by=` takes); the main file first.
    fn public_key_files(&self) -> Vec<PublicKeyFile> {
        vec![self.public_key()]
    }

    /// Signs `data`.
    fn sign(&self, data: &[u8], format: SignatureFormat) -> Result<Vec<u8>, SigningError>;

    /// Whether `signature` is this key's signature of `data` in `format`.
    fn verify(&self, data: &[u8], signature: &[u8], format: SignatureFormat) -> bool;

    /// The private key as text, for the private tree only (RSA: PKCS#8 PEM;
    /// OpenPGP: the armored secret key).
    fn export_private(&self) -> SecretString;
}

/// A private key of any supported algorithm; signs through [`Signer`].
///
/// Cheap to clone (the key is shared).
#[derive(Debug, Clone)]
pub enum PrivateKey {
    /// An RSA key.
    Rsa(Arc<RsaKey>),
    /// An OpenPGP key.
    Pgp(Arc<PgpKey>),
}

impl PrivateKey {
    /// Reads a stored private key of `algorithm` belonging to `org`.
    pub fn load(algorithm: Algorithm, org: &str, text: &str) -> Result<Self, SigningError> {
        match algorithm {
            Algorithm::RsaSha256 => Ok(PrivateKey::Rsa(Arc::new(RsaKey::from_private_pem(
                org, text,
            )?))),
            Algorithm::OpenPgp => Ok(PrivateKey::Pgp(Arc::new(PgpKey::from_armored(org, text)?))),
        }
    }

    /// Generates a key of `algorithm` and `bits` for `org`; blocking (run it off
    /// the async runtime) and stopped early once `cancel` is set.
    ///
    /// [`Algorithm::OpenPgp`]: an RSA key of `bits` bits (2048 to 4096), or an
    /// EdDSA (Ed25519 legacy) key when `bits` is 0 ([`PgpKey::generate`]).
    pub fn generate(
        algorithm: Algorithm,
        org: &str,
        bits: usize,
        cancel: &AtomicBool,
    ) -> Result<Self, SigningError> {
        match algorithm {
            Algorithm::RsaSha256 => Ok(PrivateKey::Rsa(Arc::new(RsaKey::generate_cancellable(
                org, bits, cancel,
            )?))),
            Algorithm::OpenPgp => Ok(PrivateKey::Pgp(Arc::new(PgpKey::generate(
                org, bits, cancel,
            )?))),
        }
    }

    /// This key under a name kept from elsewhere ([`RsaKey::with_kept_name`]);
    /// RSA keys only (OpenPGP keys are found by fingerprint, not by name).
    pub fn with_kept_name(self, name: &str) -> Result<Self, SigningError> {
        match self {
            PrivateKey::Rsa(key) => Ok(PrivateKey::Rsa(Arc::new(
                RsaKey::clone(&key).with_kept_name(name)?,
            ))),
            PrivateKey::Pgp(_) => Err(SigningError::InvalidKey(
                "only RSA (apk) keys can keep a name".to_owned(),
            )),
        }
    }

    /// The key as a [`Signer`].
    pub fn signer(&self) -> &dyn Signer {
        match self {
            PrivateKey::Rsa(key) => key.as_ref(),
            PrivateKey::Pgp(key) => key.as_ref(),
        }
    }

    /// The RSA key, if it is one (apk signs with RSA only).
    pub fn as_rsa(&self) -> Option<&RsaKey> {
        match self {
            PrivateKey::Rsa(key) => Some(key),
            PrivateKey::Pgp(_) => None,
        }
    }

    /// The OpenPGP key, if it is one.
    pub fn as_pgp(&self) -> Option<&PgpKey> {
        match self {
            PrivateKey::Pgp(key) => Some(key),
            PrivateKey::Rsa(_) => None,
        }
    }

    /// The RSA modulus size in bits when the key is RSA (apk or OpenPGP RSA),
    /// `None` for elliptic-curve keys.
    pub fn rsa_bits(&self) -> Option<usize> {
        match self {
            PrivateKey::Rsa(key) => Some(key.bits()),
            PrivateKey::Pgp(key) => key.is_rsa().then(|| key.bits()),
        }
    }

    /// The modulus size (RSA) or the equivalent strength figure, in bits.
    pub fn bits(&self) -> usize {
        match self {
            PrivateKey::Rsa(key) => key.bits(),
            PrivateKey::Pgp(key) => key.bits(),
        }
    }
}

impl Signer for PrivateKey {
    fn algorithm(&self) -> Algorithm {
        self.signer().algorithm()
    }
    fn key_id(&self) -> &str {
        self.signer().key_id()
    }
    fn public_key(&self) -> PublicKeyFile {
        self.signer().public_key()
    }
    fn public_key_files(&self) -> Vec<PublicKeyFile> {
        self.signer().public_key_files()
    }
    fn sign(&self, data: &[u8], format: SignatureFormat) -> Result<Vec<u8>, SigningError> {
        self.signer().sign(data, format)
    }
    fn verify(&self, data: &[u8], signature: &[u8], format: SignatureFormat) -> bool {
        self.signer().verify(data, signature, format)
    }
    fn export_private(&self) -> SecretString {
        self.signer().export_private()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE_KEY: &str = include_str!("../tests/fixtures/keys/test-signing.rsa");

    #[test]
    fn algorithm_names_round_trip() {
        assert_eq!(
            Algorithm::parse("rsa-sha256").unwrap(),
            Algorithm::RsaSha256
        );
        assert_eq!(Algorithm::RsaSha256.to_string(), "rsa-sha256");
        assert!(matches!(
            Algorithm::parse("ed25519"),
            Err(SigningError::UnknownAlgorithm(_))
        ));
    }

    #[test]
    fn a_loaded_key_signs_through_the_trait_object() {
        let key = PrivateKey::load(Algorithm::RsaSha256, "test", FIXTURE_KEY).unwrap();
        let signer: &dyn Signer = &key;
        assert_eq!(signer.algorithm(), Algorithm::RsaSha256);
        assert_eq!(signer.key_id(), signer.public_key().file_name);
        let sig = signer.sign(b"data", SignatureFormat::Raw).unwrap();
        assert!(signer.verify(b"data", &sig, SignatureFormat::Raw));
        assert!(!signer.verify(b"date", &sig, SignatureFormat::Raw));
        for format in [SignatureFormat::Detached, SignatureFormat::Cleartext] {
            assert!(matches!(
                signer.sign(b"data", format),
                Err(SigningError::Unsupported { .. })
            ));
        }
        assert_eq!(key.bits(), 2048);
        assert!(key.as_rsa().is_some());
    }
}
