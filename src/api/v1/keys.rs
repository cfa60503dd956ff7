//! `/api/v1/orgs/{org}/keys`: list and generate signing keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::bodies::{NewKey, PublicKeyInfo};
use super::params::OrgPath;
use crate::api::auth::Auth;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::{ApiState, JsonBody, org_level, parse_org};
use crate::keys;
use crate::repo::{Distro, Key, STATIC_PREFIX, Scope, Segment, Tree};
use crate::tokens::TokenLevel;

/// List the public signing keys of an organization.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/keys",
    tag = "keys",
    params(OrgPath),
    responses((status = 200, description = "Public keys, served in the public tree at `path`", body = Vec<PublicKeyInfo>))
)]
pub(super) async fn list_keys(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<OrgPath>,
) -> Result<Json<Vec<PublicKeyInfo>>, ApiError> {
    let org = parse_org(&path.org)?;
    auth.require_read(&org_level(&org))?;
    state.publisher().get_org(&org).await?;
    let mut out = Vec::new();
    for object in state
        .stores()
        .list(Tree::Public, &Key::org_public_prefix(&org))
        .await?
    {
        if !object.key.ends_with(".rsa.pub") {
            continue;
        }
        let path = object
            .key
            .strip_prefix(STATIC_PREFIX)
            .unwrap_or(&object.key)
            .to_owned();
        let Some((level, name)) = path.rsplit_once('/') else {
            continue;
        };
        out.push(PublicKeyInfo {
            name: name.to_owned(),
            level: level.to_owned(),
            path: path.clone(),
            pem: None,
        });
    }
    Ok(Json(out))
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
        (status = 409, description = "A key exists at that level", body = ErrorBody),
    )
)]
pub(super) async fn create_key(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<OrgPath>,
    JsonBody(body): JsonBody<NewKey>,
) -> Result<(StatusCode, Json<PublicKeyInfo>), ApiError> {
    let org = parse_org(&path.org)?;
    let scope = Scope::new(
        org.clone(),
        Some(Distro::parse(body.distro.as_deref().unwrap_or("alpine"))?),
        body.version
            .as_deref()
            .map(|v| Segment::parse("version", v))
            .transpose()?,
        body.repo
            .as_deref()
            .map(|r| Segment::parse("repo", r))
            .transpose()?,
    )?;
    let bits = body.bits.unwrap_or(keys::DEFAULT_KEY_BITS);
    if bits > 8192 {
        return Err(ApiError::bad_request(format!(
            "{bits}-bit keys are too large (at most 8192)"
        )));
    }
    auth.require_write(
        &TokenLevel::Scoped(scope.clone()),
        "create signing keys for",
    )?;
    state.publisher().get_org(&org).await?;
    let generated = keys::generate(state.stores(), &scope, bits).await?;
    Ok((
        StatusCode::CREATED,
        Json(PublicKeyInfo {
            name: generated.key_name,
            level: scope.to_string(),
            path: generated.public_path,
            pem: Some(generated.public_pem),
        }),
    ))
}
