//! The v1 API, under `/api/v1`: organizations, distros, versions, repos,
//! arches, packages, signing keys and tokens.
//!
//! Reads need a token on the path of what is read (read-only is enough);
//! changes need a read-write token of that level or above; creating and
//! deleting organizations needs an admin token; tokens are managed by admin
//! tokens and by read-write org tokens in their org.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Auth;
use super::error::{ApiError, ErrorBody};
use super::upload;
use super::{
    ApiState, JsonBody, distro_level, org_level, parse_org, repo_level, tree, version_level,
};
use crate::formats::apk::ApkRecord;
use crate::index;
use crate::keys;
use crate::publish::{Listed, Published, Upload};
use crate::repo::{Arch, Distro, Key, Org, RepoId, STATIC_PREFIX, Scope, Segment, Tree};
use crate::tokens::{TokenInfo, TokenLevel, parse_duration};

/// The v1 routes.
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_orgs, create_org))
        .routes(routes!(get_org, delete_org))
        .routes(routes!(list_distros))
        .routes(routes!(get_distro))
        .routes(routes!(list_versions))
        .routes(routes!(list_repos))
        .routes(routes!(get_repo, put_repo))
        .routes(routes!(list_arches, add_arches))
        .routes(routes!(list_packages, upload_package))
        .routes(routes!(delete_package))
        .routes(routes!(reindex))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}

// ---- paths and bodies -------------------------------------------------------

/// An organization in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgPath {
    /// Organization.
    pub org: String,
}

/// A distro of an organization in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DistroPath {
    /// Organization.
    pub org: String,
    /// Distro (`alpine`).
    pub distro: String,
}

/// A distro version in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VersionPath {
    /// Organization.
    pub org: String,
    /// Distro (`alpine`).
    pub distro: String,
    /// Distro version (`edge`, `v3.20`).
    pub version: String,
}

/// A repository in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RepoPath {
    /// Organization.
    pub org: String,
    /// Distro (`alpine`).
    pub distro: String,
    /// Distro version (`edge`, `v3.20`).
    pub version: String,
    /// Repository (`main`).
    pub repo: String,
}

/// One architecture of a repository in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ArchPath {
    /// Organization.
    pub org: String,
    /// Distro (`alpine`).
    pub distro: String,
    /// Distro version (`edge`, `v3.20`).
    pub version: String,
    /// Repository (`main`).
    pub repo: String,
    /// Architecture (`x86_64`).
    pub arch: String,
}

/// A package of a repository in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PackagePath {
    /// Organization.
    pub org: String,
    /// Distro (`alpine`).
    pub distro: String,
    /// Distro version (`edge`, `v3.20`).
    pub version: String,
    /// Repository (`main`).
    pub repo: String,
    /// A package name (every version) or file name (`<name>-<version>.apk`).
    pub package: String,
}

/// A token id in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TokenPath {
    /// The token's id (hex SHA-256, as listed).
    pub id: String,
}

impl DistroPath {
    fn parse(&self) -> Result<(Org, Distro), ApiError> {
        Ok((parse_org(&self.org)?, Distro::parse(&self.distro)?))
    }
}

impl VersionPath {
    fn parse(&self) -> Result<(Org, Distro, Segment), ApiError> {
        Ok((
            parse_org(&self.org)?,
            Distro::parse(&self.distro)?,
            Segment::parse("version", &self.version)?,
        ))
    }
}

impl RepoPath {
    /// The repository named.
    pub fn repo_id(&self) -> Result<RepoId, ApiError> {
        Ok(RepoId::parse(
            &self.org,
            &self.distro,
            &self.version,
            &self.repo,
        )?)
    }
}

impl ArchPath {
    /// The repository and arch named.
    pub fn parse(&self) -> Result<(RepoId, Arch), ApiError> {
        Ok((
            RepoId::parse(&self.org, &self.distro, &self.version, &self.repo)?,
            Arch::parse(&self.arch)?,
        ))
    }
}

/// An organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrgInfo {
    /// Its name.
    pub name: String,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// Its distros (those with at least one repository).
    pub distributions: Vec<String>,
}

/// A new organization.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    /// Its name: lowercase letters, digits, `-`, `_`, `.`; not a reserved word.
    pub name: String,
}

/// Options of an organization's deletion.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteOrgQuery {
    /// Delete it with everything in it (refused otherwise when it has packages).
    #[serde(default)]
    pub force: bool,
}

/// A distro of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DistroInfo {
    /// The distro (`alpine`).
    pub name: String,
    /// Its versions (those with at least one repository).
    pub versions: Vec<String>,
}

/// A repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RepoInfo {
    /// The repository's name (the same as `repo`).
    pub name: String,
    /// The repository's name.
    pub repo: String,
    /// The distro version.
    pub version: String,
    /// The distro.
    pub distro: String,
    /// The organization.
    pub org: String,
    /// The architectures it serves.
    pub architectures: Vec<String>,
    /// A description (only echoed at creation; not stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl RepoInfo {
    pub(super) fn new(repo: &RepoId, architectures: Vec<String>) -> Self {
        Self {
            name: repo.repo.to_string(),
            repo: repo.repo.to_string(),
            version: repo.version.to_string(),
            distro: repo.distro.to_string(),
            org: repo.org.to_string(),
            architectures,
            description: None,
        }
    }
}

/// A repository to create (or to give more arches).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepoSpec {
    /// Architectures to serve (noarch packages go into each).
    #[serde(default)]
    pub architectures: Vec<String>,
}

/// Architectures to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewArches {
    /// The architectures (`x86_64`, `aarch64`, ...).
    pub architectures: Vec<String>,
}

/// One package in the index of one arch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackageInfo {
    /// Package name.
    pub name: String,
    /// Full version, with `-rN`.
    pub version: String,
    /// The arch whose index lists it.
    pub arch: String,
    /// The file name (`<name>-<version>.apk`).
    pub file: String,
    /// File size in bytes.
    pub size: u64,
    /// Installed size in bytes.
    pub installed_size: u64,
    /// The index checksum (`Q1` + base64 SHA-1 of the control member).
    pub checksum: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
}

impl From<&Listed> for PackageInfo {
    fn from(listed: &Listed) -> Self {
        PackageInfo {
            name: listed.record.name.clone(),
            version: listed.record.version.clone(),
            arch: listed.arch.clone(),
            file: listed.file.clone(),
            size: listed.record.file_size,
            installed_size: listed.record.installed_size,
            checksum: listed.record.checksum.clone(),
            sha256: listed.record.sha256.clone(),
        }
    }
}

/// Filters of a package listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this architecture.
    pub arch: Option<String>,
    /// Only packages of this name.
    pub name: Option<String>,
}

/// Which arch a removal applies to.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArchQuery {
    /// Only this architecture (default: every arch of the repo).
    pub arch: Option<String>,
}

/// An index record, as published in `APKINDEX` (the same fields as the CLI's `--json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IndexRecord {
    /// `C:` identity: `Q1` + base64(SHA-1 of the control member).
    pub checksum: String,
    /// `P:` package name.
    pub name: String,
    /// `V:` full version, including `-rN`.
    pub version: String,
    /// `A:` architecture as indexed.
    pub arch: String,
    /// `S:` file size.
    pub file_size: u64,
    /// `I:` installed size.
    pub installed_size: u64,
    /// `T:` description.
    pub description: String,
    /// `U:` project URL.
    pub url: String,
    /// `L:` license.
    pub license: String,
    /// `o:` origin.
    pub origin: String,
    /// `m:` maintainer.
    pub maintainer: String,
    /// `t:` build time, Unix seconds.
    pub build_time: Option<u64>,
    /// `c:` commit.
    pub commit: String,
    /// `k:` provider priority.
    pub provider_priority: Option<u64>,
    /// `D:` dependencies.
    pub depends: Vec<String>,
    /// `p:` provides.
    pub provides: Vec<String>,
    /// `i:` install-if.
    pub install_if: Vec<String>,
    /// Hex SHA-256 of the data member.
    pub datahash: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
}

impl From<ApkRecord> for IndexRecord {
    fn from(r: ApkRecord) -> Self {
        IndexRecord {
            checksum: r.checksum,
            name: r.name,
            version: r.version,
            arch: r.arch,
            file_size: r.file_size,
            installed_size: r.installed_size,
            description: r.description,
            url: r.url,
            license: r.license,
            origin: r.origin,
            maintainer: r.maintainer,
            build_time: r.build_time,
            commit: r.commit,
            provider_priority: r.provider_priority,
            depends: r.depends,
            provides: r.provides,
            install_if: r.install_if,
            datahash: r.datahash,
            sha256: r.sha256,
        }
    }
}

/// What an upload did in one arch (the CLI's `upload --json` shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublishedPackage {
    /// The arch.
    pub arch: String,
    /// The index record, as published in the signed index.
    pub record: IndexRecord,
    /// Whether the identical package was there already.
    pub unchanged: bool,
}

impl From<Published> for PublishedPackage {
    fn from(p: Published) -> Self {
        PublishedPackage {
            arch: p.arch,
            record: p.record.into(),
            unchanged: p.unchanged,
        }
    }
}

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

/// Options of an index regeneration.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReindexQuery {
    /// Recompute the records from the `.apk` files first (disaster recovery; slow).
    #[serde(default)]
    pub rebuild: bool,
}

/// The outcome of an index regeneration: the signed index is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IndexStatus {
    /// Always `true`: the signed index is written when this is answered.
    pub status: bool,
    /// The arch.
    pub arch: String,
    /// Packages in the index.
    pub packages: usize,
    /// The state's generation.
    pub generation: u64,
}

/// A public signing key, served in the public tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublicKeyInfo {
    /// The apk key name (what goes into `/etc/apk/keys/`).
    pub name: String,
    /// The level it signs: `org/distro[/version[/repo]]`.
    pub level: String,
    /// Its path in the public tree (relative to the server root).
    pub path: String,
    /// The public key, PEM (only when just created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
}

/// A signing key to generate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// Distro (default `alpine`).
    pub distro: Option<String>,
    /// Version (for a key of one version).
    pub version: Option<String>,
    /// Repo (for a key of one repo; needs `version`).
    pub repo: Option<String>,
    /// RSA key size (default 4096, at most 8192).
    pub bits: Option<usize>,
}

/// A level of tokens in a query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LevelQuery {
    /// Organization (none: the admin level).
    pub org: Option<String>,
    /// Distro.
    pub distro: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// Repo.
    pub repo: Option<String>,
}

impl LevelQuery {
    fn level(&self) -> Result<TokenLevel, ApiError> {
        Ok(TokenLevel::from_parts(
            self.org.as_deref(),
            self.distro.as_deref(),
            self.version.as_deref(),
            self.repo.as_deref(),
        )?)
    }
}

/// A token to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A name for people.
    pub name: String,
    /// Organization (none: an admin token).
    pub org: Option<String>,
    /// Distro.
    pub distro: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// Repo.
    pub repo: Option<String>,
    /// Read-only (default: read-write).
    #[serde(default)]
    pub read_only: bool,
    /// Lifetime, e.g. `90d`, `12h` (default: no expiry).
    pub expires_in: Option<String>,
}

/// A created token: the plaintext is in this response only.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The token: shown once, stored nowhere.
    pub token: String,
    /// Its record.
    #[serde(flatten)]
    pub info: TokenInfo,
}

// ---- organizations ----------------------------------------------------------

async fn org_info(state: &ApiState, org: &Org) -> Result<OrgInfo, ApiError> {
    let record = state.publisher().get_org(org).await?;
    let tree = tree::org_tree(state.publisher(), org).await?;
    Ok(OrgInfo {
        name: record.name,
        created: record.created,
        distributions: tree.keys().cloned().collect(),
    })
}

/// List organizations (admin: all; other tokens: their own).
#[utoipa::path(
    get,
    path = "/api/v1/orgs",
    tag = "orgs",
    responses(
        (status = 200, description = "Organizations", body = Vec<OrgInfo>),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
async fn list_orgs(
    State(state): State<ApiState>,
    auth: Auth,
) -> Result<Json<Vec<OrgInfo>>, ApiError> {
    let mut out = Vec::new();
    for name in state.publisher().list_orgs().await? {
        let Ok(org) = Org::parse(&name) else {
            continue;
        };
        if auth.0.may_read(&org_level(&org)) {
            let record = state.publisher().get_org(&org).await?;
            out.push(OrgInfo {
                name: record.name,
                created: record.created,
                distributions: Vec::new(),
            });
        }
    }
    Ok(Json(out))
}

/// Create an organization (admin).
#[utoipa::path(
    post,
    path = "/api/v1/orgs",
    tag = "orgs",
    request_body = NewOrg,
    responses(
        (status = 201, description = "Created", body = OrgInfo),
        (status = 400, description = "Invalid or reserved name", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 409, description = "Exists already", body = ErrorBody),
    )
)]
async fn create_org(
    State(state): State<ApiState>,
    auth: Auth,
    JsonBody(body): JsonBody<NewOrg>,
) -> Result<(StatusCode, Json<OrgInfo>), ApiError> {
    auth.require_write(&TokenLevel::Admin, "create organizations in")?;
    let org = parse_org(&body.name)?;
    let record = state.publisher().create_org(&org).await?;
    Ok((
        StatusCode::CREATED,
        Json(OrgInfo {
            name: record.name,
            created: record.created,
            distributions: Vec::new(),
        }),
    ))
}

/// Show an organization.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}",
    tag = "orgs",
    params(OrgPath),
    responses(
        (status = 200, description = "The organization", body = OrgInfo),
        (status = 404, description = "No such organization", body = ErrorBody),
    )
)]
async fn get_org(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<OrgPath>,
) -> Result<Json<OrgInfo>, ApiError> {
    let org = parse_org(&path.org)?;
    auth.require_read(&org_level(&org))?;
    Ok(Json(org_info(&state, &org).await?))
}

/// Delete an organization (admin; refused when it has packages unless `force`).
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{org}",
    tag = "orgs",
    params(OrgPath, DeleteOrgQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 409, description = "Not empty", body = ErrorBody),
    )
)]
async fn delete_org(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<OrgPath>,
    Query(query): Query<DeleteOrgQuery>,
) -> Result<StatusCode, ApiError> {
    let org = parse_org(&path.org)?;
    auth.require_write(&TokenLevel::Admin, "delete organizations of")?;
    state.publisher().delete_org(&org, query.force).await?;
    // Its tokens went with it: none may be used here from the cache.
    state.tokens().forget_below(&org_level(&org));
    Ok(StatusCode::NO_CONTENT)
}

// ---- distros, versions, repos, arches ---------------------------------------

/// List an organization's distros.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/distros",
    tag = "repos",
    params(OrgPath),
    responses((status = 200, description = "Distros with their versions", body = Vec<DistroInfo>))
)]
async fn list_distros(
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

pub(super) async fn distro_info(
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
    responses((status = 200, description = "The distro and its versions", body = DistroInfo))
)]
async fn get_distro(
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
    responses((status = 200, description = "Versions", body = Vec<String>))
)]
async fn list_versions(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<DistroPath>,
) -> Result<Json<Vec<String>>, ApiError> {
    let (org, distro) = path.parse()?;
    auth.require_read(&distro_level(&org, distro))?;
    Ok(Json(distro_info(&state, &org, distro).await?.versions))
}

pub(super) async fn repos_of(
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
    )
)]
async fn list_repos(
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
    )
)]
async fn get_repo(
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
    )
)]
async fn put_repo(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<RepoPath>,
    JsonBody(spec): JsonBody<RepoSpec>,
) -> Result<(StatusCode, Json<RepoInfo>), ApiError> {
    let repo = path.repo_id()?;
    let arches = parse_arches(&spec.architectures)?;
    auth.require_write(&repo_level(&repo), "create repositories in")?;
    let created = tree::ensure_repo(state.publisher(), &repo).await?;
    if !arches.is_empty() {
        state.publisher().add_arches(&repo, &arches).await?;
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
    )
)]
async fn list_arches(
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
        (status = 404, description = "No such organization", body = ErrorBody),
    )
)]
async fn add_arches(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<RepoPath>,
    JsonBody(body): JsonBody<NewArches>,
) -> Result<Json<Vec<String>>, ApiError> {
    let repo = path.repo_id()?;
    let arches = parse_arches(&body.architectures)?;
    auth.require_write(&repo_level(&repo), "add architectures to")?;
    state.publisher().add_arches(&repo, &arches).await?;
    let arches = state.publisher().arches(&repo).await?;
    Ok(Json(arches.iter().map(ToString::to_string).collect()))
}

// ---- packages ---------------------------------------------------------------

/// The packages of a repository, 404 when it or the arch does not exist.
pub(super) async fn listed(
    state: &ApiState,
    repo: &RepoId,
    arch: Option<&Arch>,
) -> Result<Vec<Listed>, ApiError> {
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
    )
)]
async fn list_packages(
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
pub(super) async fn publish_upload(
    state: &ApiState,
    repo: &RepoId,
    received: &upload::Received,
    arches: Vec<Arch>,
) -> Result<Vec<Published>, ApiError> {
    let (arch, extra_arches) = match arches.split_first() {
        Some((first, rest)) => (Some(first.clone()), rest.to_vec()),
        None => (None, Vec::new()),
    };
    let started = Instant::now();
    let published = state
        .publisher()
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
    params(RepoPath),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Published (or already there, `unchanged`), in every target arch", body = Vec<PublishedPackage>),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Token out of scope or read-only", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 409, description = "A different package has this name and version", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not multipart/form-data", body = ErrorBody),
        (status = 422, description = "Not a valid package, or for another arch", body = ErrorBody),
    )
)]
async fn upload_package(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<RepoPath>,
    request: Request,
) -> Result<Response, ApiError> {
    let repo = path.repo_id()?;
    auth.require_write(&repo_level(&repo), "publish to")?;
    // Before accepting the body: an unknown org is refused without staging anything.
    state.publisher().get_org(&repo.org).await?;
    let received = upload::receive(&state, request, &["arch"]).await?;
    let arches = received
        .values("arch")
        .map(|a| Arch::parse(a).map_err(ApiError::from))
        .collect::<Result<Vec<_>, _>>()?;
    let published = publish_upload(&state, &repo, &received, arches).await?;
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
        (status = 404, description = "No such package", body = ErrorBody),
    )
)]
async fn delete_package(
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
    let removed = state
        .publisher()
        .remove(&repo, arch.as_ref(), what.as_str())
        .await?;
    for l in &removed {
        tracing::info!(repo = %repo, arch = %l.arch, file = %l.file, "removed");
    }
    Ok(Json(removed.iter().map(PackageInfo::from).collect()))
}

/// Regenerates the signed index of one arch; 404 unless the repo serves it.
pub(super) async fn regenerate(
    state: &ApiState,
    repo: &RepoId,
    arch: &Arch,
    rebuild: bool,
) -> Result<IndexStatus, ApiError> {
    let settings = tree::existing_repo(state.publisher(), repo).await?;
    if !settings.arches.contains(arch.as_str()) {
        return Err(ApiError::not_found(format!(
            "repository {repo} has no architecture `{arch}`"
        )));
    }
    let repo_arch = repo.arch(arch.clone());
    let started = Instant::now();
    let done = if rebuild {
        state.publisher().rebuild(&repo_arch).await?
    } else {
        index::reindex(state.stores(), &repo_arch).await?
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
    )
)]
async fn reindex(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<ArchPath>,
    Query(query): Query<ReindexQuery>,
) -> Result<Json<IndexStatus>, ApiError> {
    let (repo, arch) = path.parse()?;
    auth.require_write(&repo_level(&repo), "regenerate indexes of")?;
    Ok(Json(regenerate(&state, &repo, &arch, query.rebuild).await?))
}

// ---- signing keys -----------------------------------------------------------

/// List the public signing keys of an organization.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/keys",
    tag = "keys",
    params(OrgPath),
    responses((status = 200, description = "Public keys, served in the public tree at `path`", body = Vec<PublicKeyInfo>))
)]
async fn list_keys(
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
async fn create_key(
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

// ---- tokens -----------------------------------------------------------------

/// List the tokens of one level (admin, or an org token in its org).
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "tokens",
    params(LevelQuery),
    responses(
        (status = 200, description = "Tokens (never their plaintext)", body = Vec<TokenInfo>),
        (status = 403, description = "Not allowed to list these tokens", body = ErrorBody),
    )
)]
async fn list_tokens(
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
        (status = 403, description = "Not allowed to create tokens there, or one that writes more or lives longer than the caller's", body = ErrorBody),
        (status = 404, description = "No such organization", body = ErrorBody),
    )
)]
async fn create_token(
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
    )
)]
async fn revoke_token(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<TokenPath>,
    Query(query): Query<LevelQuery>,
) -> Result<Json<TokenInfo>, ApiError> {
    let level = query.level()?;
    auth.require_token_admin(&level, true)?;
    Ok(Json(state.tokens().revoke(&level, &path.id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_record_has_the_fields_of_the_cli_output() {
        let record = ApkRecord {
            checksum: "Q1abc".into(),
            name: "hello".into(),
            version: "1.0-r0".into(),
            arch: "x86_64".into(),
            file_size: 10,
            installed_size: 20,
            description: "d".into(),
            url: "u".into(),
            license: "MIT".into(),
            origin: "hello".into(),
            maintainer: "m".into(),
            build_time: Some(1),
            commit: "c".into(),
            provider_priority: None,
            depends: vec!["a".into()],
            provides: vec![],
            install_if: vec![],
            datahash: "dh".into(),
            sha256: "s".into(),
        };
        assert_eq!(
            serde_json::to_value(IndexRecord::from(record.clone())).unwrap(),
            serde_json::to_value(record).unwrap()
        );
    }
}
