//! Where signing keys live in the store, which set signs a repository, and
//! how keys are changed safely.
//!
//! Each scope (a distro, version or repo of an org) may hold a [`KeySet`]: an
//! active key and the retiring keys of past rotations, in one private object
//! ([`set`] has the layout; a store from before key sets, holding one bare PEM,
//! reads as a one-key set). Every key of a set is published in the public tree
//! under its file names (apk: `<org>-<8 hex>.rsa.pub`; OpenPGP:
//! `<org>-<16 hex>.asc` and the binary `.gpg`) at the scope's level.
//! The most specific scope with a set signs ([`key_set_for`], cached briefly
//! per process).
//!
//! Changing keys ([`generate`], [`import`], and their `_with` forms taking
//! [`ChangeOptions`]) needs org authority ([`authority`]), is atomic (of
//! racing changes one wins; no public key is published for the others) and
//! says when it would change the key of existing repositories (`replace` in
//! [`ChangeOptions`]).

mod change;
mod resolve;
pub mod set;

pub use change::{
    ChangeOptions, DEFAULT_KEY_BITS, DEFAULT_PGP_KEY_BITS, KeyPolicy, MAX_CONCURRENT_GENERATIONS,
    SETTLE_WITHOUT_CONDITIONAL_WRITES, authority, generate, generate_with, generations_running,
    import, import_keeping_name, import_with,
};
pub use resolve::{
    KEY_SET_CACHE_TTL, forget_cached, key_set_for, key_set_for_scope, load_key_set,
    load_key_set_for_scope, publish_public_keys, read_set,
};
pub use set::{KeySet, KeyState, SetKey};

use crate::repo::RepoId;
use crate::signing::{SigningError, SigningKey};
use crate::storage::StorageError;
use crate::stores::Stores;

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored or new key is unusable.
    #[error("signing key at `{key}`: {reason}")]
    Signing {
        /// The object key.
        key: String,
        /// Why.
        reason: SigningError,
    },
    /// No key covers the repository.
    #[error("no signing key for {repo}: run `packages key generate --org {org} --distro {distro}`")]
    Missing {
        /// The repository or suite, as shown.
        repo: String,
        /// Its org, for the hint.
        org: String,
        /// Its distro, for the hint.
        distro: String,
    },
    /// The scope already has a key, and `replace` was not given.
    #[error(
        "a signing key already exists for {scope} (`{active}`); a new key would sign its \
         repositories instead: pass `replace` (`--replace`) to make the new key active \
         (`{active}` stays published as retiring)"
    )]
    Exists {
        /// The scope.
        scope: String,
        /// Its active key.
        active: String,
    },
    /// A wider scope's key signs the scope today, and `replace` was not given.
    #[error(
        "repositories of {scope} are signed by `{active}` of {signer_scope}; a key for {scope} \
         would sign them instead: pass `replace` (`--replace`) to do that"
    )]
    WouldChangeSigner {
        /// The scope asked for.
        scope: String,
        /// The scope whose key signs it now.
        signer_scope: String,
        /// That key.
        active: String,
    },
    /// Another key change for the scope won a race with this one.
    #[error(
        "another signing-key change for {scope} happened at the same time and won; \
         nothing was changed by this one (look at the keys, then retry if still needed)"
    )]
    Conflict {
        /// The scope.
        scope: String,
    },
    /// The key size is outside the allowed range.
    #[error("{bits}-bit RSA keys are not allowed: use {min} to {max} bits")]
    Bits {
        /// Asked for.
        bits: usize,
        /// Smallest allowed.
        min: usize,
        /// Largest allowed.
        max: usize,
    },
    /// Keys need at least a distro.
    #[error("a signing key belongs to a distro: give `--distro`")]
    NeedsDistro,
}

/// A key that was made active, with where its public half is served.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GeneratedKey {
    /// The key's file name (apk: what goes into `/etc/apk/keys/`; OpenPGP:
    /// `<org>-<16 hex>.asc`, published beside the binary `.gpg`).
    pub key_name: String,
    /// The public key's path under the public tree (`<org>/alpine/...`).
    pub public_path: String,
    /// The public key, PEM (OpenPGP: armored).
    pub public_pem: String,
    /// The scope's retiring keys, still published.
    pub retiring: Vec<String>,
}

/// The RSA key that signs `repo` (the active key of [`key_set_for`]).
///
/// Kept for callers from before key sets; new code takes the set once per
/// publish round and signs through [`crate::signing::Signer`].
pub async fn signing_key_for(stores: &Stores, repo: &RepoId) -> Result<SigningKey, KeyError> {
    let set = key_set_for(stores, repo).await?;
    set.signing_key().cloned().ok_or_else(|| KeyError::Signing {
        key: crate::repo::Key::PrivateKey(set.scope().clone()).path(),
        reason: SigningError::InvalidKey("the key set has no active RSA key".to_owned()),
    })
}
