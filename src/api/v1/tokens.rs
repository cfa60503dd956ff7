//! `/api/v1/tokens`: list, create and revoke API tokens.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use super::params::{LevelQuery, TokenPath};
use crate::api::ApiState;
use crate::api::JsonBody;
use crate::api::auth::Auth;
use crate::api::error::responses::{
    BadJsonFields, BadRequest, Forbidden, Internal, NotJson, TooLarge, Unauthorized,
};
use crate::api::error::{ApiError, ErrorBody};
use crate::tokens::{TokenInfo, TokenLevel, parse_duration};
use crate::wire::CreatedToken;
use crate::wire::NewToken;

/// List the tokens of one level (admin, or an org token in its org).
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "tokens",
    params(LevelQuery),
    responses(
        (status = 200, description = "Tokens (never their plaintext)", body = Vec<TokenInfo>),
        (status = 404, description = "No such organization", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn list_tokens(
    State(state): State<ApiState>,
    auth: Auth,
    Query(query): Query<LevelQuery>,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    let level = query.level()?;
    auth.require_token_admin(&level, false)?;
    Ok(Json(state.tokens().list(&level).await?))
}

/// Create a token (admin, or a read-write org token in its org); the plaintext is shown once.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "tokens",
    request_body = NewToken,
    responses(
        (status = 201, description = "Created: `token` is shown only in this response", body = CreatedToken),
        (status = 404, description = "No such organization", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
        TooLarge,
        NotJson,
        BadJsonFields,
    )
)]
pub(super) async fn create_token(
    State(state): State<ApiState>,
    auth: Auth,
    JsonBody(body): JsonBody<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let level = TokenLevel::from_parts(
        body.org.as_deref(),
        body.distro.as_deref(),
        body.version.as_deref(),
        body.repo.as_deref(),
    )?;
    let lifetime = body.expires_in.as_deref().map(parse_duration).transpose()?;
    auth.require_token_admin(&level, true)?;
    let (token, info) = state
        .tokens()
        .create_by(&auth.0, &level, &body.name, body.read_only, lifetime)
        .await?;
    auth.publisher(&state)
        .audit_token(crate::audit::action::TOKEN_CREATE, &info)
        .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: token.expose().to_owned(),
            info,
        }),
    ))
}

/// Revoke a token of one level (effective everywhere within the token cache time).
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    tag = "tokens",
    params(TokenPath, LevelQuery),
    responses(
        (status = 200, description = "Revoked", body = TokenInfo),
        (status = 404, description = "No such token at that level", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn revoke_token(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<TokenPath>,
    Query(query): Query<LevelQuery>,
) -> Result<Json<TokenInfo>, ApiError> {
    let level = query.level()?;
    auth.require_token_admin(&level, true)?;
    let revoked = state.tokens().revoke(&level, &path.id).await?;
    auth.publisher(&state)
        .audit_token(crate::audit::action::TOKEN_REVOKE, &revoked)
        .await;
    Ok(Json(revoked))
}
