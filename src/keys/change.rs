//! Generating, importing and replacing a scope's keys, atomically.
//!
//! A change (1) reads the scope's set and the sets above it, refusing a change
//! that would move the signing of existing repositories to another key unless
//! `replace` is given; (2) makes or reads the new key (generation is limited
//! in size and count and stops when its caller goes away); (3) writes the
//! private set *first*, conditionally: `Create` for a new set, `Update(etag)`
//! for a replacement, so of concurrent changes exactly one wins and the others
//! get [`KeyError::Conflict`] and publish nothing; (4) only then publishes the
//! public keys, and (5) marks the set as published.
//!
//! On a store without conditional writes (Garage 2.5) step 3 re-reads the set
//! right before writing, writes, waits [`SETTLE_WITHOUT_CONDITIONAL_WRITES`]
//! and reads it back: every writer that raced sees the same last write, and
//! only that writer publishes. This holds as long as one request takes less
//! than the settle time; no more is possible without conditional writes.
//!
//! A crash between steps 3 and 5 leaves a set marked `pending_publication`;
//! the next reader ([`super::load_key_set`]) publishes its public keys before
//! anything is signed with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::resolve::{forget_cached, public_key_object, publish_public_keys, read_set};
use super::{GeneratedKey, KeyError, KeySet};
use crate::repo::{Key, STATIC_PREFIX, Scope};
use crate::signing::{Algorithm, PrivateKey, Signer};
use crate::storage::{Payload, PutMode, StorageError};
use crate::stores::Stores;

/// Default RSA key size, as `abuild-keygen` makes.
pub const DEFAULT_KEY_BITS: usize = 4096;

pub use crate::signing::DEFAULT_PGP_KEY_BITS;

/// Key generations running at once in this process; more wait their turn.
///
/// A 4096-bit RSA key keeps a core busy for a second or more; two cores
/// are what the service is sized for, so one generation at a time leaves
/// the other for publishing.
pub const MAX_CONCURRENT_GENERATIONS: usize = 1;

/// How long a writer on a store without conditional writes waits before
/// reading its write back (see the module doc).
pub const SETTLE_WITHOUT_CONDITIONAL_WRITES: Duration = Duration::from_millis(1500);

static GENERATIONS: Semaphore = Semaphore::const_new(MAX_CONCURRENT_GENERATIONS);

/// Which keys may be generated or imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Smallest RSA modulus, in bits.
    pub min_rsa_bits: usize,
    /// Largest RSA modulus, in bits (bigger keys cost minutes of CPU to make
    /// and slow every signature down).
    pub max_rsa_bits: usize,
}

impl KeyPolicy {
    /// 2048 to 4096 bits.
    pub const DEFAULT: KeyPolicy = KeyPolicy {
        min_rsa_bits: 2048,
        max_rsa_bits: 4096,
    };

    /// Checks a key's size: RSA keys (apk or OpenPGP) must be in range;
    /// elliptic-curve OpenPGP keys (Ed25519) have one size and pass.
    fn check_key(&self, key: &PrivateKey) -> Result<(), KeyError> {
        key.rsa_bits().map_or(Ok(()), |bits| self.check(bits))
    }

    /// Checks the `bits` asked of a generation of `algorithm` (OpenPGP: 0
    /// asks for Ed25519).
    fn check_request(&self, algorithm: Algorithm, bits: usize) -> Result<(), KeyError> {
        if algorithm == Algorithm::OpenPgp && bits == 0 {
            return Ok(());
        }
        self.check(bits)
    }

    fn check(&self, bits: usize) -> Result<(), KeyError> {
        if (self.min_rsa_bits..=self.max_rsa_bits).contains(&bits) {
            Ok(())
        } else {
            Err(KeyError::Bits {
                bits,
                min: self.min_rsa_bits,
                max: self.max_rsa_bits,
            })
        }
    }
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How a key change may proceed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeOptions {
    /// Allow the change to move signing to the new key: replace the scope's
    /// active key (it stays published as retiring), or take over repositories
    /// a wider scope's key signs today.
    pub replace: bool,
    /// Which keys are acceptable.
    pub policy: KeyPolicy,
    /// The kind of key to generate or import: [`Algorithm::RsaSha256`] (the
    /// default; apk) or [`Algorithm::OpenPgp`] (Debian, RPM; `bits` 0 generates
    /// an Ed25519 key, imports take an armored OpenPGP secret key).
    pub algorithm: Algorithm,
}

/// The scope a token must hold to generate, import or replace keys anywhere
/// in `scope`: its org (an org token, or admin). A repo or distro token can
/// publish into its repos but never choose who signs them.
pub fn authority(scope: &Scope) -> Scope {
    Scope {
        org: scope.org.clone(),
        distro: None,
        version: None,
        repo: None,
    }
}

/// Number of key generations running in this process now.
pub fn generations_running() -> usize {
    MAX_CONCURRENT_GENERATIONS - GENERATIONS.available_permits()
}

/// Generates a key for `scope` with the default options: refuses to replace a
/// key or to take over repositories another key signs.
pub async fn generate(
    stores: &Stores,
    scope: &Scope,
    bits: usize,
) -> Result<GeneratedKey, KeyError> {
    generate_with(stores, scope, bits, &ChangeOptions::default()).await
}

/// Imports a PEM private RSA key for `scope` with the default options (see
/// [`generate`]; OpenPGP keys: [`import_with`] and [`ChangeOptions::algorithm`]).
///
/// Importing the key that is already active there changes nothing and succeeds.
pub async fn import(stores: &Stores, scope: &Scope, pem: &str) -> Result<GeneratedKey, KeyError> {
    import_with(stores, scope, pem, &ChangeOptions::default()).await
}

/// Generates a key of `options.algorithm` (RSA of `bits` bits; OpenPGP: RSA
/// of `bits` bits, or Ed25519 for 0) and makes it the active key of `scope`.
/// It replaces only the active key of its own algorithm.
///
/// The generation runs on the blocking pool, one at a time per process
/// ([`MAX_CONCURRENT_GENERATIONS`]); dropping the returned future stops it.
pub async fn generate_with(
    stores: &Stores,
    scope: &Scope,
    bits: usize,
    options: &ChangeOptions,
) -> Result<GeneratedKey, KeyError> {
    check_scope(scope)?;
    options.policy.check_request(options.algorithm, bits)?;
    let before = Before::read(stores, scope, options, None).await?;
    let key = generate_key(scope, options.algorithm, bits).await?;
    commit(stores, scope, key, before).await
}

/// Imports a private key of `options.algorithm` as the active key of `scope`:
/// RSA, PEM (PKCS#8 or PKCS#1); OpenPGP, an armored unprotected secret key.
pub async fn import_with(
    stores: &Stores,
    scope: &Scope,
    pem: &str,
    options: &ChangeOptions,
) -> Result<GeneratedKey, KeyError> {
    import_named(stores, scope, pem, None, options).await
}

/// [`import_with`] for an RSA key that keeps the file name `name` its clients
/// already trust it by (`<name>` in `/etc/apk/keys/`) instead of the derived
/// `<org>-<8 hex>.rsa.pub`: for keys moved from another service
/// (`packages import`). Importing it again under the same name changes nothing.
pub async fn import_keeping_name(
    stores: &Stores,
    scope: &Scope,
    pem: &str,
    name: &str,
    options: &ChangeOptions,
) -> Result<GeneratedKey, KeyError> {
    import_named(stores, scope, pem, Some(name), options).await
}

async fn import_named(
    stores: &Stores,
    scope: &Scope,
    pem: &str,
    name: Option<&str>,
    options: &ChangeOptions,
) -> Result<GeneratedKey, KeyError> {
    check_scope(scope)?;
    let invalid = |reason| KeyError::Signing {
        key: Key::PrivateKey(scope.clone()).path(),
        reason,
    };
    let mut key = PrivateKey::load(options.algorithm, scope.org.as_str(), pem).map_err(invalid)?;
    if let Some(name) = name {
        key = key.with_kept_name(name).map_err(invalid)?;
    }
    options.policy.check_key(&key)?;
    let before = Before::read(stores, scope, options, Some(&key)).await?;
    if let Some(done) = before.unchanged {
        return Ok(done);
    }
    commit(stores, scope, key, before).await
}

fn check_scope(scope: &Scope) -> Result<(), KeyError> {
    if scope.distro.is_none() {
        return Err(KeyError::NeedsDistro);
    }
    Ok(())
}

/// What the scope looked like before the change.
struct Before {
    /// The scope's own set and its ETag.
    current: Option<(KeySet, String)>,
    /// Set when the change is a no-op (importing the active key again).
    unchanged: Option<GeneratedKey>,
}

impl Before {
    /// Reads the scope's set and those above it, and refuses a change that
    /// needs `replace` when it is not given.
    async fn read(
        stores: &Stores,
        scope: &Scope,
        options: &ChangeOptions,
        importing: Option<&PrivateKey>,
    ) -> Result<Self, KeyError> {
        let scopes: Vec<Scope> = scope
            .ancestry()
            .into_iter()
            .filter(|s| s.distro.is_some())
            .collect();
        let mut found =
            futures::future::try_join_all(scopes.iter().map(|s| read_set(stores, s))).await?;
        let current = found.remove(0);
        if let (Some((set, _)), Some(key)) = (&current, importing) {
            if set.active_for(key.algorithm()).map(|k| k.key_id()) == Some(key.key_id()) {
                let unchanged = Some(describe(scope, key, set));
                return Ok(Self { current, unchanged });
            }
        }
        if !options.replace {
            if let Some((set, _)) = &current {
                return Err(KeyError::Exists {
                    scope: scope.to_string(),
                    active: set.active().key_id().to_owned(),
                });
            }
            let wider = scopes[1..]
                .iter()
                .zip(found)
                .find_map(|(s, f)| f.map(|f| (s, f)));
            if let Some((wider, (set, _))) = wider {
                return Err(KeyError::WouldChangeSigner {
                    scope: scope.to_string(),
                    signer_scope: wider.to_string(),
                    active: set.active().key_id().to_owned(),
                });
            }
        }
        Ok(Self {
            current,
            unchanged: None,
        })
    }
}

/// Sets the flag when dropped: the generation of a dropped request stops.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

async fn generate_key(
    scope: &Scope,
    algorithm: Algorithm,
    bits: usize,
) -> Result<PrivateKey, KeyError> {
    let cancel = Arc::new(AtomicBool::new(false));
    let _cancel_on_drop = CancelOnDrop(cancel.clone());
    let permit = GENERATIONS
        .acquire()
        .await
        .expect("the generation semaphore is never closed");
    // The permit moves into the blocking task: it is released when the work
    // really stops, not when the request goes away.
    let org = scope.org.to_string();
    let flag = cancel.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        PrivateKey::generate(algorithm, &org, bits, &flag)
    })
    .await
    .map_err(|e| StorageError::backend("generate key", "", e))?
    .map_err(|reason| KeyError::Signing {
        key: Key::PrivateKey(scope.clone()).path(),
        reason,
    })
}

/// Writes the new set (one winner among racing changes), then publishes.
async fn commit(
    stores: &Stores,
    scope: &Scope,
    key: PrivateKey,
    before: Before,
) -> Result<GeneratedKey, KeyError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut set = match &before.current {
        Some((current, _)) => current.with_active(key.clone(), now),
        None => KeySet::new(scope.clone(), key.clone(), now),
    };
    set.set_pending(true);
    let object = Key::PrivateKey(scope.clone());
    let bytes = set.to_bytes();
    let conflict = || KeyError::Conflict {
        scope: scope.to_string(),
    };
    let expected_etag = before.current.as_ref().map(|(_, etag)| etag.clone());
    let written_etag = if stores.private().conditional_writes().await? {
        let mode = match &expected_etag {
            None => PutMode::Create,
            Some(etag) => PutMode::Update(etag.clone()),
        };
        match stores
            .put(&object, Payload::Bytes(bytes.clone()), mode)
            .await
        {
            Ok(meta) => meta.etag,
            Err(StorageError::AlreadyExists { .. } | StorageError::Precondition { .. }) => {
                return Err(conflict());
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        // The generation may have taken seconds: look again right before writing.
        let now_etag = stores.head(&object).await?.map(|m| m.etag);
        if now_etag != expected_etag {
            return Err(conflict());
        }
        stores
            .put(&object, Payload::Bytes(bytes.clone()), PutMode::Overwrite)
            .await?;
        tokio::time::sleep(SETTLE_WITHOUT_CONDITIONAL_WRITES).await;
        match stores.get_bytes_opt(&object).await? {
            Some((stored, meta)) if stored == bytes => meta.etag,
            _ => return Err(conflict()),
        }
    };
    forget_cached(stores);

    // Won: only now may the public halves appear.
    publish_public_keys(stores, &set).await?;
    set.set_pending(false);
    let done = set.to_bytes();
    if stores.private().conditional_writes().await? {
        match stores
            .put(&object, Payload::Bytes(done), PutMode::Update(written_etag))
            .await
        {
            // Replaced meanwhile: the newer set holds this key as retiring and
            // its writer publishes (or its reader heals) the public halves.
            Ok(_) | Err(StorageError::Precondition { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    } else if stores.get_bytes_opt(&object).await?.map(|(b, _)| b) == Some(bytes) {
        stores
            .put(&object, Payload::Bytes(done), PutMode::Overwrite)
            .await?;
    }
    forget_cached(stores);
    Ok(describe(scope, &key, &set))
}

fn describe(scope: &Scope, key: &PrivateKey, set: &KeySet) -> GeneratedKey {
    let public = key.public_key();
    let path = public_key_object(scope, &public.file_name)
        .expect("a key file name we derived is a valid segment")
        .path();
    GeneratedKey {
        key_name: public.file_name,
        public_path: path.strip_prefix(STATIC_PREFIX).unwrap_or(&path).to_owned(),
        public_pem: String::from_utf8_lossy(&public.contents).into_owned(),
        retiring: set.retiring().map(|k| k.key_id().to_owned()).collect(),
    }
}
