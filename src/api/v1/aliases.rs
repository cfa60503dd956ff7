//! `/api/v1/orgs/{org}/distros/{distro}/aliases`: suite aliases of
//! Debian-style distros (`stable -> bookworm`).

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
use crate::repo::{Scope, SuiteId};
use crate::tokens::TokenLevel;

/// One alias in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AliasPath {
    /// Organization.
    pub org: String,
    /// Distro (Debian-style).
    pub distro: String,
    /// The alias (`stable`, `24.04`).
    pub alias: String,
}

/// Where an alias points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AliasTarget {
    /// The suite (`bookworm`, `noble`).
    pub suite: String,
    /// In an answer to `PUT`: the suite the alias pointed to before, if it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

/// List a distro's suite aliases (alias → suite).
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/distros/{distro}/aliases",
    tag = "suites",
    params(DistroPath),
    responses(
        (status = 200, description = "Alias → suite", body = BTreeMap<String, String>),
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
    auth.require_read(&TokenLevel::Scoped(Scope::new(
        org.clone(),
        Some(distro),
        None,
        None,
    )?))?;
    Ok(Json(state.publisher().list_aliases(&org, distro).await?.0))
}

/// Point an alias at a suite (create or move it); answers once the alias's
/// signed `InRelease` is published.
#[utoipa::path(
    put,
    path = "/api/v1/orgs/{org}/distros/{distro}/aliases/{alias}",
    tag = "suites",
    params(AliasPath),
    request_body = AliasTarget,
    responses(
        (status = 200, description = "The alias points at the suite", body = AliasTarget),
        (status = 404, description = "No such organization or suite", body = ErrorBody),
        (status = 409, description = "The alias is a suite with packages, or the target is an alias", body = ErrorBody),
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
    JsonBody(body): JsonBody<AliasTarget>,
) -> Result<Json<AliasTarget>, ApiError> {
    let (org, distro) = DistroPath {
        org: path.org.clone(),
        distro: path.distro.clone(),
    }
    .parse()?;
    let target = SuiteId::new(org.clone(), distro, &body.suite)?;
    SuiteId::new(org.clone(), distro, &path.alias)?;
    auth.require_write(
        &TokenLevel::Scoped(Scope::new(org, Some(distro), None, None)?),
        "change suite aliases of",
    )?;
    let previous = auth
        .publisher(&state)
        .set_alias(&target, &path.alias)
        .await?;
    Ok(Json(AliasTarget {
        suite: body.suite,
        previous,
    }))
}

/// Remove an alias; its signed files are deleted.
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{org}/distros/{distro}/aliases/{alias}",
    tag = "suites",
    params(AliasPath),
    responses(
        (status = 200, description = "Removed; the suite it pointed to", body = AliasTarget),
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
) -> Result<Json<AliasTarget>, ApiError> {
    let (org, distro) = DistroPath {
        org: path.org.clone(),
        distro: path.distro.clone(),
    }
    .parse()?;
    SuiteId::new(org.clone(), distro, &path.alias)?;
    auth.require_write(
        &TokenLevel::Scoped(Scope::new(org.clone(), Some(distro), None, None)?),
        "change suite aliases of",
    )?;
    let suite = auth
        .publisher(&state)
        .remove_alias(&org, distro, &path.alias)
        .await?;
    Ok(Json(AliasTarget {
        suite,
        previous: None,
    }))
}
