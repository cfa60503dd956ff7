//! Deleting versions, repositories and architectures: every package goes
//! through the normal remove path (its file stays downloadable for the grace
//! period), then the repository's settings forget it.

use axum::Json;
use axum::extract::{Path, State};

use super::params::{ArchPath, RepoPath, VersionPath};
use crate::api::auth::Auth;
use crate::api::error::responses::{BadRequest, Busy, Forbidden, Internal, Unauthorized};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::{ApiState, repo_level, version_level};
use crate::wire::{PackageInfo, RepoInfo};

/// What a deletion removed.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Deleted {
    /// The repositories deleted (or the one an arch was deleted from).
    pub repositories: Vec<RepoInfo>,
    /// The packages removed from their indexes.
    pub removed: Vec<PackageInfo>,
}

/// Delete a version: every repository of it, with their packages.
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions/{version}",
    tag = "repos",
    params(VersionPath),
    responses(
        (status = 200, description = "Deleted; the package files stay downloadable for the grace period", body = Deleted),
        (status = 404, description = "No such organization or version", body = ErrorBody),
        (status = 409, description = "An alias points at the version: nothing was deleted", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
        Busy,
    )
)]
pub(super) async fn delete_version(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<VersionPath>,
) -> Result<Json<Deleted>, ApiError> {
    let (org, distro, version) = path.parse()?;
    auth.require_write(&version_level(&org, distro, &version), "delete")?;
    let deleted = auth
        .publisher(&state)
        .delete_version(&org, &distro, &version)
        .await?;
    let mut out = Deleted {
        repositories: Vec::new(),
        removed: Vec::new(),
    };
    for (repo, removed) in deleted {
        tracing::info!(repo = %repo, packages = removed.len(), "repository deleted");
        out.repositories.push(RepoInfo::new(&repo, Vec::new()));
        out.removed.extend(removed.iter().map(PackageInfo::from));
    }
    Ok(Json(out))
}

/// Delete a repository with its packages.
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}",
    tag = "repos",
    params(RepoPath),
    responses(
        (status = 200, description = "Deleted; the package files stay downloadable for the grace period", body = Deleted),
        (status = 404, description = "No such organization or repository", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
        Busy,
    )
)]
pub(super) async fn delete_repo(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<RepoPath>,
) -> Result<Json<Deleted>, ApiError> {
    let repo = path.repo_id()?;
    auth.require_write(&repo_level(&repo), "delete")?;
    let removed = auth.publisher(&state).delete_repo(&repo).await?;
    tracing::info!(repo = %repo, packages = removed.len(), "repository deleted");
    Ok(Json(Deleted {
        repositories: vec![RepoInfo::new(&repo, Vec::new())],
        removed: removed.iter().map(PackageInfo::from).collect(),
    }))
}

/// Delete an architecture of a repository with its packages.
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/arches/{arch}",
    tag = "repos",
    params(ArchPath),
    responses(
        (status = 200, description = "Deleted; the package files stay downloadable for the grace period", body = Deleted),
        (status = 404, description = "No such organization, repository or architecture", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
        Busy,
    )
)]
pub(super) async fn delete_arch(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<ArchPath>,
) -> Result<Json<Deleted>, ApiError> {
    let (repo, arch) = path.parse()?;
    auth.require_write(&repo_level(&repo), "delete architectures of")?;
    let removed = auth.publisher(&state).delete_arch(&repo, &arch).await?;
    tracing::info!(repo = %repo, arch = %arch, packages = removed.len(), "architecture deleted");
    let arches = state.publisher().arches(&repo).await?;
    Ok(Json(Deleted {
        repositories: vec![RepoInfo::new(
            &repo,
            arches.iter().map(ToString::to_string).collect(),
        )],
        removed: removed.iter().map(PackageInfo::from).collect(),
    }))
}
