//! `POST /api/v1/orgs/{org}/keys/import`: import an existing private signing
//! key (what `packages key import` does, for its remote mode).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::params::OrgPath;
use crate::api::auth::Auth;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::{ApiState, JsonBody, parse_org};
use crate::keys;
use crate::tokens::TokenLevel;
use crate::wire::{ImportKey, PublicKeyInfo};

/// Import a private signing key (PEM) for a distro, version or repo of an organization.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/keys/import",
    tag = "keys",
    params(OrgPath),
    request_body = ImportKey,
    responses(
        (status = 201, description = "Imported; the public half is served at `path`", body = PublicKeyInfo),
        (status = 400, description = "Invalid name", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Token out of scope or read-only", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 409, description = "A key exists at that level, or a wider one signs repositories there (retry with `replace`)", body = ErrorBody),
        (status = 422, description = "Not a usable private key", body = ErrorBody),
        crate::api::error::responses::Internal,
        crate::api::error::responses::TooLarge,
        crate::api::error::responses::NotJson,
    )
)]
pub(super) async fn import_key(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<OrgPath>,
    JsonBody(body): JsonBody<ImportKey>,
) -> Result<(StatusCode, Json<PublicKeyInfo>), ApiError> {
    let org = parse_org(&path.org)?;
    let scope = super::keys::key_scope(
        &org,
        body.distro.as_deref(),
        body.version.as_deref(),
        body.repo.as_deref(),
    )?;
    auth.require_write(
        &TokenLevel::Scoped(keys::authority(&scope)),
        "change signing keys of",
    )?;
    state.publisher().get_org(&org).await?;
    let imported = auth
        .publisher(&state)
        .import_key(&scope, &body.pem, body.replace)
        .await?;
    tracing::info!(scope = %scope, key = %imported.key_name, "signing key imported");
    Ok((
        StatusCode::CREATED,
        Json(PublicKeyInfo {
            name: imported.key_name,
            level: scope.to_string(),
            path: imported.public_path,
            pem: Some(imported.public_pem),
            retiring: imported.retiring,
        }),
    ))
}
