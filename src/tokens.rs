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
//! in the tokens folder of its level ([`crate::repo::Key::Token`]). So the level is
//! readable from the token itself, and checking a request costs at most one
//! GET and never a listing. Editing the level part of a token changes its
//! hash, so it cannot be used to reach another level. Revoking is deleting
//! the record; look-ups are cached for a few seconds ([`Tokens::new`]), so a
//! revocation takes effect at once on the instance that made it and
//! everywhere else within that time. A token creates tokens only within its
//! own level, never writable when it is read-only and never outliving it,
//! checked against its stored record, never the cache ([`Tokens::create_by`]).
//!
//! Plaintext tokens live in [`PlainToken`] (a [`secrecy::SecretString`] whose `Debug`
//! hides it) and are shown once, at creation; no log line carries one.
//!
//! The module is split by what each part does: [`level`] (which levels cover
//! which), [`secret`] (token texts and hashes), [`record`] (what is stored),
//! [`principal`] (what a caller may do, and which tokens it may create), and
//! [`store`] (records in the store, and the look-up cache).

mod given;
mod level;
mod principal;
mod record;
mod secret;
mod store;

use std::time::Duration;

use crate::repo::NameError;
use crate::storage::StorageError;

pub use given::{
    MAX_GIVEN_SECRET_LEN, MIN_GIVEN_SECRET_BITS, MIN_GIVEN_SECRET_LEN, check_given_secret,
};
pub use level::TokenLevel;
pub use principal::Principal;
pub use record::{TokenInfo, TokenRecord, parse_duration};
pub use secret::{HashedToken, PlainToken, parse};
pub use store::Tokens;

/// The fixed start of every token, so that secret scanners and people can
/// recognise one.
///
/// DO NOT CHANGE: tokens already handed out start with it, and `parse`
/// refuses anything else.
pub const TOKEN_PREFIX: &str = "pkgs_";

/// Number of random alphanumerics in a token: 43 × log2(62) ≈ 256.03 bits.
pub const RANDOM_CHARS: usize = 43;

/// Default lifetime of a cached look-up.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);

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
    /// The caller's token may not do this (reach, rights or lifetime).
    #[error("{0}")]
    Forbidden(String),
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
