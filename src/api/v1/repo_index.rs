//! `/api/v1/.../repos/{repo}/index/check` and `.../index/repair`: check and
//! repair every index of a repository (what `packages index check` and
//! `index repair` do, for their remote mode; the same reports).

use axum::Json;
use axum::extract::{Path, Query, State};

use super::params::{ArchQuery, RepoPath};
use crate::api::auth::Auth;
use crate::api::error::{ApiError, ErrorBody};
use crate::api::{ApiState, repo_level, tree, version_level};
use crate::publish::repo_index::{IndexCheck, IndexRepair};
use crate::repo::{Arch, Family, RepoId};
use crate::tokens::TokenLevel;

/// The level a check or repair acts on: a Debian-style suite spans its
/// components (the version), anything else is the repository.
fn level(repo: &RepoId) -> TokenLevel {
    if repo.distro.family() == Family::Deb {
        version_level(&repo.org, repo.distro, &repo.version)
    } else {
        repo_level(repo)
    }
}

/// The repository and arch named.
fn parse(path: &RepoPath, query: &ArchQuery) -> Result<(RepoId, Option<Arch>), ApiError> {
    let repo = path.repo_id()?;
    let arch = query.arch.as_deref().map(Arch::parse).transpose()?;
    Ok((repo, arch))
}

/// 404 unless the repository and arch exist (a Debian-style suite: unless the org exists).
async fn require_existing(
    state: &ApiState,
    repo: &RepoId,
    arch: Option<&Arch>,
) -> Result<(), ApiError> {
    if repo.distro.family() == Family::Deb {
        state.publisher().get_org(&repo.org).await?;
        return Ok(());
    }
    let settings = tree::existing_repo(state.publisher(), repo).await?;
    if let Some(arch) = arch {
        if !settings.arches.contains(arch.as_str()) {
            return Err(ApiError::not_found(format!(
                "repository {repo} has no architecture `{arch}`"
            )));
        }
    }
    Ok(())
}

/// Check a repository's signed indexes against their records (a Debian-style distro: the whole suite).
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/index/check",
    tag = "packages",
    params(RepoPath, ArchQuery),
    responses(
        (status = 200, description = "What is wrong with each index (empty lists: nothing)", body = IndexCheck),
        (status = 400, description = "Invalid name", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Token out of scope", body = ErrorBody),
        (status = 404, description = "No such repository or arch", body = ErrorBody),
        crate::api::error::responses::Internal,
    )
)]
pub(super) async fn check_indexes(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<RepoPath>,
    Query(query): Query<ArchQuery>,
) -> Result<Json<IndexCheck>, ApiError> {
    let (repo, arch) = parse(&path, &query)?;
    auth.require_read(&level(&repo))?;
    require_existing(&state, &repo, arch.as_ref()).await?;
    Ok(Json(
        state
            .publisher()
            .check_repo_indexes(&repo, arch.as_ref())
            .await?,
    ))
}

/// Republish a repository's indexes from their records, dropping records clients cannot read
/// (a Debian-style distro: the whole suite); answers once they are written.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/index/repair",
    tag = "packages",
    params(RepoPath, ArchQuery),
    responses(
        (status = 200, description = "Republished", body = IndexRepair),
        (status = 409, description = "No signing key covers the repository", body = ErrorBody),
        (status = 400, description = "Invalid name", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Token out of scope or read-only", body = ErrorBody),
        (status = 404, description = "No such repository or arch", body = ErrorBody),
        crate::api::error::responses::Internal,
    )
)]
pub(super) async fn repair_indexes(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<RepoPath>,
    Query(query): Query<ArchQuery>,
) -> Result<Json<IndexRepair>, ApiError> {
    let (repo, arch) = parse(&path, &query)?;
    auth.require_write(&level(&repo), "repair indexes of")?;
    require_existing(&state, &repo, arch.as_ref()).await?;
    let repaired = auth
        .publisher(&state)
        .repair_repo_indexes(&repo, arch.as_ref())
        .await?;
    tracing::info!(repo = %repo, "indexes repaired");
    Ok(Json(repaired))
}
