//! API tokens: creation, storage as hashes, look-up with a short cache, and
//! what each token may do.
//!
//! A token is [`TOKEN_PREFIX`], then (for every token below the server-wide
//! admin level) the base64url of its level's path and `_`, then
//! [`RANDOM_CHARS`] random alphanumerics (≥ 256 bits):
//!
//! ```text
//! pkgs_<43 random>                          admin (config/tokens/)
//! pkgs_YWNtZQ_<43 random>                   org `acme` (config/acme/tokens/)
//! pkgs_YWNtZS9hbHBpbmUvZWRnZQ_<43 random>   version `acme/alpine/edge`
//! ```
//!
//! Only the SHA-256 of the whole token is stored, as the name of its record
//! in the tokens folder of its level ([`Key::Token`]). So the level is
//! readable from the token itself, and checking a request costs at most one
//! GET and never a listing. Editing the level part of a token changes its
//! hash, so it cannot be used to reach another level. Revoking is deleting
//! the record; look-ups are cached for a few seconds ([`Tokens::new`]), so a
//! revocation takes effect everywhere within that time.
//!
//! Plaintext tokens live in [`PlainToken`] (a [`SecretString`] whose `Debug`
//! hides it) and are shown once, at creation; no log line carries one.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::repo::{Distro, Key, NameError, Org, Scope, Segment, Tree};
use crate::storage::{PutMode, StorageError};
use crate::stores::Stores;

/// The fixed start of every token, so that secret scanners and people can
/// recognise one.
///
/// DO NOT CHANGE: tokens already handed out start with it, and `parse`
/// refuses anything else.
pub const TOKEN_PREFIX: &str = "pkgs_";

/// Number of random alphanumerics in a token: 43 × log2(62) ≈ 256.03 bits.
pub const RANDOM_CHARS: usize = 43;

/// Longest token accepted (prefix + encoded level + random part).
const MAX_TOKEN_LEN: usize = 1024;

/// Default lifetime of a cached look-up.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);

/// How many look-ups the cache holds before it drops stale ones.
const CACHE_CAPACITY: usize = 10_000;

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The text is not a token of ours.
    #[error("malformed token (expected `{TOKEN_PREFIX}...` as created by `packages token create`)")]
    Malformed,
    /// No record: never created, revoked, or its level was deleted.
    #[error("unknown or revoked token")]
    Unknown,
    /// The token's expiry has passed.
    #[error("token expired")]
    Expired,
    /// No token with this id at this level.
    #[error("no token `{id}` at level {level}")]
    NotFound {
        /// The id asked for.
        id: String,
        /// The level searched.
        level: String,
    },
    /// The org of the level does not exist.
    #[error("organization `{0}` does not exist")]
    OrgNotFound(String),
    /// A value given is invalid (name, expiry, id).
    #[error("{0}")]
    Invalid(String),
    /// A level name is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A stored record is unreadable.
    #[error("corrupt token record `{key}`: {message}")]
    Corrupt {
        /// The object key.
        key: String,
        /// What failed.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl TokenError {
    /// Whether the caller is at fault (HTTP 4xx) rather than the server.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, TokenError::Corrupt { .. } | TokenError::Storage(_))
    }
}

/// The level a token belongs to, which is also what it may act on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TokenLevel {
    /// Server-wide: everything, including creating organizations.
    Admin,
    /// An org, or a distro, version or repo of it, and everything below.
    Scoped(Scope),
}

impl TokenLevel {
    /// The name used for the admin level in records and output (a reserved org name).
    pub const ADMIN: &'static str = "admin";

    /// The scope, unless admin.
    pub fn scope(&self) -> Option<&Scope> {
        match self {
            TokenLevel::Admin => None,
            TokenLevel::Scoped(scope) => Some(scope),
        }
    }

    /// A level from optional parts (all `None`: admin).
    pub fn from_parts(
        org: Option<&str>,
        distro: Option<&str>,
        version: Option<&str>,
        repo: Option<&str>,
    ) -> Result<Self, TokenError> {
        let Some(org) = org else {
            if distro.is_some() || version.is_some() || repo.is_some() {
                return Err(TokenError::Invalid(
                    "a distro, version or repo needs an org".to_owned(),
                ));
            }
            return Ok(TokenLevel::Admin);
        };
        Ok(TokenLevel::Scoped(Scope::new(
            Org::parse(org)?,
            distro.map(Distro::parse).transpose()?,
            version.map(|v| Segment::parse("version", v)).transpose()?,
            repo.map(|r| Segment::parse("repo", r)).transpose()?,
        )?))
    }

    /// Parses `admin` or a scope path `org[/distro[/version[/repo]]]`.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        if text == Self::ADMIN {
            return Ok(TokenLevel::Admin);
        }
        let parts: Vec<&str> = text.split('/').collect();
        if parts.len() > 4 {
            return Err(TokenError::Invalid(format!(
                "level `{}` has more than 4 parts",
                text.escape_debug()
            )));
        }
        let part = |i: usize| parts.get(i).copied();
        Self::from_parts(part(0), part(1), part(2), part(3))
    }

    /// Whether this level is `target` or above it (so a token of this level may write there).
    pub fn covers(&self, target: &TokenLevel) -> bool {
        match (self, target) {
            (TokenLevel::Admin, _) => true,
            (TokenLevel::Scoped(_), TokenLevel::Admin) => false,
            (TokenLevel::Scoped(own), TokenLevel::Scoped(target)) => {
                target.ancestry().contains(own)
            }
        }
    }

    /// Whether one level lies on the other's path (above or below it).
    pub fn is_related(&self, other: &TokenLevel) -> bool {
        self.covers(other) || other.covers(self)
    }

    /// Whether this is the admin or an org level (the levels that manage tokens).
    pub fn is_org_or_admin(&self) -> bool {
        match self {
            TokenLevel::Admin => true,
            TokenLevel::Scoped(scope) => scope.distro.is_none(),
        }
    }
}

impl fmt::Display for TokenLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenLevel::Admin => f.write_str(Self::ADMIN),
            TokenLevel::Scoped(scope) => scope.fmt(f),
        }
    }
}

/// A token in plaintext: shown once, at creation, never stored or logged.
pub struct PlainToken(SecretString);

impl fmt::Debug for PlainToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainToken(<redacted>)")
    }
}

impl PlainToken {
    /// A new random token for `level`.
    pub fn generate(level: &TokenLevel) -> Self {
        use rand::Rng;
        let random: String = rand::rngs::OsRng
            .sample_iter(rand::distributions::Alphanumeric)
            .take(RANDOM_CHARS)
            .map(char::from)
            .collect();
        let text = match level {
            TokenLevel::Admin => format!("{TOKEN_PREFIX}{random}"),
            TokenLevel::Scoped(scope) => format!(
                "{TOKEN_PREFIX}{}_{random}",
                URL_SAFE_NO_PAD.encode(scope.to_string())
            ),
        };
        PlainToken(SecretString::from(text))
    }

    /// The token text, to show the user once.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Its hash.
    pub fn hashed(&self) -> HashedToken {
        HashedToken::of(self.expose())
    }
}

/// The SHA-256 of a token: what is stored, and the token's id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashedToken([u8; 32]);

impl fmt::Debug for HashedToken {
    // Not secret (the token has 256 random bits), but short is enough for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HashedToken({}…)", &self.hex()[..12])
    }
}

impl HashedToken {
    /// Hashes a token text.
    pub fn of(token: &str) -> Self {
        HashedToken(Sha256::digest(token.as_bytes()).into())
    }

    /// Parses a token id (64 lowercase hex digits).
    pub fn from_id(id: &str) -> Result<Self, TokenError> {
        let invalid = || TokenError::Invalid(format!("invalid token id `{}`", id.escape_debug()));
        if id.len() != 64 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid());
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(id, &mut bytes).map_err(|_| invalid())?;
        Ok(HashedToken(bytes))
    }

    /// Lowercase hex: the token's id and the name of its record.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    fn key(&self, level: &TokenLevel) -> Key {
        Key::Token {
            level: level.scope().cloned(),
            hash: Segment::parse("token id", &self.hex())
                .expect("64 hex digits are a valid segment"),
        }
    }
}

/// Splits a presented token into its level and hash, without any I/O.
pub fn parse(presented: &str) -> Result<(TokenLevel, HashedToken), TokenError> {
    if presented.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let rest = presented
        .strip_prefix(TOKEN_PREFIX)
        .ok_or(TokenError::Malformed)?;
    // The random part has no `_`; the encoded level may.
    let (level, random) = match rest.rsplit_once('_') {
        None => (TokenLevel::Admin, rest),
        Some((encoded, random)) => {
            let path = URL_SAFE_NO_PAD
                .decode(encoded)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or(TokenError::Malformed)?;
            match TokenLevel::parse(&path) {
                Ok(level @ TokenLevel::Scoped(_)) => (level, random),
                _ => return Err(TokenError::Malformed),
            }
        }
    };
    if random.len() != RANDOM_CHARS || !random.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(TokenError::Malformed);
    }
    Ok((level, HashedToken::of(presented)))
}

/// A token's stored record (named by its hash; the plaintext is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// A name for people (`ci-main`, `alice laptop`).
    pub name: String,
    /// The level: `admin` or `org[/distro[/version[/repo]]]`.
    pub level: String,
    /// Whether the token may only read.
    pub read_only: bool,
    /// Expiry, Unix seconds.
    pub expires: Option<u64>,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// Lowercase hex SHA-256 of the token.
    pub sha256: String,
}

/// A token as listed: its record, with the hash as id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// The id: lowercase hex SHA-256 of the token (what `token revoke` takes).
    pub id: String,
    /// The token's name.
    pub name: String,
    /// The level: `admin` or `org[/distro[/version[/repo]]]`.
    pub level: String,
    /// Whether the token may only read.
    pub read_only: bool,
    /// Expiry, Unix seconds.
    pub expires: Option<u64>,
    /// Creation time, Unix seconds.
    pub created: u64,
}

impl From<TokenRecord> for TokenInfo {
    fn from(record: TokenRecord) -> Self {
        TokenInfo {
            id: record.sha256,
            name: record.name,
            level: record.level,
            read_only: record.read_only,
            expires: record.expires,
            created: record.created,
        }
    }
}

/// Who is calling: an authenticated token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's level.
    pub level: TokenLevel,
    /// The token's name.
    pub name: String,
    /// Whether it may only read.
    pub read_only: bool,
    /// Its id (the hash), for logs.
    pub id: String,
}

impl Principal {
    /// Whether it may read `target` (anything on its own path).
    pub fn may_read(&self, target: &TokenLevel) -> bool {
        self.level.is_related(target)
    }

    /// Whether it may change `target` (its own level and below, if read-write).
    pub fn may_write(&self, target: &TokenLevel) -> bool {
        !self.read_only && self.level.covers(target)
    }

    /// Whether it may list (`write: false`) or create and revoke tokens of `target`:
    /// admin tokens anywhere, org tokens in their org.
    pub fn may_manage_tokens(&self, target: &TokenLevel, write: bool) -> bool {
        self.level.is_org_or_admin() && self.level.covers(target) && (!write || !self.read_only)
    }

    /// A short description for messages and logs (never the token).
    pub fn describe(&self) -> String {
        format!(
            "token `{}` ({}{})",
            self.name,
            self.level,
            if self.read_only { ", read-only" } else { "" }
        )
    }
}

/// Parses a lifetime such as `90d`, `12h`, `30m`, `2w`, `3600s` or `3600`.
pub fn parse_duration(text: &str) -> Result<Duration, TokenError> {
    let invalid = || {
        TokenError::Invalid(format!(
            "invalid duration `{}` (use e.g. `90d`, `12h`, `30m`, `2w`)",
            text.escape_debug()
        ))
    };
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(invalid()),
    };
    let total = number.checked_mul(seconds).ok_or_else(invalid)?;
    if total == 0 {
        return Err(invalid());
    }
    Ok(Duration::from_secs(total))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn check_name(name: &str) -> Result<(), TokenError> {
    if name.trim().is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(TokenError::Invalid(format!(
            "invalid token name `{}`: 1 to 64 characters, no control characters",
            name.escape_debug()
        )));
    }
    Ok(())
}

struct Cached {
    fetched: Instant,
    record: Option<TokenRecord>,
}

/// The tokens of a store, with a short look-up cache.
pub struct Tokens {
    stores: Stores,
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
    pub async fn create(
        &self,
        level: &TokenLevel,
        name: &str,
        read_only: bool,
        lifetime: Option<Duration>,
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
        let created = unix_now();
        let token = PlainToken::generate(level);
        let hash = token.hashed();
        let record = TokenRecord {
            name: name.to_owned(),
            level: level.to_string(),
            read_only,
            expires: lifetime.map(|d| created.saturating_add(d.as_secs())),
            created,
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
                self.remember(hash, record.clone());
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
        if record.expires.is_some_and(|at| at <= unix_now()) {
            return Err(TokenError::Expired);
        }
        Ok(Principal {
            level,
            name: record.name,
            read_only: record.read_only,
            id: record.sha256,
        })
    }

    async fn fetch(
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

    fn cached(&self, hash: &HashedToken) -> Option<Option<TokenRecord>> {
        if self.ttl.is_zero() {
            return None;
        }
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(hash)
            .filter(|c| c.fetched.elapsed() < self.ttl)
            .map(|c| c.record.clone())
    }

    fn remember(&self, hash: HashedToken, record: Option<TokenRecord>) {
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
                record,
            },
        );
    }

    fn forget(&self, hash: &HashedToken) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.remove(hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(text: &str) -> TokenLevel {
        TokenLevel::parse(text).unwrap()
    }

    #[test]
    fn tokens_carry_their_level() {
        for text in [
            "admin",
            "acme",
            "acme/alpine",
            "acme/alpine/edge",
            "acme/alpine/edge/main",
        ] {
            let level = level(text);
            let token = PlainToken::generate(&level);
            assert!(token.expose().starts_with(TOKEN_PREFIX));
            let (parsed, hash) = parse(token.expose()).unwrap();
            assert_eq!(parsed, level);
            assert_eq!(hash, token.hashed());
            assert_eq!(format!("{token:?}"), "PlainToken(<redacted>)");
        }
        let admin = PlainToken::generate(&TokenLevel::Admin);
        assert_eq!(admin.expose().len(), TOKEN_PREFIX.len() + RANDOM_CHARS);
    }

    #[test]
    fn refuses_malformed_tokens() {
        let good = PlainToken::generate(&level("acme/alpine"));
        let random = &good.expose()[good.expose().len() - RANDOM_CHARS..];
        for bad in [
            String::new(),
            "pkgs_".to_owned(),
            "Bearer x".to_owned(),
            format!("ghp_{random}"),
            format!("pkgs_{}", &random[1..]),
            format!("pkgs_{random}x"),
            format!("pkgs_!!!_{random}"),
            // Levels that are not scopes: admin spelled out, reserved or invalid orgs.
            format!("pkgs_{}_{random}", URL_SAFE_NO_PAD.encode("admin")),
            format!("pkgs_{}_{random}", URL_SAFE_NO_PAD.encode("config")),
            format!("pkgs_{}_{random}", URL_SAFE_NO_PAD.encode("acme/../x")),
            format!(
                "pkgs_{}_{random}",
                URL_SAFE_NO_PAD.encode("acme/alpine/a/b/c")
            ),
            "x".repeat(5000),
        ] {
            assert!(matches!(parse(&bad), Err(TokenError::Malformed)), "{bad}");
        }
    }

    #[test]
    fn levels_cover_what_is_below() {
        let admin = TokenLevel::Admin;
        let org = level("acme");
        let distro = level("acme/alpine");
        let version = level("acme/alpine/edge");
        let repo = level("acme/alpine/edge/main");
        let other_repo = level("acme/alpine/edge/testing");
        let other_org = level("other");
        assert!(admin.covers(&admin) && admin.covers(&repo));
        assert!(!org.covers(&admin));
        assert!(org.covers(&org) && org.covers(&repo));
        assert!(distro.covers(&version) && !distro.covers(&org));
        assert!(version.covers(&repo) && !version.covers(&distro));
        assert!(!repo.covers(&other_repo) && !repo.covers(&version));
        assert!(!other_org.covers(&repo) && !org.covers(&other_org));
        assert!(repo.is_related(&org) && !repo.is_related(&other_repo));
        assert!(org.is_org_or_admin() && !distro.is_org_or_admin());
    }

    #[test]
    fn parses_durations() {
        assert_eq!(
            parse_duration("90d").unwrap(),
            Duration::from_secs(90 * 86_400)
        );
        assert_eq!(
            parse_duration("12h").unwrap(),
            Duration::from_secs(12 * 3600)
        );
        assert_eq!(
            parse_duration("2w").unwrap(),
            Duration::from_secs(14 * 86_400)
        );
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        for bad in ["", "d", "0d", "1y", "-1d", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hashed_ids_round_trip() {
        let token = PlainToken::generate(&TokenLevel::Admin);
        let hash = token.hashed();
        assert_eq!(HashedToken::from_id(&hash.hex()).unwrap(), hash);
        assert!(HashedToken::from_id("ABC").is_err());
        assert!(HashedToken::from_id(&hash.hex().to_uppercase()).is_err());
        assert!(!format!("{hash:?}").contains(&hash.hex()));
    }
}
