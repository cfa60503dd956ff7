//! [`Tokens`]: token records in the private tree, and the look-up cache.
//!
//! The cache keeps each look-up (found or not) for its time to live. This
//! instance forgets what it revokes, and every token of an org it deletes
//! ([`Tokens::forget_below`]), at once; other instances notice within the
//! time to live. Creating a token never trusts the cache: the creator's
//! record is read again, so a revoked or deleted token cannot mint one.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

use super::record::{check_name, unix_now};
use super::{
    HashedToken, PlainToken, Principal, TokenError, TokenInfo, TokenLevel, TokenRecord, parse,
};
use crate::repo::{Key, Tree};
use crate::storage::PutMode;
use crate::stores::Stores;

/// How many look-ups the cache holds before it drops stale ones.
const CACHE_CAPACITY: usize = 10_000;

struct Cached {
    fetched: Instant,
    level: TokenLevel,
    record: Option<TokenRecord>,
}

/// The tokens of a store, with a short look-up cache.
pub struct Tokens {
    pub(super) stores: Stores,
    ttl: Duration,
    cache: Mutex<HashMap<HashedToken, Cached>>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Tokens in `stores`; look-ups (found or not) are reused for `ttl` (zero: never).
    pub fn new(stores: Stores, ttl: Duration) -> Self {
        Self {
            stores,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Creates a token; the plaintext is returned once and stored nowhere.
    /// No checks on who asks: for the operator's CLI ([`Tokens::create_by`]
    /// for a caller with a token).
    pub async fn create(
        &self,
        level: &TokenLevel,
        name: &str,
        read_only: bool,
        lifetime: Option<Duration>,
    ) -> Result<(PlainToken, TokenInfo), TokenError> {
        let expires = lifetime.map(|d| unix_now().saturating_add(d.as_secs()));
        self.create_record(level, name, read_only, expires).await
    }

    /// Creates a token on behalf of `creator`, which must still exist (read
    /// again, not from the cache) and may only create tokens within its own
    /// level, no more writable and expiring no later than itself
    /// ([`Principal::check_mint`]).
    pub async fn create_by(
        &self,
        creator: &Principal,
        level: &TokenLevel,
        name: &str,
        read_only: bool,
        lifetime: Option<Duration>,
    ) -> Result<(PlainToken, TokenInfo), TokenError> {
        check_name(name)?;
        let hash = HashedToken::from_id(&creator.id)?;
        let fresh = self.fetch(&creator.level, &hash).await?;
        self.remember(hash, creator.level.clone(), fresh.clone());
        let fresh = fresh.ok_or(TokenError::Unknown)?;
        let now = unix_now();
        if fresh.is_expired(now) {
            return Err(TokenError::Expired);
        }
        // The stored record, not the cached principal, bounds the new token.
        let creator = Principal {
            read_only: fresh.read_only,
            expires: fresh.expires,
            ..creator.clone()
        };
        let expires = lifetime.map(|d| now.saturating_add(d.as_secs()));
        creator.check_mint(level, read_only, expires)?;
        if let TokenLevel::Scoped(scope) = &creator.level {
            // The creator's org may have been deleted with its tokens
            // still cached elsewhere; its record is gone then, but be sure.
            if self
                .stores
                .head(&Key::Org(scope.org.clone()))
                .await?
                .is_none()
            {
                return Err(TokenError::Unknown);
            }
        }
        self.create_record(level, name, read_only, expires).await
    }

    async fn create_record(
        &self,
        level: &TokenLevel,
        name: &str,
        read_only: bool,
        expires: Option<u64>,
    ) -> Result<(PlainToken, TokenInfo), TokenError> {
        check_name(name)?;
        if let TokenLevel::Scoped(scope) = level {
            if self
                .stores
                .head(&Key::Org(scope.org.clone()))
                .await?
                .is_none()
            {
                return Err(TokenError::OrgNotFound(scope.org.to_string()));
            }
        }
        let token = PlainToken::generate(level);
        let hash = token.hashed();
        let record = TokenRecord {
            name: name.to_owned(),
            level: level.to_string(),
            read_only,
            expires,
            created: unix_now(),
            sha256: hash.hex(),
        };
        let key = hash.key(level);
        let body = serde_json::to_vec(&record).map_err(|e| TokenError::Corrupt {
            key: key.path(),
            message: e.to_string(),
        })?;
        self.stores.put(&key, body.into(), PutMode::Create).await?;
        tracing::info!(level = %level, name, id = %&record.sha256[..12], "token created");
        Ok((token, record.into()))
    }

    /// The tokens of one level (not those below it).
    pub async fn list(&self, level: &TokenLevel) -> Result<Vec<TokenInfo>, TokenError> {
        let prefix = Key::tokens_prefix(level.scope());
        let mut out = Vec::new();
        for object in self.stores.list(Tree::Private, &prefix).await? {
            // Only `<64 hex>.json` directly in the folder: a version or repo
            // named `tokens` has other objects under the same prefix.
            let Some(id) = object
                .key
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".json"))
            else {
                continue;
            };
            let Ok(hash) = HashedToken::from_id(id) else {
                continue;
            };
            if let Some(record) = self.fetch(level, &hash).await? {
                out.push(record.into());
            }
        }
        out.sort_by(|a: &TokenInfo, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(out)
    }

    /// Revokes the token `id` of `level`.
    pub async fn revoke(&self, level: &TokenLevel, id: &str) -> Result<TokenInfo, TokenError> {
        let hash = HashedToken::from_id(id)?;
        let Some(record) = self.fetch(level, &hash).await? else {
            return Err(TokenError::NotFound {
                id: id.to_owned(),
                level: level.to_string(),
            });
        };
        self.stores.delete(&hash.key(level)).await?;
        self.forget(&hash);
        tracing::info!(level = %level, name = %record.name, id = %&id[..12], "token revoked");
        Ok(record.into())
    }

    /// Revokes a token given in plaintext.
    pub async fn revoke_plain(&self, token: &str) -> Result<TokenInfo, TokenError> {
        let (level, hash) = parse(token)?;
        self.revoke(&level, &hash.hex()).await
    }

    /// Whether any admin token exists.
    pub async fn has_admin(&self) -> Result<bool, TokenError> {
        Ok(!self.list(&TokenLevel::Admin).await?.is_empty())
    }

    /// Checks a presented token: at most one GET when not cached, no listing.
    pub async fn authenticate(&self, presented: &str) -> Result<Principal, TokenError> {
        let (level, hash) = parse(presented)?;
        let record = match self.cached(&hash) {
            Some(record) => record,
            None => {
                let record = self.fetch(&level, &hash).await?;
                self.remember(hash, level.clone(), record.clone());
                record
            }
        };
        let record = record.ok_or(TokenError::Unknown)?;
        // The record is found by this hash, so the compare cannot fail unless
        // objects were moved by hand; it is constant-time all the same.
        let matches: bool = record.sha256.as_bytes().ct_eq(hash.hex().as_bytes()).into();
        if !matches || record.level != level.to_string() {
            return Err(TokenError::Unknown);
        }
        if record.is_expired(unix_now()) {
            return Err(TokenError::Expired);
        }
        Ok(Principal {
            level,
            name: record.name,
            read_only: record.read_only,
            expires: record.expires,
            id: record.sha256,
        })
    }

    /// Forgets the cached look-ups of every token at or below `level` (an
    /// org being deleted takes its tokens with it).
    pub fn forget_below(&self, level: &TokenLevel) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, cached| !level.covers(&cached.level));
    }

    pub(super) async fn fetch(
        &self,
        level: &TokenLevel,
        hash: &HashedToken,
    ) -> Result<Option<TokenRecord>, TokenError> {
        let key = hash.key(level);
        let Some((bytes, _)) = self.stores.get_bytes_opt(&key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| TokenError::Corrupt {
                key: key.path(),
                message: e.to_string(),
            })
    }

    pub(super) fn cached(&self, hash: &HashedToken) -> Option<Option<TokenRecord>> {
        if self.ttl.is_zero() {
            return None;
        }
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(hash)
            .filter(|c| c.fetched.elapsed() < self.ttl)
            .map(|c| c.record.clone())
    }

    pub(super) fn remember(
        &self,
        hash: HashedToken,
        level: TokenLevel,
        record: Option<TokenRecord>,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            let ttl = self.ttl;
            cache.retain(|_, c| c.fetched.elapsed() < ttl);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(
            hash,
            Cached {
                fetched: Instant::now(),
                level,
                record,
            },
        );
    }

    fn forget(&self, hash: &HashedToken) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.remove(hash);
    }
}
