//! What is stored for a token, what is shown of it, and the values a
//! creator gives (name, lifetime).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::TokenError;

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

impl TokenRecord {
    /// Whether the token has expired at `now` (Unix seconds).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }
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

/// Now, in Unix seconds.
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Checks a token name: 1 to 64 characters, no control characters.
pub(super) fn check_name(name: &str) -> Result<(), TokenError> {
    if name.trim().is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(TokenError::Invalid(format!(
            "invalid token name `{}`: 1 to 64 characters, no control characters",
            name.escape_debug()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
