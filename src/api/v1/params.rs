//! Path and query parameters of the v1 routes, parsed into [`crate::repo`] names.

use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::error::ApiError;
use crate::api::parse_org;
use crate::repo::{Arch, Distro, Org, RepoId, Segment};
use crate::tokens::TokenLevel;

/// An organization in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgPath {
    /// Organization.
    pub org: String,
}

/// A distro of an organization in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DistroPath {
    /// Organization.
    pub org: String,
    /// Distro (`alpine`).
    pub distro: String,
}

/// A distro version in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VersionPath {
    /// Organization.
    pub org: String,
    /// Distro (`alpine`).
    pub distro: String,
    /// Distro version (`edge`, `v3.20`).
    pub version: String,
}

/// A repository in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RepoPath {
    /// Organization.
    pub org: String,
    /// Distro (`alpine`).
    pub distro: String,
    /// Distro version (`edge`, `v3.20`).
    pub version: String,
    /// Repository (`main`).
    pub repo: String,
}

/// One architecture of a repository in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ArchPath {
    /// Organization.
    pub org: String,
    /// Distro (`alpine`).
    pub distro: String,
    /// Distro version (`edge`, `v3.20`).
    pub version: String,
    /// Repository (`main`).
    pub repo: String,
    /// Architecture (`x86_64`).
    pub arch: String,
}

/// A package of a repository in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PackagePath {
    /// Organization.
    pub org: String,
    /// Distro (`alpine`).
    pub distro: String,
    /// Distro version (`edge`, `v3.20`).
    pub version: String,
    /// Repository (`main`).
    pub repo: String,
    /// A package name (every version) or file name (`<name>-<version>.apk`).
    pub package: String,
}

/// A token id in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TokenPath {
    /// The token's id (hex SHA-256, as listed).
    pub id: String,
}

impl DistroPath {
    pub(crate) fn parse(&self) -> Result<(Org, Distro), ApiError> {
        Ok((parse_org(&self.org)?, Distro::parse(&self.distro)?))
    }
}

impl VersionPath {
    pub(crate) fn parse(&self) -> Result<(Org, Distro, Segment), ApiError> {
        Ok((
            parse_org(&self.org)?,
            Distro::parse(&self.distro)?,
            Segment::parse("version", &self.version)?,
        ))
    }
}

impl RepoPath {
    /// The repository named.
    pub fn repo_id(&self) -> Result<RepoId, ApiError> {
        Ok(RepoId::parse(
            &self.org,
            &self.distro,
            &self.version,
            &self.repo,
        )?)
    }
}

impl ArchPath {
    /// The repository and arch named.
    pub fn parse(&self) -> Result<(RepoId, Arch), ApiError> {
        Ok((
            RepoId::parse(&self.org, &self.distro, &self.version, &self.repo)?,
            Arch::parse(&self.arch)?,
        ))
    }
}

/// Options of an organization's deletion.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteOrgQuery {
    /// Delete it with everything in it (refused otherwise when it has packages).
    #[serde(default)]
    pub force: bool,
}

/// Filters of a package listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this architecture.
    pub arch: Option<String>,
    /// Only packages of this name.
    pub name: Option<String>,
}

/// Options of an upload.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// Create the repository (and its version) when it does not exist;
    /// without it, an upload to an unknown repository is refused (404) with
    /// the closest existing name.
    #[serde(default)]
    pub create: bool,
}

/// Which arch a removal applies to.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArchQuery {
    /// Only this architecture (default: every arch of the repo).
    pub arch: Option<String>,
}

/// Options of an index regeneration.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReindexQuery {
    /// Recompute the records from the `.apk` files first (disaster recovery; slow).
    #[serde(default)]
    pub rebuild: bool,
}

/// A level of tokens in a query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LevelQuery {
    /// Organization (none: the admin level).
    pub org: Option<String>,
    /// Distro.
    pub distro: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// Repo.
    pub repo: Option<String>,
}

impl LevelQuery {
    pub(crate) fn level(&self) -> Result<TokenLevel, ApiError> {
        Ok(TokenLevel::from_parts(
            self.org.as_deref(),
            self.distro.as_deref(),
            self.version.as_deref(),
            self.repo.as_deref(),
        )?)
    }
}
