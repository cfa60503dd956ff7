//! `/api/v1/orgs/{org}/distros/...`: distros, versions, repositories and
//! their architectures.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::params::{DistroPath, OrgPath, RepoPath, VersionPath};
use crate::api::auth::Auth;
use crate::api::error::responses::{
    BadJsonFields, BadRequest, Busy, Forbidden, Internal, NotJson, TooLarge, Unauthorized,
};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::{
    ApiState, JsonBody, distro_level, org_level, parse_org, repo_level, tree, version_level,
};
use crate::repo::{Arch, Distro, Org, RepoId, Segment};
use crate::wire::{DistroInfo, NewArches, RepoInfo, RepoSpec};

/// List an organization's distros.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/distros",
    tag = "repos",
    params(OrgPath),
    responses(
        (status = 200, description = "Distros with their versions", body = Vec<DistroInfo>),
        (status = 404, description = "No such organization", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn list_distros(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<OrgPath>,
) -> Result<Json<Vec<DistroInfo>>, ApiError> {
    let org = parse_org(&path.org)?;
    auth.require_read(&org_level(&org))?;
    state.publisher().get_org(&org).await?;
    let tree = tree::org_tree(state.publisher(), &org).await?;
    Ok(Json(
        tree.into_iter()
            .map(|(name, versions)| DistroInfo {
                name,
                versions: versions.into_keys().collect(),
            })
            .collect(),
    ))
}

pub(crate) async fn distro_info(
    state: &ApiState,
    org: &Org,
    distro: Distro,
) -> Result<DistroInfo, ApiError> {
    state.publisher().get_org(org).await?;
    let tree = tree::org_tree(state.publisher(), org).await?;
    Ok(DistroInfo {
        name: distro.to_string(),
        versions: tree
            .get(distro.as_str())
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default(),
    })
}

/// Show a distro of an organization.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/distros/{distro}",
    tag = "repos",
    params(DistroPath),
    responses(
        (status = 200, description = "The distro and its versions", body = DistroInfo),
        (status = 404, description = "No such organization", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn get_distro(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<DistroPath>,
) -> Result<Json<DistroInfo>, ApiError> {
    let (org, distro) = path.parse()?;
    auth.require_read(&distro_level(&org, distro))?;
    Ok(Json(distro_info(&state, &org, distro).await?))
}

/// List the versions of a distro.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions",
    tag = "repos",
    params(DistroPath),
    responses(
        (status = 200, description = "Versions", body = Vec<String>),
        (status = 404, description = "No such organization", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn list_versions(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<DistroPath>,
) -> Result<Json<Vec<String>>, ApiError> {
    let (org, distro) = path.parse()?;
    auth.require_read(&distro_level(&org, distro))?;
    Ok(Json(distro_info(&state, &org, distro).await?.versions))
}

pub(crate) async fn repos_of(
    state: &ApiState,
    org: &Org,
    distro: Distro,
    version: &Segment,
) -> Result<Vec<RepoInfo>, ApiError> {
    state.publisher().get_org(org).await?;
    let tree = tree::org_tree(state.publisher(), org).await?;
    let Some(repos) = tree
        .get(distro.as_str())
        .and_then(|versions| versions.get(version.as_str()))
    else {
        return Err(ApiError::not_found(format!(
            "{org}/{distro} has no version `{version}`"
        )));
    };
    let mut out = Vec::new();
    for name in repos {
        let Ok(repo) = RepoId::parse(org.as_str(), distro.as_str(), version.as_str(), name) else {
            continue;
        };
        let arches = state.publisher().arches(&repo).await?;
        out.push(RepoInfo::new(
            &repo,
            arches.iter().map(ToString::to_string).collect(),
        ));
    }
    Ok(out)
}

/// List the repositories of a distro version.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos",
    tag = "repos",
    params(VersionPath),
    responses(
        (status = 200, description = "Repositories", body = Vec<RepoInfo>),
        (status = 404, description = "No such org or version", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn list_repos(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<VersionPath>,
) -> Result<Json<Vec<RepoInfo>>, ApiError> {
    let (org, distro, version) = path.parse()?;
    auth.require_read(&version_level(&org, distro, &version))?;
    Ok(Json(repos_of(&state, &org, distro, &version).await?))
}

/// Show a repository.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}",
    tag = "repos",
    params(RepoPath),
    responses(
        (status = 200, description = "The repository", body = RepoInfo),
        (status = 404, description = "No such repository", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn get_repo(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<RepoPath>,
) -> Result<Json<RepoInfo>, ApiError> {
    let repo = path.repo_id()?;
    auth.require_read(&repo_level(&repo))?;
    let settings = tree::existing_repo(state.publisher(), &repo).await?;
    Ok(Json(RepoInfo::new(
        &repo,
        settings.arches.into_iter().collect(),
    )))
}

fn parse_arches(names: &[String]) -> Result<Vec<Arch>, ApiError> {
    names
        .iter()
        .map(|a| Arch::parse(a).map_err(ApiError::from))
        .collect()
}

/// Create a repository (or add arches to it); idempotent.
#[utoipa::path(
    put,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}",
    tag = "repos",
    params(RepoPath),
    request_body = RepoSpec,
    responses(
        (status = 201, description = "Created", body = RepoInfo),
        (status = 200, description = "Existed already", body = RepoInfo),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 409, description = "No signing key for the repository (publishing its noarch packages into new arches signs their indexes)", body = ErrorBody),
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
pub(super) async fn put_repo(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<RepoPath>,
    JsonBody(spec): JsonBody<RepoSpec>,
) -> Result<(StatusCode, Json<RepoInfo>), ApiError> {
    let repo = path.repo_id()?;
    let arches = parse_arches(&spec.architectures)?;
    auth.require_write(&repo_level(&repo), "create repositories in")?;
    let created = tree::ensure_repo(&auth.publisher(&state), &repo).await?;
    if !arches.is_empty() {
        auth.publisher(&state).add_arches(&repo, &arches).await?;
    }
    let arches = state.publisher().arches(&repo).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(RepoInfo::new(
            &repo,
            arches.iter().map(ToString::to_string).collect(),
        )),
    ))
}

/// List the architectures of a repository.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/arches",
    tag = "repos",
    params(RepoPath),
    responses(
        (status = 200, description = "Architectures", body = Vec<String>),
        (status = 404, description = "No such repository", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn list_arches(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<RepoPath>,
) -> Result<Json<Vec<String>>, ApiError> {
    let repo = path.repo_id()?;
    auth.require_read(&repo_level(&repo))?;
    let settings = tree::existing_repo(state.publisher(), &repo).await?;
    Ok(Json(settings.arches.into_iter().collect()))
}

/// Add architectures to a repository (its noarch packages follow).
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/arches",
    tag = "repos",
    params(RepoPath),
    request_body = NewArches,
    responses(
        (status = 200, description = "All architectures now", body = Vec<String>),
        (status = 404, description = "No such organization or repository", body = ErrorBody),
        (status = 409, description = "No signing key for the repository (publishing its noarch packages into new arches signs their indexes)", body = ErrorBody),
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
pub(super) async fn add_arches(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<RepoPath>,
    JsonBody(body): JsonBody<NewArches>,
) -> Result<Json<Vec<String>>, ApiError> {
    let repo = path.repo_id()?;
    let arches = parse_arches(&body.architectures)?;
    auth.require_write(&repo_level(&repo), "add architectures to")?;
    auth.publisher(&state).add_arches(&repo, &arches).await?;
    let arches = state.publisher().arches(&repo).await?;
    Ok(Json(arches.iter().map(ToString::to_string).collect()))
}
