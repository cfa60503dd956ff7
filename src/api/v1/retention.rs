//! `…/repos/{repo}/retention`: a repository's retention rule (read, set) and
//! applying it now (`…/retention/apply[?dry_run=true]`).

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use utoipa::IntoParams;

use super::params::RepoPath;
use crate::api::auth::Auth;
use crate::api::error::responses::{
    BadJsonFields, BadRequest, Busy, Forbidden, Internal, NotJson, TooLarge, Unauthorized,
};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::{ApiState, JsonBody, repo_level};
use crate::publish::{RetentionOutcome, RetentionRule};

/// Whether to remove, or only list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplyQuery {
    /// List what the rule would remove; remove nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// The retention rule of a repository (`{}`: none).
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/retention",
    tag = "repos",
    params(RepoPath),
    responses(
        (status = 200, description = "The rule", body = RetentionRule),
        (status = 404, description = "No such organization or repository", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn get_retention(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<RepoPath>,
) -> Result<Json<RetentionRule>, ApiError> {
    let repo = path.repo_id()?;
    auth.require_read(&repo_level(&repo))?;
    state.publisher().require_repo(&repo).await?;
    Ok(Json(state.publisher().retention(&repo).await?))
}

/// Set the retention rule of a repository (`{}`: no rule); `gc` and the
/// service apply it.
#[utoipa::path(
    put,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/retention",
    tag = "repos",
    params(RepoPath),
    request_body = RetentionRule,
    responses(
        (status = 200, description = "Set", body = RetentionRule),
        (status = 404, description = "No such organization or repository", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
        TooLarge,
        NotJson,
        BadJsonFields,
    )
)]
pub(super) async fn put_retention(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<RepoPath>,
    JsonBody(rule): JsonBody<RetentionRule>,
) -> Result<Json<RetentionRule>, ApiError> {
    let repo = path.repo_id()?;
    auth.require_write(&repo_level(&repo), "set retention rules of")?;
    auth.publisher(&state).set_retention(&repo, &rule).await?;
    Ok(Json(rule))
}

/// Apply the retention rule of a repository now (removed packages stay
/// downloadable for the grace period).
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/retention/apply",
    tag = "repos",
    params(RepoPath, ApplyQuery),
    responses(
        (status = 200, description = "What was removed (or, in a dry run, would be)", body = RetentionOutcome),
        (status = 404, description = "No such organization or repository", body = ErrorBody),
        (status = 409, description = "No signing key for the repository", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
        Busy,
    )
)]
pub(super) async fn apply_retention(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<RepoPath>,
    Query(query): Query<ApplyQuery>,
) -> Result<Json<RetentionOutcome>, ApiError> {
    let repo = path.repo_id()?;
    auth.require_write(&repo_level(&repo), "apply retention rules of")?;
    let publisher = auth.publisher(&state);
    publisher.require_repo(&repo).await?;
    Ok(Json(publisher.apply_retention(&repo, query.dry_run).await?))
}
