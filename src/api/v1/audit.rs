//! `/api/v1/audit` (admin tokens) and `/api/v1/orgs/{org}/audit` (tokens of
//! the org, or admin): the audit log, newest first, with the filters of
//! `packages audit`.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use utoipa::IntoParams;

use super::params::OrgPath;
use crate::api::auth::Auth;
use crate::api::error::responses::{BadRequest, Forbidden, Internal, Unauthorized};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::{ApiState, org_level, parse_org};
use crate::audit::{AuditQuery, AuditRecord, time};
use crate::repo::Org;
use crate::tokens::TokenLevel;

/// The filters of an audit listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only changes at or after this time: RFC 3339, a date (`2026-11-28`), Unix seconds, or an age (`30m`, `12h`, `7d`).
    pub since: Option<String>,
    /// Only changes before this time (same forms as `since`).
    pub until: Option<String>,
    /// Only this action (`package.publish`) or resource (`package`, `token`, ...).
    pub action: Option<String>,
    /// Only changes by this token: its name, or at least 8 characters of its id.
    pub token: Option<String>,
    /// At most this many records, newest first (default 100, at most 10000).
    pub limit: Option<usize>,
}

/// The admin listing's filters: those of [`AuditParams`] and an org.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminAuditParams {
    /// Only changes to this organization.
    pub org: Option<String>,
    /// Only changes at or after this time: RFC 3339, a date (`2026-11-28`), Unix seconds, or an age (`30m`, `12h`, `7d`).
    pub since: Option<String>,
    /// Only changes before this time (same forms as `since`).
    pub until: Option<String>,
    /// Only this action (`package.publish`) or resource (`package`, `token`, ...).
    pub action: Option<String>,
    /// Only changes by this token: its name, or at least 8 characters of its id.
    pub token: Option<String>,
    /// At most this many records, newest first (default 100, at most 10000).
    pub limit: Option<usize>,
}

impl AdminAuditParams {
    fn filters(self) -> AuditParams {
        AuditParams {
            since: self.since,
            until: self.until,
            action: self.action,
            token: self.token,
            limit: self.limit,
        }
    }
}

fn query(params: &AuditParams, org: Option<&Org>) -> Result<AuditQuery, ApiError> {
    let now = time::now_ns();
    let at = |text: &Option<String>| {
        text.as_deref()
            .map(|t| time::parse_time(t, now))
            .transpose()
            .map_err(ApiError::bad_request)
    };
    Ok(AuditQuery {
        org: org.map(ToString::to_string),
        since: at(&params.since)?,
        until: at(&params.until)?,
        action: params.action.clone(),
        token: params.token.clone(),
        limit: params.limit,
    })
}

/// The audit log of the whole server (admin tokens).
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(AdminAuditParams),
    responses(
        (status = 200, description = "Records, newest first", body = Vec<AuditRecord>),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn server_audit(
    State(state): State<ApiState>,
    auth: Auth,
    Query(params): Query<AdminAuditParams>,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    if auth.0.level != TokenLevel::Admin {
        return Err(ApiError::forbidden(format!(
            "{} may not read the server's audit log (admin tokens may; org tokens read their org's at /api/v1/orgs/{{org}}/audit)",
            auth.0.describe()
        )));
    }
    let org = params.org.as_deref().map(parse_org).transpose()?;
    let query = query(&params.filters(), org.as_ref())?;
    Ok(Json(crate::audit::list(state.stores(), &query).await?))
}

/// The audit log of one organization (its org tokens, or admin).
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/audit",
    tag = "audit",
    params(OrgPath, AuditParams),
    responses(
        (status = 200, description = "Records of changes to the organization, newest first", body = Vec<AuditRecord>),
        (status = 404, description = "No such organization", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn org_audit(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<OrgPath>,
    Query(params): Query<AuditParams>,
) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    let org = parse_org(&path.org)?;
    if !auth.0.level.covers(&org_level(&org)) {
        return Err(ApiError::forbidden(format!(
            "{} may not read the audit log of {org} (its org tokens and admin tokens may)",
            auth.0.describe()
        )));
    }
    state.publisher().get_org(&org).await?;
    let query = query(&params, Some(&org))?;
    Ok(Json(crate::audit::list(state.stores(), &query).await?))
}
