//! Tokens with a secret chosen elsewhere: the plaintext org tokens of the
//! service we replace (atlascloud/packages), moved over by `packages import`
//! so that existing CI keeps working with the same secret.
//!
//! Such a secret carries no level (it is not `pkgs_<level>_<random>`), so it
//! is stored like any token, as the SHA-256 of the whole text in the tokens
//! folder of its org, and found through the org the request names in its
//! path ([`Tokens::authenticate_in`]): `/api/<org>/...` (the routes the old
//! clients call) and `/api/v1/orgs/<org>/...`. A given secret is checked
//! before it is stored ([`check_given_secret`]): weak ones are refused with
//! the reason, since anyone able to guess one could publish into the org.

use super::record::{check_name, unix_now};
use super::{HashedToken, Principal, TOKEN_PREFIX, TokenError, TokenInfo, TokenLevel, TokenRecord};
use crate::repo::{Org, Scope};
use crate::storage::{PutMode, StorageError};
use crate::tokens::Tokens;

/// Fewest characters a given secret may have.
pub const MIN_GIVEN_SECRET_LEN: usize = 24;
/// Most characters a given secret may have (the old service read 256 bytes).
pub const MAX_GIVEN_SECRET_LEN: usize = 256;
/// Fewest distinct characters a given secret may have.
const MIN_DISTINCT_CHARS: usize = 10;
/// Smallest estimated strength, in bits (length × log2 of the character
/// classes used: 26 lowercase, 26 uppercase, 10 digits, 32 symbols).
pub const MIN_GIVEN_SECRET_BITS: f64 = 112.0;

/// Why a given secret cannot be a token, or `Ok` when it can: 24 to 256
/// visible ASCII characters (no space: the old service split the header on
/// spaces, so such a token never worked), not one of ours (`pkgs_`), at
/// least 10 distinct characters, no more than half of its neighbours equal
/// or consecutive (`aaaa`, `abcd`, `4321`), and an estimated 112 bits.
pub fn check_given_secret(secret: &str) -> Result<(), String> {
    let len = secret.len();
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "contains a space, a control or a non-ASCII character (a bearer token is visible ASCII)"
                .to_owned(),
        );
    }
    if len < MIN_GIVEN_SECRET_LEN {
        return Err(format!(
            "too short: {len} characters, at least {MIN_GIVEN_SECRET_LEN} are needed"
        ));
    }
    if len > MAX_GIVEN_SECRET_LEN {
        return Err(format!(
            "too long: {len} characters, at most {MAX_GIVEN_SECRET_LEN}"
        ));
    }
    if secret.starts_with(TOKEN_PREFIX) {
        return Err(format!(
            "starts with `{TOKEN_PREFIX}`, the prefix of this service's own tokens"
        ));
    }
    let bytes = secret.as_bytes();
    let mut distinct = bytes.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_DISTINCT_CHARS {
        return Err(format!(
            "weak: only {} distinct characters, at least {MIN_DISTINCT_CHARS} are needed",
            distinct.len()
        ));
    }
    let patterned = bytes
        .windows(2)
        .filter(|w| w[0].abs_diff(w[1]) <= 1)
        .count();
    if patterned * 2 > len - 1 {
        return Err("weak: mostly repeated or consecutive characters".to_owned());
    }
    let has = |is: fn(&u8) -> bool| bytes.iter().any(is);
    let alphabet: f64 = [
        (has(u8::is_ascii_lowercase), 26.0),
        (has(u8::is_ascii_uppercase), 26.0),
        (has(u8::is_ascii_digit), 10.0),
        (has(u8::is_ascii_punctuation), 32.0),
    ]
    .iter()
    .filter(|(used, _)| *used)
    .map(|(_, size)| size)
    .sum();
    let bits = len as f64 * alphabet.log2();
    if bits < MIN_GIVEN_SECRET_BITS {
        return Err(format!(
            "weak: about {bits:.0} bits for its length and characters, at least \
             {MIN_GIVEN_SECRET_BITS:.0} are needed (use more characters, or more kinds)"
        ));
    }
    Ok(())
}

/// The org level of `org`.
fn org_level(org: &Org) -> TokenLevel {
    TokenLevel::Scoped(Scope {
        org: org.clone(),
        distro: None,
        version: None,
        repo: None,
    })
}

impl Tokens {
    /// Stores a read-write token of `org` whose secret is `secret`, chosen
    /// elsewhere (the old service's token files), once [`check_given_secret`]
    /// accepts it ([`TokenError::Invalid`] with the reason otherwise).
    /// Returns its info and whether it was created: a token with this
    /// secret already stored for the org is left as it is (`false`).
    pub async fn store_given(
        &self,
        org: &Org,
        name: &str,
        secret: &str,
    ) -> Result<(TokenInfo, bool), TokenError> {
        check_name(name)?;
        check_given_secret(secret)
            .map_err(|reason| TokenError::Invalid(format!("token refused: {reason}")))?;
        let level = org_level(org);
        if self
            .stores
            .head(&crate::repo::Key::Org(org.clone()))
            .await?
            .is_none()
        {
            return Err(TokenError::OrgNotFound(org.to_string()));
        }
        let hash = HashedToken::of(secret);
        if let Some(existing) = self.fetch(&level, &hash).await? {
            return Ok((existing.into(), false));
        }
        let record = TokenRecord {
            name: name.to_owned(),
            level: level.to_string(),
            read_only: false,
            expires: None,
            created: unix_now(),
            sha256: hash.hex(),
        };
        let key = hash.key(&level);
        let body = serde_json::to_vec(&record).map_err(|e| TokenError::Corrupt {
            key: key.path(),
            message: e.to_string(),
        })?;
        match self.stores.put(&key, body.into(), PutMode::Create).await {
            Ok(_) => {}
            // A concurrent import stored the same secret first: same record.
            Err(StorageError::AlreadyExists { .. }) => {
                if let Some(existing) = self.fetch(&level, &hash).await? {
                    return Ok((existing.into(), false));
                }
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(level = %level, name, id = %&record.sha256[..12], "given token stored");
        Ok((record.into(), true))
    }

    /// [`Tokens::authenticate`], and for a presented text that is not one of
    /// our tokens, a look-up among the given tokens of `org` (the org the
    /// request's path names): one GET, found results cached like others.
    pub async fn authenticate_in(
        &self,
        presented: &str,
        org: Option<&Org>,
    ) -> Result<Principal, TokenError> {
        match (self.authenticate(presented).await, org) {
            (Err(TokenError::Malformed), Some(org)) if presented.len() <= MAX_GIVEN_SECRET_LEN => {
                self.authenticate_given(presented, org).await
            }
            (result, _) => result,
        }
    }

    async fn authenticate_given(
        &self,
        presented: &str,
        org: &Org,
    ) -> Result<Principal, TokenError> {
        let level = org_level(org);
        let hash = HashedToken::of(presented);
        // Only found records are remembered: a miss through one org's path
        // must not hide the token from its own org's.
        let record = match self.cached(&hash).flatten() {
            Some(record) => record,
            None => {
                let record = self
                    .fetch(&level, &hash)
                    .await?
                    .ok_or(TokenError::Unknown)?;
                self.remember(hash, level.clone(), Some(record.clone()));
                record
            }
        };
        // A token of another org, cached through its own org's path.
        if record.level != level.to_string() {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_secrets_are_checked_with_a_reason() {
        for good in [
            "3f9a1c0b7d2e4f6a8b9c0d1e2f3a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c",
            "c9b1f5e2-7a4d-4e8b-9f3c-2d1a0b9c8e7f",
            "Xk9-pQ2_vL7mR4tW8zN3bJ6h",
        ] {
            assert_eq!(check_given_secret(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("short1A!", "too short"),
            ("with space in the middle of it 12345", "space"),
            ("pkgs_abcdefghijklmnopqrstuvwxyz0123", "prefix"),
            ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "distinct"),
            ("abcdefghijklmnopqrstuvwxyz", "consecutive"),
            ("839201746582930174658293017", "bits"),
            ("tökentökentökentökentökentöken", "non-ASCII"),
        ] {
            let reason = check_given_secret(bad).expect_err(bad);
            assert!(reason.contains(why), "{bad}: {reason}");
        }
        assert!(
            check_given_secret(&"Ab1-".repeat(80))
                .unwrap_err()
                .contains("too long")
        );
    }
}
