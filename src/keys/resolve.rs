//! Which key set signs a repository, read with few requests and cached briefly.
//!
//! The most specific scope with a set wins: repo, then version, then distro
//! ([`Scope::ancestry`]). The three candidate objects are read concurrently:
//! the common case (one distro key) needs all three answers anyway, so this
//! costs the same three GETs as reading them in turn, in one round trip.
//!
//! # Cache
//!
//! [`key_set_for`] keeps what it resolved per process for
//! [`KEY_SET_CACHE_TTL`], keyed by the private store and the repository, so a
//! busy publisher reads keys once per TTL instead of once per publish. This
//! process's own [`generate`](super::generate) / [`import`](super::import)
//! empty the store's entries at once. A key change made by *another* process
//! is seen here within the TTL; until then this process signs with the key it
//! had, which is harmless for a rotation (the replaced key stays published as
//! retiring, so clients still trust it) and, for a new key at a narrower scope
//! (which needs `replace`), means both keys sign for at most the TTL.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use super::{KeyError, KeySet};
use crate::repo::{Key, RepoId, Scope, Segment};
use crate::signing::Signer;
use crate::storage::PutMode;
use crate::stores::Stores;

/// How long [`key_set_for`] trusts a key set it read, per process.
pub const KEY_SET_CACHE_TTL: Duration = Duration::from_secs(10);

type CacheKey = (String, Scope);

/// When each key set was read, by store and repository.
type Cache = HashMap<CacheKey, (Instant, Arc<KeySet>)>;

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(|| Mutex::new(HashMap::new()));

fn cache_key(stores: &Stores, scope: &Scope) -> CacheKey {
    (stores.private().describe().to_owned(), scope.clone())
}

/// The key set that signs `repo`, from this process's cache when it is younger
/// than [`KEY_SET_CACHE_TTL`] (see the module doc), else read from the store.
///
/// Call it once per publish round and sign everything of the round with it.
pub async fn key_set_for(stores: &Stores, repo: &RepoId) -> Result<Arc<KeySet>, KeyError> {
    key_set_for_scope(stores, &repo.scope()).await
}

/// [`key_set_for`] for any scope with a distro (a Debian suite signs at its
/// version's scope).
pub async fn key_set_for_scope(stores: &Stores, scope: &Scope) -> Result<Arc<KeySet>, KeyError> {
    let key = cache_key(stores, scope);
    {
        let cache = CACHE.lock().expect("key cache lock");
        if let Some((at, set)) = cache.get(&key) {
            if at.elapsed() < KEY_SET_CACHE_TTL {
                return Ok(set.clone());
            }
        }
    }
    let set = Arc::new(load_key_set_for_scope(stores, scope).await?);
    let mut cache = CACHE.lock().expect("key cache lock");
    cache.retain(|_, (at, _)| at.elapsed() < KEY_SET_CACHE_TTL);
    cache.insert(key, (Instant::now(), set.clone()));
    Ok(set)
}

/// The key set that signs `repo`, read from the store now (no cache).
///
/// A set still marked as awaiting publication (its writer stopped between
/// storing it and publishing its public keys) has its public keys published
/// here first: no index is ever signed by a key clients cannot fetch.
pub async fn load_key_set(stores: &Stores, repo: &RepoId) -> Result<KeySet, KeyError> {
    load_key_set_for_scope(stores, &repo.scope()).await
}

/// [`load_key_set`] for any scope with a distro.
pub async fn load_key_set_for_scope(stores: &Stores, scope: &Scope) -> Result<KeySet, KeyError> {
    let scopes: Vec<Scope> = scope
        .ancestry()
        .into_iter()
        .filter(|s| s.distro.is_some())
        .collect();
    let reads = scopes.iter().map(|scope| read_set(stores, scope));
    let found = futures::future::try_join_all(reads).await?;
    let Some((set, _)) = found.into_iter().flatten().next() else {
        return Err(KeyError::Missing {
            repo: scope.to_string(),
            org: scope.org.to_string(),
            distro: scope.distro.map_or_else(String::new, |d| d.to_string()),
        });
    };
    if set.is_pending() {
        publish_public_keys(stores, &set).await?;
    }
    Ok(set)
}

/// The stored set of exactly `scope`, with its ETag, or `None`.
pub async fn read_set(
    stores: &Stores,
    scope: &Scope,
) -> Result<Option<(KeySet, String)>, KeyError> {
    let Some((bytes, meta)) = stores
        .get_bytes_opt(&Key::PrivateKey(scope.clone()))
        .await?
    else {
        return Ok(None);
    };
    Ok(Some((KeySet::from_bytes(scope, &bytes)?, meta.etag)))
}

/// Publishes every public file of every key of `set` (RSA: the `.rsa.pub`;
/// OpenPGP: `<org>-<16 hex>.asc` and `.gpg`). Idempotent: the object name is
/// derived from the key, so a rewrite stores the same bytes.
pub async fn publish_public_keys(stores: &Stores, set: &KeySet) -> Result<(), KeyError> {
    for k in set.keys() {
        for public in k.key.public_key_files() {
            stores
                .put(
                    &public_key_object(set.scope(), &public.file_name)?,
                    public.contents.into(),
                    PutMode::Overwrite,
                )
                .await?;
        }
    }
    Ok(())
}

/// The public-tree object a public key file of `scope` is published as.
pub fn public_key_object(scope: &Scope, file_name: &str) -> Result<Key, KeyError> {
    let name = Segment::parse("key file name", file_name).map_err(|e| KeyError::Signing {
        key: Key::PrivateKey(scope.clone()).path(),
        reason: crate::signing::SigningError::InvalidKey(e.to_string()),
    })?;
    Ok(Key::PublicKey {
        scope: scope.clone(),
        name,
    })
}

/// Drops this process's cached key sets of the store behind `stores`.
pub fn forget_cached(stores: &Stores) {
    let store = stores.private().describe();
    CACHE
        .lock()
        .expect("key cache lock")
        .retain(|(s, _), _| s != store);
}
