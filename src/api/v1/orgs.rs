//! `/api/v1/orgs`: list, create, show and delete organizations.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use super::params::{DeleteOrgQuery, OrgPath};
use crate::api::auth::Auth;
use crate::api::error::responses::{
    BadJsonFields, BadRequest, Forbidden, Internal, NotJson, TooLarge, Unauthorized,
};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::{ApiState, JsonBody, org_level, parse_org, tree};
use crate::repo::Org;
use crate::tokens::TokenLevel;
use crate::wire::{NewOrg, OrgInfo};

pub(super) async fn org_info(state: &ApiState, org: &Org) -> Result<OrgInfo, ApiError> {
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
        Unauthorized,
        Internal,
    )
)]
pub(super) async fn list_orgs(
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
        (status = 409, description = "Exists already", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
        TooLarge,
        NotJson,
        BadJsonFields,
    )
)]
pub(super) async fn create_org(
    State(state): State<ApiState>,
    auth: Auth,
    JsonBody(body): JsonBody<NewOrg>,
) -> Result<(StatusCode, Json<OrgInfo>), ApiError> {
    auth.require_write(&TokenLevel::Admin, "create organizations in")?;
    let org = parse_org(&body.name)?;
    let record = auth.publisher(&state).create_org(&org).await?;
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
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn get_org(
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
        (status = 404, description = "No such organization", body = ErrorBody),
        (status = 409, description = "It has packages (and `force` is not set)", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn delete_org(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<OrgPath>,
    Query(query): Query<DeleteOrgQuery>,
) -> Result<StatusCode, ApiError> {
    let org = parse_org(&path.org)?;
    auth.require_write(&TokenLevel::Admin, "delete organizations of")?;
    auth.publisher(&state).delete_org(&org, query.force).await?;
    // Its tokens went with it: none may be used here from the cache.
    state.tokens().forget_below(&org_level(&org));
    Ok(StatusCode::NO_CONTENT)
}
