//! A scope's key set and its stored form.
//!
//! One private object per scope, `config/<scope>/signing-key.pem`
//! ([`Key::PrivateKey`]), holds the whole set as JSON with the private keys
//! inside. The object keeps the name it had when it held a single PEM key:
//! a store written before key sets (bare PEM) reads as a one-key set with no
//! migration and no extra lookup, and an older binary that meets a new set
//! refuses to sign ("expected PEM") instead of signing with a stale key.

use bytes::Bytes;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::KeyError;
use crate::repo::{Key, Scope};
use crate::signing::{Algorithm, PgpKey, PrivateKey, Signer, SigningError, SigningKey};

/// What the stored set says it is; readers refuse anything else.
const SET_KIND: &str = "packages-key-set";
/// The stored format's version.
const SET_VERSION: u32 = 1;

/// What a key in a set is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Signs new indexes (one per algorithm).
    Active,
    /// No longer signs, but stays published so clients that fetched an index
    /// signed by it (or still hold only this key) keep trusting the repository
    /// during a rotation.
    Retiring,
}

/// One key of a set.
#[derive(Debug, Clone)]
pub struct SetKey {
    /// The key.
    pub key: PrivateKey,
    /// Active or retiring.
    pub state: KeyState,
    /// When it was added, Unix seconds (`None` for keys from before key sets).
    pub created: Option<u64>,
}

/// The signing keys of one scope: an active key per algorithm and any number
/// of retiring ones, all published in the public tree.
#[derive(Debug, Clone)]
pub struct KeySet {
    scope: Scope,
    keys: Vec<SetKey>,
    pending: bool,
    legacy: bool,
}

/// The stored JSON.
#[derive(Serialize, Deserialize)]
struct StoredSet {
    kind: String,
    version: u32,
    /// Set while the public halves may not all be published yet (between the
    /// winning write and the publication; a crash there is healed by the next
    /// reader, which publishes them before signing).
    #[serde(default)]
    pending_publication: bool,
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    algorithm: String,
    key_id: String,
    state: KeyState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created: Option<u64>,
    /// The private key text (RSA: PKCS#8 PEM; OpenPGP: armored secret key).
    private: String,
    /// Set for an RSA key published under a name kept from elsewhere (`key_id`
    /// is that name; `packages import`). A build without this field sees an id
    /// that does not match the key and refuses to sign, rather than sign under
    /// a name clients do not trust.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    kept_name: bool,
}

impl KeySet {
    /// A set of one new active key.
    pub fn new(scope: Scope, key: PrivateKey, created: u64) -> Self {
        Self {
            scope,
            keys: vec![SetKey {
                key,
                state: KeyState::Active,
                created: Some(created),
            }],
            pending: false,
            legacy: false,
        }
    }

    /// This set with `key` as the active key of its algorithm; the key it
    /// replaces (and every other key) stays in the set as retiring.
    pub fn with_active(&self, key: PrivateKey, created: u64) -> Self {
        let algorithm = key.algorithm();
        let mut keys = vec![SetKey {
            key: key.clone(),
            state: KeyState::Active,
            created: Some(created),
        }];
        for old in &self.keys {
            if old.key.key_id() == key.key_id() {
                continue;
            }
            let mut old = old.clone();
            if old.key.algorithm() == algorithm {
                old.state = KeyState::Retiring;
            }
            keys.push(old);
        }
        Self {
            scope: self.scope.clone(),
            keys,
            pending: self.pending,
            legacy: false,
        }
    }

    /// The scope the set belongs to.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Every key, active ones first.
    pub fn keys(&self) -> &[SetKey] {
        &self.keys
    }

    /// The active key (of the first algorithm that has one).
    pub fn active(&self) -> &PrivateKey {
        &self
            .keys
            .iter()
            .find(|k| k.state == KeyState::Active)
            .expect("a key set always has an active key (checked when read and built)")
            .key
    }

    /// The active key of `algorithm`, if the set has one.
    pub fn active_for(&self, algorithm: Algorithm) -> Option<&PrivateKey> {
        self.keys
            .iter()
            .find(|k| k.state == KeyState::Active && k.key.algorithm() == algorithm)
            .map(|k| &k.key)
    }

    /// The key apk indexes are signed with (the active RSA key).
    pub fn signing_key(&self) -> Option<&SigningKey> {
        self.active_for(Algorithm::RsaSha256)
            .and_then(PrivateKey::as_rsa)
    }

    /// The OpenPGP keys, the active one first, then the retiring ones: sign
    /// with all of them during a rotation ([`crate::signing::sign_many`]) and
    /// publish them as one keyring ([`crate::signing::keyring_binary`]).
    /// Empty when the set has no active OpenPGP key.
    pub fn pgp_keys(&self) -> Vec<&PgpKey> {
        if self.active_for(Algorithm::OpenPgp).is_none() {
            return Vec::new();
        }
        self.keys.iter().filter_map(|k| k.key.as_pgp()).collect()
    }

    /// The retiring keys.
    pub fn retiring(&self) -> impl Iterator<Item = &PrivateKey> {
        self.keys
            .iter()
            .filter(|k| k.state == KeyState::Retiring)
            .map(|k| &k.key)
    }

    /// Whether the public halves may not all be published yet.
    pub fn is_pending(&self) -> bool {
        self.pending
    }

    /// Whether the set was read from a bare PEM key (the layout before key sets).
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }

    pub(super) fn set_pending(&mut self, pending: bool) {
        self.pending = pending;
    }

    /// The stored bytes.
    pub fn to_bytes(&self) -> Bytes {
        let stored = StoredSet {
            kind: SET_KIND.to_owned(),
            version: SET_VERSION,
            pending_publication: self.pending,
            keys: self
                .keys
                .iter()
                .map(|k| StoredKey {
                    algorithm: k.key.algorithm().as_str().to_owned(),
                    key_id: k.key.key_id().to_owned(),
                    state: k.state,
                    created: k.created,
                    private: k.key.export_private().expose_secret().to_owned(),
                    kept_name: k.key.as_rsa().is_some_and(|r| r.has_kept_name()),
                })
                .collect(),
        };
        let mut json = serde_json::to_vec_pretty(&stored).expect("a key set always serializes");
        json.push(b'\n');
        Bytes::from(json)
    }

    /// Reads the stored set of `scope`: JSON, or a bare PEM key (one active key).
    pub fn from_bytes(scope: &Scope, bytes: &[u8]) -> Result<Self, KeyError> {
        let object = Key::PrivateKey(scope.clone()).path();
        let invalid = |reason: SigningError| KeyError::Signing {
            key: object.clone(),
            reason,
        };
        let text = String::from_utf8_lossy(bytes);
        let org = scope.org.as_str();
        if !text.trim_start().starts_with('{') {
            let key = PrivateKey::load(Algorithm::RsaSha256, org, &text).map_err(invalid)?;
            return Ok(Self {
                scope: scope.clone(),
                keys: vec![SetKey {
                    key,
                    state: KeyState::Active,
                    created: None,
                }],
                pending: false,
                legacy: true,
            });
        }
        let stored: StoredSet = serde_json::from_str(&text)
            .map_err(|e| invalid(SigningError::InvalidKey(format!("key set JSON: {e}"))))?;
        if stored.kind != SET_KIND || stored.version != SET_VERSION {
            return Err(invalid(SigningError::InvalidKey(format!(
                "not a key set this build reads (`{}` version {})",
                stored.kind, stored.version
            ))));
        }
        let mut keys = Vec::with_capacity(stored.keys.len());
        for k in stored.keys {
            let algorithm = Algorithm::parse(&k.algorithm).map_err(invalid)?;
            let mut key = PrivateKey::load(algorithm, org, &k.private).map_err(invalid)?;
            if k.kept_name {
                key = key.with_kept_name(&k.key_id).map_err(invalid)?;
            }
            if key.key_id() != k.key_id {
                return Err(invalid(SigningError::InvalidKey(format!(
                    "stored id `{}` does not match its key (`{}`)",
                    k.key_id,
                    key.key_id()
                ))));
            }
            keys.push(SetKey {
                key,
                state: k.state,
                created: k.created,
            });
        }
        // Active keys first, so `active()` and listings are stable.
        keys.sort_by_key(|k| k.state != KeyState::Active);
        if !keys.iter().any(|k| k.state == KeyState::Active) {
            return Err(invalid(SigningError::InvalidKey(
                "the key set has no active key".to_owned(),
            )));
        }
        Ok(Self {
            scope: scope.clone(),
            keys,
            pending: stored.pending_publication,
            legacy: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::{Distro, Org};

    const FIXTURE_KEY: &str = include_str!("../../tests/fixtures/keys/test-signing.rsa");

    fn scope() -> Scope {
        Scope::new(
            Org::parse("acme").unwrap(),
            Some(Distro::ALPINE),
            None,
            None,
        )
        .unwrap()
    }

    fn fixture() -> PrivateKey {
        PrivateKey::load(Algorithm::RsaSha256, "acme", FIXTURE_KEY).unwrap()
    }

    #[test]
    fn a_bare_pem_reads_as_a_one_key_set() {
        let set = KeySet::from_bytes(&scope(), FIXTURE_KEY.as_bytes()).unwrap();
        assert!(set.is_legacy());
        assert_eq!(set.keys().len(), 1);
        assert_eq!(set.active().key_id(), fixture().key_id());
        assert_eq!(set.signing_key().unwrap().key_name(), fixture().key_id());
        assert_eq!(set.retiring().count(), 0);
    }

    #[test]
    fn a_set_round_trips_and_rotation_keeps_the_old_key_as_retiring() {
        let first = KeySet::new(scope(), fixture(), 1);
        let stored = first.to_bytes();
        assert!(String::from_utf8_lossy(&stored).contains("\"state\": \"active\""));
        let read = KeySet::from_bytes(&scope(), &stored).unwrap();
        assert!(!read.is_legacy() && !read.is_pending());
        assert_eq!(read.active().key_id(), fixture().key_id());

        let new = PrivateKey::Rsa(std::sync::Arc::new(
            SigningKey::generate("acme", 1024).unwrap(),
        ));
        let rotated = read.with_active(new.clone(), 2);
        let read = KeySet::from_bytes(&scope(), &rotated.to_bytes()).unwrap();
        assert_eq!(read.active().key_id(), new.key_id());
        let retiring: Vec<&str> = read.retiring().map(|k| k.key_id()).collect();
        assert_eq!(retiring, vec![fixture().key_id()]);

        // Making a retiring key active again swaps them; no key is duplicated.
        let back = read.with_active(fixture(), 3);
        assert_eq!(back.keys().len(), 2);
        assert_eq!(back.active().key_id(), fixture().key_id());
        assert_eq!(
            back.retiring().map(|k| k.key_id()).collect::<Vec<_>>(),
            vec![new.key_id()]
        );
    }

    #[test]
    fn an_openpgp_key_round_trips_in_a_set_and_rotates_with_its_own_algorithm() {
        let pgp = PrivateKey::load(
            Algorithm::OpenPgp,
            "acme",
            include_str!("../../tests/fixtures/keys/test-signing.pgp.asc"),
        )
        .unwrap();
        let set = KeySet::new(scope(), fixture(), 1).with_active(pgp.clone(), 2);
        let stored = set.to_bytes();
        assert!(String::from_utf8_lossy(&stored).contains("\"algorithm\": \"openpgp\""));
        let read = KeySet::from_bytes(&scope(), &stored).unwrap();
        // Another algorithm's key does not retire the RSA key.
        assert_eq!(read.retiring().count(), 0);
        assert_eq!(read.signing_key().unwrap().key_name(), fixture().key_id());
        let active = read.active_for(Algorithm::OpenPgp).unwrap();
        assert_eq!(active.key_id(), pgp.key_id());
        assert_eq!(
            active.as_pgp().unwrap().public_binary(),
            pgp.as_pgp().unwrap().public_binary()
        );
        let ids = |set: &KeySet| -> Vec<String> {
            set.pgp_keys()
                .iter()
                .map(|k| k.key_id().to_owned())
                .collect()
        };
        assert_eq!(ids(&read), vec![pgp.key_id().to_owned()]);

        let new = PrivateKey::generate(
            Algorithm::OpenPgp,
            "acme",
            0,
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap();
        let rotated =
            KeySet::from_bytes(&scope(), &read.with_active(new.clone(), 3).to_bytes()).unwrap();
        assert_eq!(
            ids(&rotated),
            vec![new.key_id().to_owned(), pgp.key_id().to_owned()]
        );
        assert_eq!(
            rotated.retiring().map(|k| k.key_id()).collect::<Vec<_>>(),
            vec![pgp.key_id()]
        );
        assert!(KeySet::new(scope(), fixture(), 1).pgp_keys().is_empty());
    }

    #[test]
    fn a_kept_name_round_trips_and_a_build_without_it_refuses_the_set() {
        let kept = fixture()
            .with_kept_name("ops@example.org-5f1e2d3c.rsa.pub")
            .unwrap();
        let stored = KeySet::new(scope(), kept, 1).to_bytes();
        let read = KeySet::from_bytes(&scope(), &stored).unwrap();
        let key = read.signing_key().unwrap();
        assert_eq!(key.key_name(), "ops@example.org-5f1e2d3c.rsa.pub");
        assert!(key.has_kept_name());
        // Without the flag the stored id no longer matches the key.
        let text = String::from_utf8(stored.to_vec()).unwrap();
        let stripped = text.replace("\"kept_name\": true", "\"kept_name\": false");
        assert!(KeySet::from_bytes(&scope(), stripped.as_bytes()).is_err());
        for bad in [
            "x.pub",
            ".rsa.pub",
            "a/b.rsa.pub",
            "a b.rsa.pub",
            "..x.rsa.pub",
        ] {
            assert!(fixture().with_kept_name(bad).is_err(), "{bad}");
        }
        // The derived name is not a kept one.
        let derived = fixture().key_id().to_owned();
        assert!(
            !fixture()
                .with_kept_name(&derived)
                .unwrap()
                .as_rsa()
                .unwrap()
                .has_kept_name()
        );
    }

    #[test]
    fn damaged_sets_are_refused_with_the_object_named() {
        let good =
            String::from_utf8(KeySet::new(scope(), fixture(), 1).to_bytes().to_vec()).unwrap();
        for bad in [
            good.replace("packages-key-set", "other"),
            good.replace("\"active\"", "\"retiring\""),
            good.replace("rsa-sha256", "ed448"),
            good.replace(".rsa.pub", ".rsa.pubx"),
            "{".to_owned(),
        ] {
            let err = KeySet::from_bytes(&scope(), bad.as_bytes()).unwrap_err();
            assert!(
                err.to_string()
                    .contains("config/acme/alpine/signing-key.pem"),
                "{err}"
            );
        }
    }
}
