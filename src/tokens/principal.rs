//! Who is calling, and what that token may do, including which tokens it may
//! create: never one that reaches further, lives longer or writes more than
//! itself.

use super::{TokenError, TokenLevel};

/// Who is calling: an authenticated token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's level.
    pub level: TokenLevel,
    /// The token's name.
    pub name: String,
    /// Whether it may only read.
    pub read_only: bool,
    /// Its expiry, Unix seconds (`None`: never).
    pub expires: Option<u64>,
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

    /// Refuses (with [`TokenError::Forbidden`]) a new token that would reach
    /// beyond this one's level, write where this one may only read, or
    /// outlive it (`expires`: the new token's expiry, Unix seconds).
    pub fn check_mint(
        &self,
        level: &TokenLevel,
        read_only: bool,
        expires: Option<u64>,
    ) -> Result<(), TokenError> {
        if !self.may_manage_tokens(level, true) {
            return Err(TokenError::Forbidden(format!(
                "{} may not create tokens of {level} (admin tokens, or read-write org tokens in their org, may)",
                self.describe()
            )));
        }
        if self.read_only && !read_only {
            return Err(TokenError::Forbidden(format!(
                "{} is read-only: it may create read-only tokens only",
                self.describe()
            )));
        }
        if let Some(own) = self.expires {
            if expires.is_none_or(|new| new > own) {
                return Err(TokenError::Forbidden(format!(
                    "{} expires at {own} (Unix seconds): a token it creates must expire no later (give a shorter `expires_in`)",
                    self.describe()
                )));
            }
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(level: &str, read_only: bool, expires: Option<u64>) -> Principal {
        Principal {
            level: TokenLevel::parse(level).unwrap(),
            name: "t".to_owned(),
            read_only,
            expires,
            id: "0".repeat(64),
        }
    }

    #[test]
    fn minted_tokens_stay_within_their_creator() {
        let level = |text| TokenLevel::parse(text).unwrap();
        let org = principal("acme", false, Some(1000));
        org.check_mint(&level("acme/alpine/edge"), false, Some(1000))
            .unwrap();
        org.check_mint(&level("acme"), true, Some(10)).unwrap();
        for (target, read_only, expires) in [
            ("other", false, Some(10)),
            ("admin", false, Some(10)),
            ("acme", false, None),
            ("acme", false, Some(1001)),
        ] {
            assert!(
                matches!(
                    org.check_mint(&level(target), read_only, expires),
                    Err(TokenError::Forbidden(_))
                ),
                "{target} {read_only} {expires:?}"
            );
        }
        let forever = principal("admin", false, None);
        forever.check_mint(&level("acme"), false, None).unwrap();
        let read_only = principal("admin", true, None);
        assert!(read_only.check_mint(&level("acme"), false, None).is_err());
        assert!(read_only.check_mint(&level("acme"), true, None).is_err());
        let repo = principal("acme/alpine/edge/main", false, None);
        assert!(
            repo.check_mint(&level("acme/alpine/edge/main"), false, Some(1))
                .is_err()
        );
    }
}
