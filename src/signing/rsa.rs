//! RSA signing keys, the first [`Signer`]: PKCS#1 v1.5 signatures over SHA-256,
//! as apk verifies `.SIGN.RSA256.<key name>`.
//!
//! apk looks a key up by exact file name, so the name is part of the key's
//! identity: `<org>-<first 8 hex of SHA-256 of the public key (DER SPKI)>.rsa.pub`.
//! Everything here is pure: PEM text in, PEM text and signature bytes out.

use std::sync::atomic::{AtomicBool, Ordering};

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::rand_core::{CryptoRng, RngCore};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use super::{Algorithm, PublicKeyFile, SignatureFormat, Signer, SigningError};

/// Smallest key size accepted, for generated and loaded keys alike.
///
/// apk itself accepts smaller keys, but anything below this is breakable;
/// production keys should be 4096 bits (what `abuild-keygen` makes). The
/// service asks for more when it generates keys ([`crate::keys::KeyPolicy`]);
/// this floor stays low so stores holding older 1024-bit keys keep working.
pub const MIN_KEY_BITS: usize = 1024;

/// An RSA private key with the apk key name its public half is published under.
#[derive(Clone)]
pub struct RsaKey {
    private: RsaPrivateKey,
    public_pem: String,
    key_name: String,
    /// Whether `key_name` was kept from elsewhere ([`RsaKey::with_kept_name`]).
    kept_name: bool,
}

impl std::fmt::Debug for RsaKey {
    // Only the name: the private key must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaKey")
            .field("key_name", &self.key_name())
            .finish_non_exhaustive()
    }
}

impl RsaKey {
    /// Generates a new key of `bits` bits for `org`.
    pub fn generate(org: &str, bits: usize) -> Result<Self, SigningError> {
        check_org(org)?;
        if bits < MIN_KEY_BITS {
            return Err(SigningError::Generate(format!(
                "{bits}-bit keys are too small, use at least {MIN_KEY_BITS} bits"
            )));
        }
        let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, bits)
            .map_err(|e| SigningError::Generate(e.to_string()))?;
        Self::from_rsa(org, private)
    }

    /// [`RsaKey::generate`] that stops soon after `cancel` is set, with
    /// [`SigningError::Cancelled`].
    ///
    /// The `rsa` crate has no cancellation hook, but it draws fresh random bytes
    /// for every prime candidate and every Miller-Rabin round: the random source
    /// given to it checks `cancel` on each draw and, once set, unwinds out of the
    /// search (caught here). That needs `panic = "unwind"` (the default; with
    /// `panic = "abort"` a cancelled generation would abort the process).
    pub fn generate_cancellable(
        org: &str,
        bits: usize,
        cancel: &AtomicBool,
    ) -> Result<Self, SigningError> {
        check_org(org)?;
        if bits < MIN_KEY_BITS {
            return Err(SigningError::Generate(format!(
                "{bits}-bit keys are too small, use at least {MIN_KEY_BITS} bits"
            )));
        }
        let private = run_cancellable(cancel, |rng| RsaPrivateKey::new(rng, bits))?
            .map_err(|e| SigningError::Generate(e.to_string()))?;
        Self::from_rsa(org, private)
    }

    /// Reads a PEM private key (PKCS#8 or PKCS#1) belonging to `org`.
    pub fn from_private_pem(org: &str, pem: &str) -> Result<Self, SigningError> {
        check_org(org)?;
        let pem = pem.trim();
        let private = if pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(SigningError::InvalidKey(
                "the key is encrypted; give the unencrypted PEM".to_owned(),
            ));
        } else if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
            RsaPrivateKey::from_pkcs1_pem(pem)
                .map_err(|e| SigningError::InvalidKey(format!("PKCS#1 PEM: {e}")))?
        } else if pem.starts_with("-----BEGIN PRIVATE KEY-----") {
            RsaPrivateKey::from_pkcs8_pem(pem)
                .map_err(|e| SigningError::InvalidKey(format!("PKCS#8 PEM: {e}")))?
        } else {
            return Err(SigningError::InvalidKey(
                "expected PEM starting with `-----BEGIN PRIVATE KEY-----` (PKCS#8) \
                 or `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1)"
                    .to_owned(),
            ));
        };
        private
            .validate()
            .map_err(|e| SigningError::InvalidKey(format!("inconsistent key: {e}")))?;
        let bits = private.size() * 8;
        if bits < MIN_KEY_BITS {
            return Err(SigningError::InvalidKey(format!(
                "{bits}-bit key is too small, use at least {MIN_KEY_BITS} bits"
            )));
        }
        Self::from_rsa(org, private)
    }

    fn from_rsa(org: &str, private: RsaPrivateKey) -> Result<Self, SigningError> {
        let public = private.to_public_key();
        let der = public
            .to_public_key_der()
            .map_err(|e| SigningError::InvalidKey(format!("cannot encode the public key: {e}")))?;
        let public_pem = public
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| SigningError::InvalidKey(format!("cannot encode the public key: {e}")))?;
        let fingerprint = hex::encode(&Sha256::digest(der.as_bytes())[..4]);
        Ok(Self {
            private,
            public_pem,
            key_name: format!("{org}-{fingerprint}.rsa.pub"),
            kept_name: false,
        })
    }

    /// This key published and signing under `name` instead of its derived
    /// name: for a key imported from another service whose clients already
    /// trust it by that file name (apk looks keys up by name, e.g.
    /// `/etc/apk/keys/<name>`). `name` must be a plain file name ending in
    /// `.rsa.pub`, of letters, digits and `._@+-`.
    pub fn with_kept_name(mut self, name: &str) -> Result<Self, SigningError> {
        check_kept_name(name)?;
        if name != self.key_name {
            self.key_name = name.to_owned();
            self.kept_name = true;
        }
        Ok(self)
    }

    /// Whether the key's name was kept from elsewhere rather than derived from the key.
    pub fn has_kept_name(&self) -> bool {
        self.kept_name
    }

    /// The private key as PKCS#8 PEM.
    pub fn private_pem(&self) -> String {
        let pem = self
            .private
            .to_pkcs8_pem(LineEnding::LF)
            .expect("a valid in-memory RSA key always encodes as PKCS#8");
        String::clone(&pem)
    }

    /// The public key as PEM `BEGIN PUBLIC KEY` (SubjectPublicKeyInfo), as apk reads it.
    pub fn public_pem(&self) -> String {
        self.public_pem.clone()
    }

    /// The file name apk must find the public key under.
    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    /// Size of the modulus in bits.
    pub fn bits(&self) -> usize {
        self.private.size() * 8
    }

    /// PKCS#1 v1.5 signature over the SHA-256 of `data`.
    pub fn sign_sha256(&self, data: &[u8]) -> Vec<u8> {
        let digest = Sha256::digest(data);
        // The rng only blinds the private-key operation against timing attacks;
        // PKCS#1 v1.5 signatures stay deterministic.
        self.private
            .sign_with_rng(
                &mut rand::rngs::OsRng,
                Pkcs1v15Sign::new::<Sha256>(),
                &digest,
            )
            .expect("keys of at least MIN_KEY_BITS always fit a SHA-256 DigestInfo")
    }

    /// Whether `signature` is this key's PKCS#1 v1.5 signature over the SHA-256 of `data`.
    pub fn verify_sha256(&self, data: &[u8], signature: &[u8]) -> bool {
        let digest = Sha256::digest(data);
        self.private
            .to_public_key()
            .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, signature)
            .is_ok()
    }
}

impl Signer for RsaKey {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RsaSha256
    }

    fn key_id(&self) -> &str {
        &self.key_name
    }

    fn public_key(&self) -> PublicKeyFile {
        PublicKeyFile {
            file_name: self.key_name.clone(),
            contents: self.public_pem.clone().into_bytes(),
        }
    }

    fn sign(&self, data: &[u8], format: SignatureFormat) -> Result<Vec<u8>, SigningError> {
        match format {
            SignatureFormat::Raw => Ok(self.sign_sha256(data)),
            format => Err(SigningError::Unsupported {
                algorithm: Algorithm::RsaSha256,
                format,
            }),
        }
    }

    fn verify(&self, data: &[u8], signature: &[u8], format: SignatureFormat) -> bool {
        format == SignatureFormat::Raw && self.verify_sha256(data, signature)
    }

    fn export_private(&self) -> SecretString {
        SecretString::from(self.private_pem())
    }
}

/// Refuses a kept key name that is not a plain apk key file name.
fn check_kept_name(name: &str) -> Result<(), SigningError> {
    let bad = |why: &str| {
        Err(SigningError::InvalidKey(format!(
            "key name `{}` {why}",
            name.escape_debug()
        )))
    };
    let Some(stem) = name.strip_suffix(".rsa.pub") else {
        return bad("does not end with `.rsa.pub`");
    };
    if stem.is_empty() || name.len() > 255 {
        return bad("must have 1 to 247 characters before `.rsa.pub`");
    }
    if name.starts_with('.') || name.contains("..") {
        return bad("starts with `.` or contains `..`");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b))
    {
        return bad("may only contain letters, digits and `._@+-`");
    }
    Ok(())
}

/// Runs `work` (a key generation) with an OS random source that stops it
/// soon after `cancel` is set: [`SigningError::Cancelled`] then. See
/// [`RsaKey::generate_cancellable`] for how (and why it needs unwinding).
pub(super) fn run_cancellable<T>(
    cancel: &AtomicBool,
    work: impl FnOnce(&mut CancellableRng<'_>) -> T,
) -> Result<T, SigningError> {
    let mut rng = CancellableRng { cancel };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut rng)));
    match outcome {
        Ok(done) => Ok(done),
        Err(payload) if payload.is::<Cancelled>() => Err(SigningError::Cancelled),
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Unwinds out of key generation ([`run_cancellable`]).
struct Cancelled;

/// The OS random source, which stops the caller once `cancel` is set.
pub(super) struct CancellableRng<'a> {
    cancel: &'a AtomicBool,
}

impl CancellableRng<'_> {
    fn check(&self) {
        if self.cancel.load(Ordering::Relaxed) {
            // `resume_unwind` skips the panic hook: a cancellation is not a crash
            // and must not print like one.
            std::panic::resume_unwind(Box::new(Cancelled));
        }
    }
}

impl RngCore for CancellableRng<'_> {
    fn next_u32(&mut self) -> u32 {
        self.check();
        rand::rngs::OsRng.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.check();
        rand::rngs::OsRng.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.check();
        rand::rngs::OsRng.fill_bytes(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.check();
        rand::rngs::OsRng.try_fill_bytes(dest)
    }
}

// The OS generator underneath is cryptographically secure; the wrapper only adds the check.
impl CryptoRng for CancellableRng<'_> {}

/// The org becomes part of a file name (the key name) that clients save in
/// `/etc/apk/keys` and that we store under; refuse what cannot be a plain name.
pub(super) fn check_org(org: &str) -> Result<(), SigningError> {
    let bad = org.is_empty()
        || org.starts_with('.')
        || org.len() > 64
        || org
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(SigningError::InvalidOrg(org.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::RsaPublicKey;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::DecodePublicKey;
    use rsa::traits::PrivateKeyParts;
    use std::process::Command;

    /// A throwaway 2048-bit PKCS#8 key shared with the integration tests.
    const FIXTURE_KEY: &str = include_str!("../../tests/fixtures/keys/test-signing.rsa");

    fn verify(public_pem: &str, data: &[u8], signature: &[u8]) -> bool {
        let public = RsaPublicKey::from_public_key_pem(public_pem).unwrap();
        public
            .verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(data),
                signature,
            )
            .is_ok()
    }

    fn assert_key_name_shape(name: &str, org: &str) {
        let hex = name
            .strip_prefix(&format!("{org}-"))
            .and_then(|rest| rest.strip_suffix(".rsa.pub"))
            .unwrap_or_else(|| panic!("bad key name {name}"));
        assert_eq!(hex.len(), 8, "{name}");
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{name}"
        );
    }

    #[test]
    fn generated_key_round_trips_through_pkcs8_and_pkcs1() {
        let key = RsaKey::generate("acme", 1024).unwrap();
        assert_eq!(key.bits(), 1024);
        assert_key_name_shape(key.key_name(), "acme");
        assert!(key.public_pem().starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let pkcs8 = key.private_pem();
        assert!(pkcs8.starts_with("-----BEGIN PRIVATE KEY-----\n"));

        let again = RsaKey::from_private_pem("acme", &pkcs8).unwrap();
        assert_eq!(again.key_name(), key.key_name());
        assert_eq!(again.public_pem(), key.public_pem());

        let pkcs1 = key.private.to_pkcs1_pem(LineEnding::LF).unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let from_pkcs1 = RsaKey::from_private_pem("acme", &pkcs1).unwrap();
        assert_eq!(from_pkcs1.key_name(), key.key_name());
        // PKCS#1 v1.5 is deterministic: the same key gives the same signature.
        assert_eq!(from_pkcs1.sign_sha256(b"x"), key.sign_sha256(b"x"));
    }

    #[test]
    fn the_org_is_the_key_name_prefix_and_the_hash_depends_on_the_key() {
        let a = RsaKey::generate("org-a", 1024).unwrap();
        let b = RsaKey::generate("org-a", 1024).unwrap();
        assert_ne!(a.key_name(), b.key_name());
        let a_other_org = RsaKey::from_private_pem("other", &a.private_pem()).unwrap();
        assert_eq!(
            a_other_org.key_name().strip_prefix("other-"),
            a.key_name().strip_prefix("org-a-")
        );
    }

    #[test]
    fn signatures_verify_and_fail_on_changed_data() {
        let key = RsaKey::generate("acme", 1024).unwrap();
        let sig = key.sign_sha256(b"index bytes");
        assert_eq!(sig.len(), 128);
        assert!(verify(&key.public_pem(), b"index bytes", &sig));
        assert!(!verify(&key.public_pem(), b"index bytez", &sig));
        let other = RsaKey::generate("acme", 1024).unwrap();
        assert!(!verify(&other.public_pem(), b"index bytes", &sig));
    }

    #[test]
    fn debug_does_not_print_the_private_key() {
        let key = RsaKey::from_private_pem("acme", FIXTURE_KEY).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains(key.key_name()), "{debug}");
        assert!(!debug.contains("BEGIN"), "{debug}");
        // No part of the key material, in any of the usual renderings.
        let d = key.private.d().to_string();
        assert!(!debug.contains(&d[..16]), "{debug}");
        let body_line = FIXTURE_KEY.lines().nth(1).unwrap();
        assert!(!debug.contains(body_line), "{debug}");
        assert!(debug.len() < 120, "{debug}");
        let alternate = format!("{key:#?}");
        assert!(!alternate.contains(&d[..16]));
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(matches!(
            RsaKey::from_private_pem("acme", "not a key"),
            Err(SigningError::InvalidKey(_))
        ));
        let corrupt = FIXTURE_KEY.replacen("MII", "MIJ", 1);
        assert!(matches!(
            RsaKey::from_private_pem("acme", &corrupt),
            Err(SigningError::InvalidKey(_))
        ));
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        match RsaKey::from_private_pem("acme", encrypted) {
            Err(SigningError::InvalidKey(msg)) => assert!(msg.contains("encrypted"), "{msg}"),
            other => panic!("{other:?}"),
        }
        let key = RsaKey::from_private_pem("acme", FIXTURE_KEY).unwrap();
        let public_only = key.public_pem();
        assert!(matches!(
            RsaKey::from_private_pem("acme", &public_only),
            Err(SigningError::InvalidKey(_))
        ));
        assert!(matches!(
            RsaKey::generate("acme", 512),
            Err(SigningError::Generate(_))
        ));
        for org in ["", "a/b", "../x", ".hidden", "a b", "a\nb"] {
            assert!(
                matches!(
                    RsaKey::from_private_pem(org, FIXTURE_KEY),
                    Err(SigningError::InvalidOrg(_))
                ),
                "{org:?}"
            );
        }
    }

    #[test]
    fn fixture_key_loads_and_matches_openssl() {
        let key = RsaKey::from_private_pem("test", FIXTURE_KEY).unwrap();
        assert_eq!(key.bits(), 2048);
        assert_key_name_shape(key.key_name(), "test");

        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("key.rsa");
        std::fs::write(&key_path, FIXTURE_KEY).unwrap();

        // Key name: first 8 hex of SHA-256 over the DER SubjectPublicKeyInfo.
        let der = Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&key_path)
            .output()
            .expect("openssl CLI");
        assert!(
            der.status.success(),
            "{}",
            String::from_utf8_lossy(&der.stderr)
        );
        let expected = format!(
            "test-{}.rsa.pub",
            &hex::encode(Sha256::digest(&der.stdout))[..8]
        );
        assert_eq!(key.key_name(), expected);

        // Public PEM: exactly what `openssl pkey -pubout` prints.
        let pem = Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key_path)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(pem.stdout).unwrap(), key.public_pem());

        // Signature: `openssl dgst -sha256 -verify` accepts it.
        let data_path = dir.path().join("data");
        let sig_path = dir.path().join("sig");
        let pub_path = dir.path().join("pub.pem");
        std::fs::write(&data_path, b"some index bytes").unwrap();
        std::fs::write(&sig_path, key.sign_sha256(b"some index bytes")).unwrap();
        std::fs::write(&pub_path, key.public_pem()).unwrap();
        let status = Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(&pub_path)
            .arg("-signature")
            .arg(&sig_path)
            .arg(&data_path)
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stdout)
        );
    }

    /// The signature bytes are what the code before [`Signer`] made (and what
    /// `openssl dgst -sha256 -sign` makes): SHA-256 of the signature of
    /// `packages signing fixture\n` with the fixture key, pinned.
    #[test]
    fn signatures_are_byte_identical_to_the_pinned_ones() {
        const PINNED: &str = "d5b6b38def7d89c682c5790c0a8a537d45240b593b66cfb6fdc46188b2890aa0";
        let key = RsaKey::from_private_pem("test", FIXTURE_KEY).unwrap();
        let data = b"packages signing fixture\n";
        let inherent = key.sign_sha256(data);
        let through_trait = Signer::sign(&key, data, SignatureFormat::Raw).unwrap();
        assert_eq!(inherent, through_trait);
        assert_eq!(hex::encode(Sha256::digest(&inherent)), PINNED);
        assert_eq!(hex::encode(&inherent[..4]), "0325faa0");
        assert!(Signer::verify(&key, data, &inherent, SignatureFormat::Raw));
        assert!(!Signer::verify(
            &key,
            data,
            &inherent,
            SignatureFormat::Detached
        ));
        let public = key.public_key();
        assert_eq!(public.file_name, key.key_name());
        assert_eq!(public.contents, key.public_pem().into_bytes());
        assert_eq!(key.key_id(), key.key_name());
        let exported = secrecy::ExposeSecret::expose_secret(&key.export_private()).to_owned();
        assert_eq!(
            RsaKey::from_private_pem("test", &exported)
                .unwrap()
                .key_name(),
            key.key_name()
        );
    }

    #[test]
    fn generation_stops_when_cancelled() {
        let cancel = AtomicBool::new(true);
        let started = std::time::Instant::now();
        assert!(matches!(
            RsaKey::generate_cancellable("acme", 4096, &cancel),
            Err(SigningError::Cancelled)
        ));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));

        // Cancelled from another thread while it runs: it stops well before an
        // 8192-bit key (tens of seconds) could be done.
        let cancel = std::sync::Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let started = std::time::Instant::now();
        let worker = std::thread::spawn(move || RsaKey::generate_cancellable("acme", 8192, &flag));
        std::thread::sleep(std::time::Duration::from_millis(200));
        cancel.store(true, Ordering::Relaxed);
        let outcome = worker.join().expect("no panic escapes");
        assert!(
            matches!(outcome, Err(SigningError::Cancelled)),
            "{outcome:?}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );

        let never = AtomicBool::new(false);
        let key = RsaKey::generate_cancellable("acme", 1024, &never).unwrap();
        assert_eq!(key.bits(), 1024);
    }
}
