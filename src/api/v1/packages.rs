//! `/api/v1/.../packages`: list, upload and remove the packages of a repository.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;

use super::params::{ArchQuery, ListQuery, PackagePath, RepoPath, UploadQuery};
use crate::api::auth::Auth;
use crate::api::error::responses::{
    BadRequest, Busy, Forbidden, Internal, NotMultipart, Timeout, TooLarge, Unauthorized,
};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::upload;
use crate::api::{ApiState, repo_level, tree};
use crate::publish::{Listed, Published, Upload};
use crate::repo::{Arch, RepoId, Segment};
use crate::wire::{PackageInfo, PublishedPackage};

/// The multipart form of an upload.
#[derive(Debug, ToSchema)]
pub struct UploadForm {
    /// The `.apk` file.
    #[schema(value_type = String, format = Binary)]
    pub package: Vec<u8>,
    /// Target arch (repeatable): must match the package; for a noarch
    /// package, the arches to publish into (default: every arch of the repo).
    pub arch: Option<Vec<String>>,
}

/// The packages of a repository, 404 when it or the arch does not exist.
pub(crate) async fn listed(
    state: &ApiState,
    repo: &RepoId,
    arch: Option<&Arch>,
) -> Result<Vec<Listed>, ApiError> {
    if repo.distro.family() == crate::repo::Family::Deb {
        // One read of the suite: a component exists while it lists packages.
        state.publisher().get_org(&repo.org).await?;
        let listed = state.publisher().list(repo, None).await?;
        if listed.is_empty() {
            return Err(ApiError::not_found(format!(
                "repository {repo} does not exist"
            )));
        }
        let Some(arch) = arch else {
            return Ok(listed);
        };
        if !listed.iter().any(|l| l.arch == arch.as_str()) {
            return Err(ApiError::not_found(format!(
                "repository {repo} has no architecture `{arch}`"
            )));
        }
        return Ok(listed
            .into_iter()
            .filter(|l| l.arch == arch.as_str() || l.arch == "all")
            .collect());
    }
    let settings = tree::existing_repo(state.publisher(), repo).await?;
    if let Some(arch) = arch {
        if !settings.arches.contains(arch.as_str()) {
            return Err(ApiError::not_found(format!(
                "repository {repo} has no architecture `{arch}`"
            )));
        }
    }
    Ok(state.publisher().list(repo, arch).await?)
}

/// List the packages of a repository.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/packages",
    tag = "packages",
    params(RepoPath, ListQuery),
    responses(
        (status = 200, description = "Packages, by arch and file name", body = Vec<PackageInfo>),
        (status = 404, description = "No such repository or arch", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn list_packages(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<RepoPath>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<PackageInfo>>, ApiError> {
    let repo = path.repo_id()?;
    let arch = query.arch.as_deref().map(Arch::parse).transpose()?;
    auth.require_read(&repo_level(&repo))?;
    let listed = listed(&state, &repo, arch.as_ref()).await?;
    Ok(Json(
        listed
            .iter()
            .filter(|l| query.name.as_ref().is_none_or(|n| &l.record.name == n))
            .map(PackageInfo::from)
            .collect(),
    ))
}

/// Receives an upload and publishes it; answers once the signed indexes list it.
pub(crate) async fn publish_upload(
    state: &ApiState,
    auth: &Auth,
    repo: &RepoId,
    received: &upload::Received,
    arches: Vec<Arch>,
) -> Result<Vec<Published>, ApiError> {
    let (arch, extra_arches) = match arches.split_first() {
        Some((first, rest)) => (Some(first.clone()), rest.to_vec()),
        None => (None, Vec::new()),
    };
    let started = Instant::now();
    let published = auth
        .publisher(state)
        .upload(&Upload {
            repo: repo.clone(),
            arch,
            extra_arches,
            path: received.path().to_owned(),
            display_name: received.display_name.clone(),
        })
        .await?;
    state.metrics().observe_publish(started.elapsed());
    for p in &published {
        tracing::info!(
            repo = %repo,
            arch = %p.arch,
            package = %p.record.name,
            version = %p.record.version,
            bytes = received.size,
            unchanged = p.unchanged,
            "published"
        );
    }
    Ok(published)
}

/// Upload a package; answers once it is in the signed index, with its record.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/packages",
    tag = "packages",
    params(RepoPath, UploadQuery),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Published, in every target arch", body = Vec<PublishedPackage>),
        (status = 200, description = "Already published: the same file (`unchanged`), in every target arch", body = Vec<PublishedPackage>),
        (status = 404, description = "No such organization, or no such repository without `create=true`", body = ErrorBody),
        (status = 409, description = "A different package has this name and version, the name was removed less than the grace period ago, or no signing key for the repository", body = ErrorBody),
        (status = 422, description = "Not a valid package, or for another arch", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
        Timeout,
        TooLarge,
        NotMultipart,
        Busy,
    )
)]
pub(super) async fn upload_package(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<RepoPath>,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let repo = path.repo_id()?;
    auth.require_write(&repo_level(&repo), "publish to")?;
    // Before accepting the body: an unknown org or repository is refused
    // without staging anything.
    auth.publisher(&state)
        .check_upload_target(&repo, query.create)
        .await?;
    let received = upload::receive(&state, request, &["arch"]).await?;
    let arches = received
        .values("arch")
        .map(|a| Arch::parse(a).map_err(ApiError::from))
        .collect::<Result<Vec<_>, _>>()?;
    let published = publish_upload(&state, &auth, &repo, &received, arches).await?;
    let status = if published.iter().all(|p| p.unchanged) {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let body: Vec<PublishedPackage> = published.into_iter().map(Into::into).collect();
    Ok((status, Json(body)).into_response())
}

/// Remove a package (by name: every version; or by file name) from the index.
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{org}/distros/{distro}/versions/{version}/repos/{repo}/packages/{package}",
    tag = "packages",
    params(PackagePath, ArchQuery),
    responses(
        (status = 200, description = "Removed from the signed index (the file stays downloadable for the grace period)", body = Vec<PackageInfo>),
        (status = 404, description = "No such repository, arch or package", body = ErrorBody),
        (status = 409, description = "No signing key for the repository", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
        Busy,
    )
)]
pub(super) async fn delete_package(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<PackagePath>,
    Query(query): Query<ArchQuery>,
) -> Result<Json<Vec<PackageInfo>>, ApiError> {
    let repo = RepoId::parse(&path.org, &path.distro, &path.version, &path.repo)?;
    let arch = query.arch.as_deref().map(Arch::parse).transpose()?;
    // A package name or file name: the same rules as a file name segment.
    let what = Segment::parse("package", &path.package)?;
    auth.require_write(&repo_level(&repo), "remove packages from")?;
    tree::existing_repo(state.publisher(), &repo).await?;
    let removed = auth
        .publisher(&state)
        .remove(&repo, arch.as_ref(), what.as_str())
        .await?;
    for l in &removed {
        tracing::info!(repo = %repo, arch = %l.arch, file = %l.file, "removed");
    }
    Ok(Json(removed.iter().map(PackageInfo::from).collect()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_client_sends_the_field_the_server_reads() {
        assert_eq!(
            crate::wire::PACKAGE_FIELD,
            crate::api::upload::PACKAGE_FIELD
        );
    }
}
