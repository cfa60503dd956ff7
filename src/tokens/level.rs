//! The level a token belongs to, and which levels cover which.

use std::fmt;

use crate::repo::{Distro, Org, Scope, Segment};

use super::TokenError;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn level(text: &str) -> TokenLevel {
        TokenLevel::parse(text).unwrap()
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
}
