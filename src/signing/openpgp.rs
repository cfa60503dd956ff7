//! OpenPGP signing keys (pure Rust, `pgp` crate): Debian `InRelease` /
//! `Release.gpg` and RPM `repomd.xml.asc`.
//!
//! What gpg 2.2 (and so apt and dnf on Debian 12) accepts, and nothing else
//! (see the team's OpenPGP reference): v4 keys, RSA or EdDSA "legacy"
//! (algorithm 22, `KeyType::Ed25519Legacy`; never the RFC 9580 `Ed25519`),
//! SHA-256 (or stronger) signatures, armor with its CRC line.
//!
//! - Generation ([`PgpKey::generate`]): a primary key that certifies and signs,
//!   RSA of `bits` bits (2048 to 4096; 3072 is [`DEFAULT_PGP_KEY_BITS`]), or
//!   EdDSA legacy when `bits` is 0. Its creation time is set
//!   [`BACKDATE_SECS`] in the past, so no signature made right after
//!   generation is older than the key (gpgv refuses those).
//! - Import ([`PgpKey::from_armored`]): an armored, unprotected secret key, as
//!   `gpg --export-secret-keys --armor` writes it. It signs with its newest
//!   valid signing subkey, else with the primary key (what gpg does).
//! - Cleartext signatures (`InRelease`) sign the text with trailing spaces and
//!   tabs removed from every line and without its final line break: verifiers
//!   strip those, and the `pgp` crate does not when it signs.
//! - Detached signatures (`Release.gpg`, `repomd.xml.asc`) are binary-mode
//!   (type 0x00) over the exact bytes, ASCII-armored.
//! - Every signature is checked with the public key before it is returned.
//! - Key rotation: [`sign_many`] puts the signatures of several keys in one
//!   armor block (apt and gpgv accept it with any one of the keys), and
//!   [`keyring_armored`] / [`keyring_binary`] build one keyring file of several
//!   keys, so the file clients point `signed-by=` at can hold both keys.

use std::sync::atomic::AtomicBool;
use std::time::{SystemTime, UNIX_EPOCH};

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, EncryptionCaps, KeyType,
    SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::public_key::PublicKeyAlgorithm;
use pgp::packet::{
    PacketTrait, Signature, SignatureConfig, SignatureType, Subpacket, SubpacketData,
};
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, KeyVersion, Password, PublicParams, SigningKey, Timestamp};
use rsa::traits::PublicKeyParts;

use super::rsa::{check_org, run_cancellable};
use super::{Algorithm, SignatureFormat, Signer, SigningError};

/// RSA size for new OpenPGP keys when the caller has no preference.
pub const DEFAULT_PGP_KEY_BITS: usize = 3072;
/// Smallest RSA size [`PgpKey::generate`] makes.
pub const MIN_PGP_RSA_BITS: usize = 2048;
/// Largest RSA size [`PgpKey::generate`] makes.
pub const MAX_PGP_RSA_BITS: usize = 4096;
/// How far in the past a generated key's creation time is set.
pub const BACKDATE_SECS: u32 = 60;

/// Which key packet of the transferable key makes signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Primary,
    Subkey(usize),
}

/// A private OpenPGP key (v4) with its public halves, ready to sign.
#[derive(Clone)]
pub struct PgpKey {
    secret: SignedSecretKey,
    slot: Slot,
    fingerprint: String,
    org: String,
    public_armored: String,
    public_binary: Vec<u8>,
}

impl std::fmt::Debug for PgpKey {
    // Only the fingerprint: the private key must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgpKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

fn invalid(what: &str, e: impl std::fmt::Display) -> SigningError {
    SigningError::InvalidKey(format!("OpenPGP {what}: {e}"))
}

fn sign_error(e: impl std::fmt::Display) -> SigningError {
    SigningError::Sign(format!("OpenPGP: {e}"))
}

impl PgpKey {
    /// Generates a v4 key for `org`: RSA of `bits` bits
    /// ([`MIN_PGP_RSA_BITS`]..=[`MAX_PGP_RSA_BITS`]), or EdDSA legacy
    /// (Ed25519, algorithm 22) when `bits` is 0. Blocking; stops soon after
    /// `cancel` is set, with [`SigningError::Cancelled`].
    pub fn generate(org: &str, bits: usize, cancel: &AtomicBool) -> Result<Self, SigningError> {
        check_org(org)?;
        let key_type = match bits {
            0 => KeyType::Ed25519Legacy,
            MIN_PGP_RSA_BITS..=MAX_PGP_RSA_BITS => KeyType::Rsa(bits as u32),
            _ => {
                return Err(SigningError::Generate(format!(
                    "{bits}-bit OpenPGP RSA keys are not made: use {MIN_PGP_RSA_BITS} to \
                     {MAX_PGP_RSA_BITS} bits, or 0 for Ed25519"
                )));
            }
        };
        let now = Timestamp::now().as_secs();
        let mut params = SecretKeyParamsBuilder::default();
        params
            .version(KeyVersion::V4)
            .key_type(key_type)
            .can_certify(true)
            .can_sign(true)
            .can_encrypt(EncryptionCaps::None)
            .created_at(Timestamp::from_secs(now.saturating_sub(BACKDATE_SECS)))
            .primary_user_id(format!("{org} package signing <{org}@packages.invalid>"));
        let params = params
            .build()
            .map_err(|e| SigningError::Generate(e.to_string()))?;
        let secret = run_cancellable(cancel, |rng| params.generate(rng))?
            .map_err(|e| SigningError::Generate(e.to_string()))?;
        Self::from_secret(org, secret)
    }

    /// Reads an armored secret key (`-----BEGIN PGP PRIVATE KEY BLOCK-----`)
    /// belonging to `org`. Passphrase-protected keys and public keys are refused.
    pub fn from_armored(org: &str, text: &str) -> Result<Self, SigningError> {
        check_org(org)?;
        let text = text.trim();
        if text.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
            return Err(SigningError::InvalidKey(
                "this is an OpenPGP public key; give the secret key \
                 (`gpg --export-secret-keys --armor <fingerprint>`)"
                    .to_owned(),
            ));
        }
        if !text.starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
            return Err(SigningError::InvalidKey(
                "expected an armored OpenPGP secret key starting with \
                 `-----BEGIN PGP PRIVATE KEY BLOCK-----`"
                    .to_owned(),
            ));
        }
        let (secret, _headers) =
            SignedSecretKey::from_string(text).map_err(|e| invalid("secret key", e))?;
        Self::from_secret(org, secret)
    }

    fn from_secret(org: &str, secret: SignedSecretKey) -> Result<Self, SigningError> {
        secret
            .verify_bindings()
            .map_err(|e| invalid("key self-signatures", e))?;
        let slot = choose_signer(&secret)?;
        let key = Self {
            fingerprint: hex::encode_upper(secret.primary_key.fingerprint().as_bytes()),
            org: org.to_owned(),
            public_armored: String::new(),
            public_binary: Vec::new(),
            secret,
            slot,
        };
        let signer = key.signing_key();
        for (what, details) in [
            ("primary key", &key.secret.primary_key as &dyn KeyDetails),
            ("signing key", &signer as &dyn KeyDetails),
        ] {
            if details.version() != KeyVersion::V4 {
                return Err(SigningError::InvalidKey(format!(
                    "the OpenPGP {what} is {:?}; apt and dnf (gpg 2.2) read v4 keys only",
                    details.version()
                )));
            }
        }
        if !matches!(
            signer.algorithm(),
            PublicKeyAlgorithm::RSA
                | PublicKeyAlgorithm::RSASign
                | PublicKeyAlgorithm::EdDSALegacy
                | PublicKeyAlgorithm::ECDSA
        ) {
            return Err(SigningError::InvalidKey(format!(
                "OpenPGP signing key of algorithm {:?}: use RSA or EdDSA (legacy, \
                 algorithm 22), which gpg 2.2 verifies",
                signer.algorithm()
            )));
        }
        let public = key.secret.to_public_key();
        let public_armored = public
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| invalid("public key armor", e))?;
        let public_binary = public.to_bytes().map_err(|e| invalid("public key", e))?;
        Ok(Self {
            public_armored,
            public_binary,
            ..key
        })
    }

    /// The key that makes signatures (the primary key or a signing subkey).
    // `Box<&dyn SigningKey>` is the one dynamic form the `pgp` crate
    // implements `SigningKey` for (a bare `&dyn SigningKey` does not).
    #[allow(clippy::redundant_allocation)]
    fn signing_key(&self) -> Box<&dyn SigningKey> {
        match self.slot {
            Slot::Primary => Box::new(&self.secret.primary_key),
            Slot::Subkey(i) => Box::new(&self.secret.secret_subkeys[i].key),
        }
    }

    /// Whether `signature` verifies over `data` with the signing key's public half.
    fn verifies(&self, signature: &Signature, data: &[u8]) -> bool {
        match self.slot {
            Slot::Primary => signature
                .verify(self.secret.primary_key.public_key(), data)
                .is_ok(),
            Slot::Subkey(i) => signature
                .verify(self.secret.secret_subkeys[i].key.public_key(), data)
                .is_ok(),
        }
    }

    /// The primary key's v4 fingerprint, 40 uppercase hex digits.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The long key id: the last 16 hex digits of the fingerprint.
    pub fn long_key_id(&self) -> &str {
        &self.fingerprint[self.fingerprint.len() - 16..]
    }

    /// The file name stem public files use: `<org>-<long key id>`.
    pub fn file_stem(&self) -> String {
        format!("{}-{}", self.org, self.long_key_id())
    }

    /// The transferable public key, armored (`.asc`).
    pub fn public_armored(&self) -> &str {
        &self.public_armored
    }

    /// The transferable public key, binary (`.gpg`, what `gpg --dearmor` makes).
    pub fn public_binary(&self) -> &[u8] {
        &self.public_binary
    }

    /// The transferable public key.
    pub fn public_key_packet(&self) -> SignedPublicKey {
        self.secret.to_public_key()
    }

    /// The secret key, armored.
    pub fn secret_armored(&self) -> String {
        self.secret
            .to_armored_string(ArmorOptions::default())
            .expect("a parsed or generated secret key always serializes")
    }

    /// The key's creation time, Unix seconds.
    pub fn created_at(&self) -> u32 {
        self.secret.primary_key.created_at().as_secs()
    }

    /// Whether the key is RSA (its size is then [`PgpKey::bits`]).
    pub fn is_rsa(&self) -> bool {
        rsa_bits(self.secret.primary_key.public_params()).is_some()
            && rsa_bits(self.signing_key().public_params()).is_some()
    }

    /// RSA: the smaller modulus of the primary and the signing key; other
    /// algorithms: the size of the curve (256 for Ed25519).
    pub fn bits(&self) -> usize {
        let size = |p: &PublicParams| rsa_bits(p).unwrap_or(256);
        size(self.secret.primary_key.public_params()).min(size(self.signing_key().public_params()))
    }
}

fn rsa_bits(params: &PublicParams) -> Option<usize> {
    match params {
        PublicParams::RSA(p) => Some(p.key.size() * 8),
        _ => None,
    }
}

/// The newest valid signing subkey with its secret at hand, else the primary
/// key when it may sign.
fn choose_signer(secret: &SignedSecretKey) -> Result<Slot, SigningError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut best: Option<(usize, u32)> = None;
    for (i, sub) in secret.secret_subkeys.iter().enumerate() {
        let revoked = sub
            .signatures
            .iter()
            .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation));
        let Some(binding) = sub
            .signatures
            .iter()
            .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
            .max_by_key(|s| s.created().map(Timestamp::as_secs))
        else {
            continue;
        };
        let created = sub.key.created_at().as_secs();
        let expired = binding.key_expiration_time().is_some_and(|d| {
            d.as_secs() != 0 && u64::from(created) + u64::from(d.as_secs()) <= now
        });
        let usable = !revoked
            && !expired
            && binding.key_flags().sign()
            && !sub.key.secret_params().is_encrypted();
        if usable && best.is_none_or(|(_, c)| created >= c) {
            best = Some((i, created));
        }
    }
    if let Some((i, _)) = best {
        return Ok(Slot::Subkey(i));
    }
    let flags: Vec<_> = secret
        .details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter())
        .chain(secret.details.direct_signatures.iter())
        .map(Signature::key_flags)
        .collect();
    // No key flags at all (old keys): the algorithm decides, as in gpg.
    let primary_signs = flags.iter().any(|f| f.sign())
        || flags
            .iter()
            .all(|f| !f.sign() && !f.certify() && !f.encrypt_comms());
    if !primary_signs {
        return Err(SigningError::InvalidKey(
            "the OpenPGP key has no usable signing key (no valid signing subkey with its \
             secret part, and the primary key may not sign)"
                .to_owned(),
        ));
    }
    if secret.primary_key.secret_params().is_encrypted() {
        return Err(SigningError::InvalidKey(
            "the OpenPGP secret key is protected by a passphrase (or is a stub without the \
             secret part); export it unprotected, e.g. `gpg --export-secret-keys --armor` of \
             a key whose passphrase was removed with `gpg --change-passphrase`"
                .to_owned(),
        ));
    }
    Ok(Slot::Primary)
}

/// The hash a key signs with: its own preference when that is SHA-256 or
/// stronger (ECDSA P-384/P-521), else SHA-256; never SHA-1.
fn hash_for(key: &dyn SigningKey) -> HashAlgorithm {
    match key.hash_alg() {
        h @ (HashAlgorithm::Sha384 | HashAlgorithm::Sha512) => h,
        _ => HashAlgorithm::Sha256,
    }
}

/// A v4 signature config with what gpg writes: creation time and issuer
/// fingerprint (hashed), issuer key id (unhashed).
fn signature_config(
    key: &dyn SigningKey,
    typ: SignatureType,
) -> Result<SignatureConfig, SigningError> {
    signature_config_at(key, typ, Timestamp::now())
}

/// [`signature_config`] with a given creation time.
fn signature_config_at(
    key: &dyn SigningKey,
    typ: SignatureType,
    created: Timestamp,
) -> Result<SignatureConfig, SigningError> {
    let mut config = SignatureConfig::v4(typ, key.algorithm(), hash_for(key));
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(created)).map_err(sign_error)?,
        Subpacket::regular(SubpacketData::IssuerFingerprint(key.fingerprint()))
            .map_err(sign_error)?,
    ];
    config.unhashed_subpackets = vec![
        Subpacket::regular(SubpacketData::IssuerKeyId(key.legacy_key_id())).map_err(sign_error)?,
    ];
    Ok(config)
}

/// The text a cleartext signature covers: `data` as UTF-8, without its final
/// line break, with trailing spaces and tabs removed from every line.
pub fn cleartext_body(data: &[u8]) -> Result<String, SigningError> {
    let text = std::str::from_utf8(data)
        .map_err(|e| SigningError::Sign(format!("a cleartext signature needs UTF-8 text: {e}")))?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (content, end) = match line.strip_suffix("\r\n") {
            Some(c) => (c, "\r\n"),
            None => match line.strip_suffix('\n') {
                Some(c) => (c, "\n"),
                None => (line, ""),
            },
        };
        out.push_str(content.trim_end_matches([' ', '\t']));
        out.push_str(end);
    }
    Ok(out)
}

/// Line breaks as a text signature hashes them (CRLF).
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// Signs `data` with every key of `keys`, all signatures in one armor block:
/// a cleartext-signed message ([`SignatureFormat::Cleartext`], `InRelease`) or
/// an armored detached signature ([`SignatureFormat::Detached`],
/// `Release.gpg`, `repomd.xml.asc`). A client holding any one of the keys
/// verifies it. Each signature is checked before the result is returned.
pub fn sign_many(
    keys: &[&PgpKey],
    data: &[u8],
    format: SignatureFormat,
) -> Result<Vec<u8>, SigningError> {
    if keys.is_empty() {
        return Err(SigningError::Sign("no OpenPGP key to sign with".to_owned()));
    }
    let pw = Password::empty();
    let armored = match format {
        SignatureFormat::Cleartext => {
            let body = cleartext_body(data)?;
            let configs = keys
                .iter()
                .map(|key| signature_config(*key.signing_key(), SignatureType::Text))
                .collect::<Result<Vec<_>, _>>()?;
            let message = CleartextSignedMessage::new_many(&body, |normalized| {
                keys.iter()
                    .zip(configs)
                    .map(|(key, config)| {
                        config.sign(&key.signing_key(), &pw, normalized.as_bytes())
                    })
                    .collect()
            })
            .map_err(sign_error)?;
            message
                .to_armored_bytes(ArmorOptions::default())
                .map_err(sign_error)?
        }
        SignatureFormat::Detached => {
            let mut signatures = Vec::with_capacity(keys.len());
            for key in keys {
                let signer = key.signing_key();
                let config = signature_config(*signer, SignatureType::Binary)?;
                signatures.push(config.sign(&signer, &pw, data).map_err(sign_error)?);
            }
            armor(&Signatures(&signatures), pgp::armor::BlockType::Signature)?.into_bytes()
        }
        SignatureFormat::Raw => {
            return Err(SigningError::Unsupported {
                algorithm: Algorithm::OpenPgp,
                format,
            });
        }
    };
    // The self-check: what is published must verify with each public key.
    if let Some(key) = keys.iter().find(|k| !k.verify(data, &armored, format)) {
        return Err(self_check_failed(key, format));
    }
    Ok(armored)
}

/// One binary OpenPGP v4 signature packet, header included (type 0x00, a
/// binary document; SHA-256 or stronger), by `key` over `data`, with the
/// subpackets [`sign_many`] writes (creation time and issuer fingerprint
/// hashed, issuer key id unhashed; none critical, which rpm 4.18's parser
/// needs). What an RPM's signature header holds: `RPMSIGTAG_RSA` (268) for
/// RSA keys, `RPMSIGTAG_DSA` (267) for EdDSA ones. Checked with the public
/// key before it is returned.
///
/// The signature's creation time is the key's: the same key over the same
/// data gives the same bytes (RSA PKCS#1 v1.5 and EdDSA are deterministic),
/// so a package signed again after a crash or by a racing instance is the
/// same file.
pub fn detached_binary(key: &PgpKey, data: &[u8]) -> Result<Vec<u8>, SigningError> {
    let signer = key.signing_key();
    let created = Timestamp::from_secs(key.created_at());
    let config = signature_config_at(*signer, SignatureType::Binary, created)?;
    let signature = config
        .sign(&signer, &Password::empty(), data)
        .map_err(sign_error)?;
    if !key.verifies(&signature, data) {
        return Err(self_check_failed(key, SignatureFormat::Detached));
    }
    let mut out = Vec::with_capacity(signature.write_len_with_header());
    signature
        .to_writer_with_header(&mut out)
        .map_err(sign_error)?;
    Ok(out)
}

/// ASCII-armored detached signatures over `data`, one binary-mode packet per
/// key in one armor block (`repodata/repomd.xml.asc`, `Release.gpg`); a
/// client holding any one of the keys verifies it.
pub fn detached_armored(keys: &[&PgpKey], data: &[u8]) -> Result<String, SigningError> {
    let armored = sign_many(keys, data, SignatureFormat::Detached)?;
    String::from_utf8(armored).map_err(sign_error)
}

fn self_check_failed(key: &PgpKey, format: SignatureFormat) -> SigningError {
    SigningError::Sign(format!(
        "the {format} signature of OpenPGP key {} did not verify with its own public key",
        key.fingerprint()
    ))
}

/// Signature packets written one after the other.
struct Signatures<'a>(&'a [Signature]);

impl Serialize for Signatures<'_> {
    fn to_writer<W: std::io::Write>(&self, writer: &mut W) -> pgp::errors::Result<()> {
        self.0
            .iter()
            .try_for_each(|s| s.to_writer_with_header(writer))
    }
    fn write_len(&self) -> usize {
        self.0.iter().map(|s| s.write_len_with_header()).sum()
    }
}

/// Transferable public keys written one after the other (a keyring).
struct PublicKeys(Vec<SignedPublicKey>);

impl Serialize for PublicKeys {
    fn to_writer<W: std::io::Write>(&self, writer: &mut W) -> pgp::errors::Result<()> {
        self.0.iter().try_for_each(|k| k.to_writer(writer))
    }
    fn write_len(&self) -> usize {
        self.0.iter().map(Serialize::write_len).sum()
    }
}

/// One armor block (with its CRC line, which gpgv needs).
fn armor(source: &impl Serialize, typ: pgp::armor::BlockType) -> Result<String, SigningError> {
    let mut out = Vec::new();
    pgp::armor::write(source, typ, &mut out, None, true).map_err(sign_error)?;
    String::from_utf8(out).map_err(sign_error)
}

/// The public keys of `keys` as one armored keyring (one
/// `PGP PUBLIC KEY BLOCK` holding every key), for `signed-by=` / `gpgkey=`.
pub fn keyring_armored(keys: &[&PgpKey]) -> String {
    let keys = PublicKeys(keys.iter().map(|k| k.public_key_packet()).collect());
    armor(&keys, pgp::armor::BlockType::PublicKey)
        .expect("public keys that serialized once always armor")
}

/// The public keys of `keys` as one binary keyring (the transferable public
/// keys concatenated, as `gpg --export` of several keys writes them).
pub fn keyring_binary(keys: &[&PgpKey]) -> Vec<u8> {
    keys.iter()
        .flat_map(|k| k.public_binary().iter().copied())
        .collect()
}

mod signer;

#[cfg(test)]
mod tests;
