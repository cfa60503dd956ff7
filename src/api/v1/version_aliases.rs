//! `/api/v1/orgs/{org}/distros/{distro}/aliases`: version aliases of every
//! distro family (`3.20 -> v3.20`, `latest -> 41`, `stable -> bookworm`).
//! Debian-style distros get suite aliases (their own signed `InRelease`),
//! Alpine and RPM distros copies of the target version's repositories
//! (`docs/aliases.md`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::params::DistroPath;
use crate::api::auth::Auth;
use crate::api::error::responses::{
    BadJsonFields, BadRequest, Busy, Forbidden, Internal, NotJson, TooLarge, Unauthorized,
};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::{ApiState, JsonBody};
use crate::repo::{Distro, Org, Scope, Segment};
use crate::tokens::TokenLevel;

/// One alias in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AliasPath {
    /// Organization.
    pub org: String,
    /// Distro.
    pub distro: String,
    /// The alias (`latest`, `stable`, `24.04`).
    pub alias: String,
}

impl AliasPath {
    /// The org, distro and alias, validated.
    fn parse(&self) -> Result<(Org, Distro, Segment), ApiError> {
        let (org, distro) = DistroPath {
            org: self.org.clone(),
            distro: self.distro.clone(),
        }
        .parse()?;
        let alias = Segment::parse("version", &self.alias)?;
        Ok((org, distro, alias))
    }
}

/// Where an alias points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VersionAliasTarget {
    /// The version (Debian-style distros: the suite) it points to; `suite`
    /// is accepted too.
    #[serde(alias = "suite")]
    pub version: String,
    /// In an answer to `PUT`: the version the alias pointed to before, if it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

/// The level of token that changes a distro's aliases.
fn distro_level(org: &Org, distro: Distro) -> Result<TokenLevel, ApiError> {
    Ok(TokenLevel::Scoped(Scope::new(
        org.clone(),
        Some(distro),
        None,
        None,
    )?))
}

/// List a distro's aliases (alias → version).
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/distros/{distro}/aliases",
    tag = "aliases",
    params(DistroPath),
    responses(
        (status = 200, description = "Alias → version", body = BTreeMap<String, String>),
        (status = 404, description = "No such organization", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn list_aliases(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<DistroPath>,
) -> Result<Json<BTreeMap<String, String>>, ApiError> {
    let (org, distro) = path.parse()?;
    auth.require_read(&distro_level(&org, distro)?)?;
    let map = state.publisher().list_version_aliases(&org, distro).await?;
    Ok(Json(map.0))
}

/// Point an alias at a version (create or move it); answers once every
/// repository of the version is served under the alias (Debian-style: once
/// the alias's signed `InRelease` is published).
#[utoipa::path(
    put,
    path = "/api/v1/orgs/{org}/distros/{distro}/aliases/{alias}",
    tag = "aliases",
    params(AliasPath),
    request_body = VersionAliasTarget,
    responses(
        (status = 200, description = "The alias points at the version", body = VersionAliasTarget),
        (status = 404, description = "No such organization or version", body = ErrorBody),
        (status = 409, description = "The alias is a version with packages, the target is an alias, or no key can sign", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
        TooLarge,
        NotJson,
        BadJsonFields,
        Busy,
    )
)]
pub(super) async fn put_alias(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<AliasPath>,
    JsonBody(body): JsonBody<VersionAliasTarget>,
) -> Result<Json<VersionAliasTarget>, ApiError> {
    let (org, distro, alias) = path.parse()?;
    Segment::parse("version", &body.version)?;
    auth.require_write(&distro_level(&org, distro)?, "change aliases of")?;
    let previous = auth
        .publisher(&state)
        .set_version_alias(&org, distro, alias.as_str(), &body.version)
        .await?;
    Ok(Json(VersionAliasTarget {
        version: body.version,
        previous,
    }))
}

/// Remove an alias: its signed index files are deleted at once, its copies
/// of packages after the grace period (`gc`).
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{org}/distros/{distro}/aliases/{alias}",
    tag = "aliases",
    params(AliasPath),
    responses(
        (status = 200, description = "Removed; the version it pointed to", body = VersionAliasTarget),
        (status = 404, description = "No such alias", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
        Busy,
    )
)]
pub(super) async fn delete_alias(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<AliasPath>,
) -> Result<Json<VersionAliasTarget>, ApiError> {
    let (org, distro, alias) = path.parse()?;
    auth.require_write(&distro_level(&org, distro)?, "change aliases of")?;
    let version = auth
        .publisher(&state)
        .unset_version_alias(&org, distro, alias.as_str())
        .await?;
    Ok(Json(VersionAliasTarget {
        version,
        previous: None,
    }))
}
