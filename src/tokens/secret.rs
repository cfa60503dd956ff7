//! Token texts: generating them, reading their level, and hashing them.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::{RANDOM_CHARS, TOKEN_PREFIX, TokenError, TokenLevel};
use crate::repo::{Key, Segment};

/// Longest token accepted (prefix + encoded level + random part).
const MAX_TOKEN_LEN: usize = 1024;

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

    /// The key of its record at `level`.
    pub(super) fn key(&self, level: &TokenLevel) -> Key {
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
    fn hashed_ids_round_trip() {
        let token = PlainToken::generate(&TokenLevel::Admin);
        let hash = token.hashed();
        assert_eq!(HashedToken::from_id(&hash.hex()).unwrap(), hash);
        assert!(HashedToken::from_id("ABC").is_err());
        assert!(HashedToken::from_id(&hash.hex().to_uppercase()).is_err());
        assert!(!format!("{hash:?}").contains(&hash.hex()));
    }
}
