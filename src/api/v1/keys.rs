//! `/api/v1/orgs/{org}/keys`: list and generate signing keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::params::OrgPath;
use crate::api::auth::Auth;
use crate::api::error::responses::{
    BadJsonFields, BadRequest, Forbidden, Internal, NotJson, TooLarge, Unauthorized,
};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::{ApiState, JsonBody, org_level, parse_org};
use crate::keys;
use crate::repo::{Distro, Scope, Segment};
use crate::tokens::TokenLevel;
use crate::wire::{NewKey, PublicKeyInfo};

/// List the public signing keys of an organization.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/keys",
    tag = "keys",
    params(OrgPath),
    responses(
        (status = 200, description = "Public keys, served in the public tree at `path`", body = Vec<PublicKeyInfo>),
        (status = 404, description = "No such organization", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn list_keys(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<OrgPath>,
) -> Result<Json<Vec<PublicKeyInfo>>, ApiError> {
    let org = parse_org(&path.org)?;
    auth.require_read(&org_level(&org))?;
    state.publisher().get_org(&org).await?;
    let keys = state.publisher().public_keys(&org).await?;
    Ok(Json(
        keys.into_iter()
            .map(|key| PublicKeyInfo {
                name: key.name,
                level: key.level,
                path: key.path,
                pem: None,
                retiring: Vec::new(),
            })
            .collect(),
    ))
}

/// Generate a signing key for a distro, version or repo of an organization.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/keys",
    tag = "keys",
    params(OrgPath),
    request_body = NewKey,
    responses(
        (status = 201, description = "Generated; the public half is served at `path`", body = PublicKeyInfo),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 409, description = "A key exists at that level, or it would change which key signs a repository (without `replace`)", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
        TooLarge,
        NotJson,
        BadJsonFields,
    )
)]
pub(super) async fn create_key(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<OrgPath>,
    JsonBody(body): JsonBody<NewKey>,
) -> Result<(StatusCode, Json<PublicKeyInfo>), ApiError> {
    let org = parse_org(&path.org)?;
    let scope = key_scope(
        &org,
        body.distro.as_deref(),
        body.version.as_deref(),
        body.repo.as_deref(),
    )?;
    let bits = body.bits;
    if let Some(bits) = bits.filter(|b| *b > 8192) {
        return Err(ApiError::bad_request(format!(
            "{bits}-bit keys are too large (at most 8192)"
        )));
    }
    auth.require_write(
        &TokenLevel::Scoped(keys::authority(&scope)),
        "change signing keys of",
    )?;
    state.publisher().get_org(&org).await?;
    let generated = auth
        .publisher(&state)
        .generate_key(&scope, bits, body.replace)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(PublicKeyInfo {
            name: generated.key_name,
            level: scope.to_string(),
            path: generated.public_path,
            pem: Some(generated.public_pem),
            retiring: generated.retiring,
        }),
    ))
}

/// The level a key request names: `distro` (default `alpine`), then
/// optionally a version and a repo of it.
pub(super) fn key_scope(
    org: &crate::repo::Org,
    distro: Option<&str>,
    version: Option<&str>,
    repo: Option<&str>,
) -> Result<Scope, ApiError> {
    Ok(Scope::new(
        org.clone(),
        Some(Distro::parse(distro.unwrap_or("alpine"))?),
        version.map(|v| Segment::parse("version", v)).transpose()?,
        repo.map(|r| Segment::parse("repo", r)).transpose()?,
    )?)
}
