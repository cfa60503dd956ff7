//! The API of the service we replace (atlascloud/packages, OpenAPI
//! `openapi/packages.yaml` v2.0.0-beta1), under `/api`, for its clients.
//!
//! Same paths, bodies and field names; our responses may add fields but
//! never drop theirs. Differences, all deliberate: every route but
//! `GET /api/orgs` wants a bearer token of ours, with the same scope rules
//! as v1; an upload answers only once the package is in the signed index;
//! `POST .../index` answers `{"status": true}` only once the index is
//! written; errors are `{code, message}` with the right status (the old
//! service answered 500 or 200 for most of them).

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Auth;
use super::error::responses::{
    BadJsonFields, BadRequest, Busy, Forbidden, Internal, NotJson, NotMultipart, Timeout, TooLarge,
    Unauthorized,
};
use super::error::{ApiError, ErrorBody};
use super::upload;
use super::v1::{self, ArchPath, DistroPath, OrgPath, RepoPath, VersionPath};
use super::{
    ApiState, JsonBody, distro_level, is_reserved, org_level, repo_level, tree, version_level,
};
use crate::repo::{Arch, Distro, Org, RepoId, Segment};
use crate::wire::{DistroInfo, IndexStatus, PackageInfo, RepoInfo};

/// The compatibility routes.
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_organizations))
        .routes(routes!(get_organization, create_repo))
        .routes(routes!(list_distros))
        .routes(routes!(get_org_distro))
        .routes(routes!(list_versions))
        .routes(routes!(list_repos))
        .routes(routes!(find_repo_by_name))
        .routes(routes!(list_arches))
        .routes(routes!(list_packages, create_package))
        .routes(routes!(create_package_index))
        .route_layer(axum::middleware::from_fn(reserved_first_segment))
}

/// Answers 404 for `/api/<reserved>/...` (`/api/v1/nothing`, ...) before
/// anything else (authentication included) looks at the request.
async fn reserved_first_segment(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let first = request
        .uri()
        .path()
        .strip_prefix("/api/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    if first != "orgs" && is_reserved(first) {
        return ApiError::not_found(format!(
            "no route for {} {}",
            request.method(),
            request.uri().path().escape_debug()
        ))
        .into_response();
    }
    next.run(request).await
}

/// An org of the compatibility paths: our own first segments (`v1`,
/// `health`, ...) are not orgs, so they answer 404 like any unknown route.
fn compat_org(name: &str) -> Result<Org, ApiError> {
    // Also checked by `reserved_first_segment`, before authentication.
    if is_reserved(name) {
        return Err(ApiError::not_found(format!(
            "no route for /api/{}",
            name.escape_debug()
        )));
    }
    Ok(Org::parse(name)?)
}

/// `Organization` of the old API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Organization {
    /// Name of the organization.
    pub name: String,
    /// Its distributions (with at least one repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributions: Option<Vec<String>>,
    /// Creation time, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<u64>,
}

/// `NewRepo` of the old API, plus where to create it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewRepo {
    /// Name of the repo to add.
    pub name: String,
    /// Description (not stored; echoed).
    pub description: Option<String>,
    /// Distro (default `alpine`).
    pub distro: Option<String>,
    /// Distro version (default `edge`).
    pub version: Option<String>,
}

/// `Package` of the old API: `version` is `pkgver`, `release` the `rN` of `-rN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Package {
    /// Package name.
    pub name: String,
    /// Version without the release (`1.4.1`).
    pub version: String,
    /// Release (`r3`).
    pub release: String,
    /// The arch whose index lists it.
    pub arch: String,
    /// File name (`<name>-<version>-rN.apk`).
    pub file: String,
    /// File size in bytes.
    pub size: u64,
    /// The index checksum.
    pub checksum: String,
}

impl From<&PackageInfo> for Package {
    fn from(info: &PackageInfo) -> Self {
        let (version, release) = match info.version.rsplit_once("-r") {
            Some((version, number))
                if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) =>
            {
                (version.to_owned(), format!("r{number}"))
            }
            _ => (info.version.clone(), String::new()),
        };
        Package {
            name: info.name.clone(),
            version,
            release,
            arch: info.arch.clone(),
            file: info.file.clone(),
            size: info.size,
            checksum: info.checksum.clone(),
        }
    }
}

/// The multipart form of the old API's upload.
#[derive(Debug, ToSchema)]
pub struct CreatePackageForm {
    /// The `.apk` file.
    #[schema(value_type = String, format = Binary)]
    pub package: Vec<u8>,
    /// If sent, must be the arch of the path.
    pub architecture: Option<String>,
}

/// List organizations (public, as in the old API).
#[utoipa::path(
    get,
    path = "/api/orgs",
    tag = "compat",
    operation_id = "ListOrganizations",
    security(()),
    responses(
        (status = 200, description = "Organizations", body = Vec<Organization>),
        Internal,
    )
)]
async fn list_organizations(
    State(state): State<ApiState>,
) -> Result<Json<Vec<Organization>>, ApiError> {
    Ok(Json(
        state
            .publisher()
            .list_orgs()
            .await?
            .into_iter()
            .map(|name| Organization {
                name,
                distributions: None,
                created: None,
            })
            .collect(),
    ))
}

/// Info about an organization.
#[utoipa::path(
    get,
    path = "/api/{org}",
    tag = "compat",
    operation_id = "GetOrganization",
    params(OrgPath),
    responses(
        (status = 200, description = "The organization", body = Organization),
        (status = 404, description = "No such organization", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
async fn get_organization(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<OrgPath>,
) -> Result<Json<Organization>, ApiError> {
    let org = compat_org(&path.org)?;
    auth.require_read(&org_level(&org))?;
    let record = state.publisher().get_org(&org).await?;
    let tree = tree::org_tree(state.publisher(), &org).await?;
    Ok(Json(Organization {
        name: record.name,
        distributions: Some(tree.into_keys().collect()),
        created: Some(record.created),
    }))
}

/// Create a repo (default distro `alpine`, version `edge`).
#[utoipa::path(
    post,
    path = "/api/{org}",
    tag = "compat",
    operation_id = "CreateRepo",
    params(OrgPath),
    request_body = NewRepo,
    responses(
        (status = 201, description = "Created", body = RepoInfo),
        (status = 200, description = "Existed already", body = RepoInfo),
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
async fn create_repo(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<OrgPath>,
    JsonBody(body): JsonBody<NewRepo>,
) -> Result<(StatusCode, Json<RepoInfo>), ApiError> {
    let org = compat_org(&path.org)?;
    let repo = RepoId {
        org,
        distro: Distro::parse(body.distro.as_deref().unwrap_or("alpine"))?,
        version: Segment::parse("version", body.version.as_deref().unwrap_or("edge"))?,
        repo: Segment::parse("repo", &body.name)?,
    };
    auth.require_write(&repo_level(&repo), "create repositories in")?;
    let created = tree::ensure_repo(&auth.publisher(&state), &repo).await?;
    let arches = state.publisher().arches(&repo).await?;
    let mut info = RepoInfo::new(&repo, arches.iter().map(ToString::to_string).collect());
    info.description = body.description;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info)))
}

/// List the distributions of an organization.
#[utoipa::path(
    get,
    path = "/api/{org}/distros",
    tag = "compat",
    operation_id = "ListDistros",
    params(OrgPath),
    responses(
        (status = 200, description = "Distributions", body = Vec<String>),
        (status = 404, description = "No such organization", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
async fn list_distros(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<OrgPath>,
) -> Result<Json<Vec<String>>, ApiError> {
    let org = compat_org(&path.org)?;
    auth.require_read(&org_level(&org))?;
    state.publisher().get_org(&org).await?;
    let tree = tree::org_tree(state.publisher(), &org).await?;
    Ok(Json(tree.into_keys().collect()))
}

fn parse_distro(path: &DistroPath) -> Result<(Org, Distro), ApiError> {
    Ok((compat_org(&path.org)?, Distro::parse(&path.distro)?))
}

/// Info about a distribution of an organization.
#[utoipa::path(
    get,
    path = "/api/{org}/{distro}",
    tag = "compat",
    operation_id = "GetOrgDistro",
    params(DistroPath),
    responses(
        (status = 200, description = "The distribution", body = DistroInfo),
        (status = 404, description = "No such organization", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
async fn get_org_distro(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<DistroPath>,
) -> Result<Json<DistroInfo>, ApiError> {
    let (org, distro) = parse_distro(&path)?;
    auth.require_read(&distro_level(&org, distro))?;
    Ok(Json(v1::distro_info(&state, &org, distro).await?))
}

/// List the versions of a distribution.
#[utoipa::path(
    get,
    path = "/api/{org}/{distro}/versions",
    tag = "compat",
    operation_id = "ListVersions",
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
async fn list_versions(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<DistroPath>,
) -> Result<Json<Vec<String>>, ApiError> {
    let (org, distro) = parse_distro(&path)?;
    auth.require_read(&distro_level(&org, distro))?;
    Ok(Json(v1::distro_info(&state, &org, distro).await?.versions))
}

/// List the repos of a distribution version.
#[utoipa::path(
    get,
    path = "/api/{org}/{distro}/{version}/repos",
    tag = "compat",
    operation_id = "ListRepos",
    params(VersionPath),
    responses(
        (status = 200, description = "Repos", body = Vec<RepoInfo>),
        (status = 404, description = "No such org or version", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
async fn list_repos(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<VersionPath>,
) -> Result<Json<Vec<RepoInfo>>, ApiError> {
    let org = compat_org(&path.org)?;
    let distro = Distro::parse(&path.distro)?;
    let version = Segment::parse("version", &path.version)?;
    auth.require_read(&version_level(&org, distro, &version))?;
    Ok(Json(v1::repos_of(&state, &org, distro, &version).await?))
}

fn parse_repo(path: &RepoPath) -> Result<RepoId, ApiError> {
    compat_org(&path.org)?;
    path.repo_id()
}

/// Info about a repo.
#[utoipa::path(
    get,
    path = "/api/{org}/{distro}/{version}/{repo}",
    tag = "compat",
    operation_id = "FindRepoByName",
    params(RepoPath),
    responses(
        (status = 200, description = "The repo", body = RepoInfo),
        (status = 404, description = "No such repo", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
async fn find_repo_by_name(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<RepoPath>,
) -> Result<Json<RepoInfo>, ApiError> {
    let repo = parse_repo(&path)?;
    auth.require_read(&repo_level(&repo))?;
    let settings = tree::existing_repo(state.publisher(), &repo).await?;
    Ok(Json(RepoInfo::new(
        &repo,
        settings.arches.into_iter().collect(),
    )))
}

/// List the architectures of a repo.
#[utoipa::path(
    get,
    path = "/api/{org}/{distro}/{version}/{repo}/architectures",
    tag = "compat",
    operation_id = "ListArches",
    params(RepoPath),
    responses(
        (status = 200, description = "Architectures", body = Vec<String>),
        (status = 404, description = "No such repo", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
async fn list_arches(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<RepoPath>,
) -> Result<Json<Vec<String>>, ApiError> {
    let repo = parse_repo(&path)?;
    auth.require_read(&repo_level(&repo))?;
    let settings = tree::existing_repo(state.publisher(), &repo).await?;
    Ok(Json(settings.arches.into_iter().collect()))
}

fn parse_arch(path: &ArchPath) -> Result<(RepoId, Arch), ApiError> {
    compat_org(&path.org)?;
    path.parse()
}

/// List the packages of one arch of a repo.
#[utoipa::path(
    get,
    path = "/api/{org}/{distro}/{version}/{repo}/{arch}/pkgs",
    tag = "compat",
    operation_id = "ListPackagesByRepo",
    params(ArchPath),
    responses(
        (status = 200, description = "Packages", body = Vec<Package>),
        (status = 404, description = "No such repo or arch", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
async fn list_packages(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<ArchPath>,
) -> Result<Json<Vec<Package>>, ApiError> {
    let (repo, arch) = parse_arch(&path)?;
    auth.require_read(&repo_level(&repo))?;
    let listed = v1::listed(&state, &repo, Some(&arch)).await?;
    Ok(Json(
        listed
            .iter()
            .map(|l| Package::from(&PackageInfo::from(l)))
            .collect(),
    ))
}

/// Upload a package (multipart field `package`); answers once it is in the signed index.
#[utoipa::path(
    post,
    path = "/api/{org}/{distro}/{version}/{repo}/{arch}/pkgs",
    tag = "compat",
    operation_id = "CreatePackage",
    params(ArchPath),
    request_body(content = CreatePackageForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Published in the signed index", body = Vec<Package>),
        (status = 404, description = "No such organization", body = ErrorBody),
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
async fn create_package(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<ArchPath>,
    request: Request,
) -> Result<Json<Vec<Package>>, ApiError> {
    let (repo, arch) = parse_arch(&path)?;
    auth.require_write(&repo_level(&repo), "publish to")?;
    state.publisher().get_org(&repo.org).await?;
    let received = upload::receive(&state, request, &["architecture"]).await?;
    for asked in received.values("architecture") {
        if asked != arch.as_str() {
            return Err(ApiError::bad_request(format!(
                "form field `architecture` is `{}` but the path names `{arch}`",
                asked.escape_debug()
            )));
        }
    }
    let published = v1::publish_upload(&state, &auth, &repo, &received, vec![arch]).await?;
    Ok(Json(
        published
            .iter()
            .map(|p| Package::from(&PackageInfo::from(p)))
            .collect(),
    ))
}

/// Regenerate the index of one arch; answers once the signed index is written.
#[utoipa::path(
    post,
    path = "/api/{org}/{distro}/{version}/{repo}/{arch}/index",
    tag = "compat",
    operation_id = "CreatePackageIndex",
    params(ArchPath),
    responses(
        (status = 200, description = "`status: true`: the signed index is written", body = IndexStatus),
        (status = 404, description = "No such repo or arch", body = ErrorBody),
        (status = 409, description = "No signing key for the repository", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
        Busy,
    )
)]
async fn create_package_index(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<ArchPath>,
) -> Result<Json<IndexStatus>, ApiError> {
    let (repo, arch) = parse_arch(&path)?;
    auth.require_write(&repo_level(&repo), "regenerate indexes of")?;
    Ok(Json(
        v1::regenerate(&state, &auth, &repo, &arch, false).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_release_from_version() {
        let mut info = PackageInfo {
            name: "gitea-test".into(),
            version: "1.4.1-r3".into(),
            arch: "x86_64".into(),
            file: "gitea-test-1.4.1-r3.apk".into(),
            size: 0,
            installed_size: 0,
            checksum: String::new(),
            sha256: String::new(),
            record: Default::default(),
        };
        let p = Package::from(&info);
        assert_eq!((p.version.as_str(), p.release.as_str()), ("1.4.1", "r3"));
        assert_eq!(p.file, "gitea-test-1.4.1-r3.apk");
        info.version = "2.0_git20240101-r12".into();
        let p = Package::from(&info);
        assert_eq!(
            (p.version.as_str(), p.release.as_str()),
            ("2.0_git20240101", "r12")
        );
    }
}
