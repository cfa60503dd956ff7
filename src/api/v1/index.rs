//! `/api/v1/.../arches/{arch}/index`: regenerate the signed index of one arch.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Query, State};

use super::params::{ArchPath, ReindexQuery};
use crate::api::auth::Auth;
use crate::api::error::responses::{BadRequest, Busy, Forbidden, Internal, Unauthorized};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::{ApiState, repo_level, tree};
use crate::repo::{Arch, RepoId};
use crate::wire::IndexStatus;

/// Regenerates the signed index of one arch as `auth`'s token (recorded in
/// the audit log); 404 unless the repo serves it.
pub(crate) async fn regenerate(
    state: &ApiState,
    auth: &Auth,
    repo: &RepoId,
    arch: &Arch,
    rebuild: bool,
) -> Result<IndexStatus, ApiError> {
    let publisher = auth.publisher(state);
    let settings = tree::existing_repo(&publisher, repo).await?;
    if !settings.arches.contains(arch.as_str()) {
        return Err(ApiError::not_found(format!(
            "repository {repo} has no architecture `{arch}`"
        )));
    }
    let repo_arch = repo.arch(arch.clone());
    let started = Instant::now();
    let done = if repo.distro.family() == crate::repo::Family::Rpm {
        // An RPM arch is rebuilt from its package files (then republished),
        // or republished from its records.
        if rebuild {
            publisher.rebuild_rpm_arch(&repo_arch).await?;
        }
        publisher.repair_rpm_arch(&repo_arch).await?.reindexed
    } else if rebuild {
        publisher.rebuild(&repo_arch).await?
    } else {
        publisher.regenerate_index(&repo_arch).await?
    };
    state.metrics().observe_index(started.elapsed());
    Ok(IndexStatus {
        status: true,
        arch: arch.to_string(),
        packages: done.packages,
        generation: done.generation,
    })
}

/// Regenerate the signed index of one arch; answers once it is written.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/arches/{arch}/index",
    tag = "packages",
    params(ArchPath, ReindexQuery),
    responses(
        (status = 200, description = "The signed index is written", body = IndexStatus),
        (status = 404, description = "No such repository or arch", body = ErrorBody),
        (status = 409, description = "No signing key for the repository", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
        Busy,
    )
)]
pub(super) async fn reindex(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<ArchPath>,
    Query(query): Query<ReindexQuery>,
) -> Result<Json<IndexStatus>, ApiError> {
    let (repo, arch) = path.parse()?;
    auth.require_write(&repo_level(&repo), "regenerate indexes of")?;
    Ok(Json(
        regenerate(&state, &auth, &repo, &arch, query.rebuild).await?,
    ))
}
