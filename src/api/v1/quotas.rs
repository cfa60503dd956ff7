//! `/api/v1/orgs/{org}/quotas` and `/api/v1/orgs/{org}/usage`: quotas per
//! org, distro, version and repo (`docs/quotas.md`). The level is the org
//! of the path narrowed by the `distro`, `version` and `repo` query
//! parameters.
//!
//! Quotas are set and removed by admin tokens and by read-write org tokens
//! in their org; tokens of a distro, version or repo may read them (those of
//! their level, the levels above and below it) but never change them. Usage
//! is read by tokens whose level covers the level asked for.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::params::OrgPath;
use crate::api::auth::Auth;
use crate::api::error::responses::{
    BadJsonFields, BadRequest, Forbidden, Internal, NotJson, TooLarge, Unauthorized,
};
use crate::api::error::{ApiError, ErrorBody};
use crate::api::{ApiState, JsonBody};
use crate::publish::quota::{Limit, UsageReport};
use crate::repo::{Distro, Org, Scope, Segment};
use crate::tokens::TokenLevel;

/// The level below the org of the path.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuotaQuery {
    /// Distro (none: the org itself).
    pub distro: Option<String>,
    /// Version (Debian: the suite); needs `distro`.
    pub version: Option<String>,
    /// Repo (Debian: the component); needs `version`.
    pub repo: Option<String>,
}

impl QuotaQuery {
    fn scope(&self, org: &str) -> Result<Scope, ApiError> {
        Ok(Scope::new(
            Org::parse(org)?,
            self.distro.as_deref().map(Distro::parse).transpose()?,
            self.version
                .as_deref()
                .map(|v| Segment::parse("version", v))
                .transpose()?,
            self.repo
                .as_deref()
                .map(|r| Segment::parse("repo", r))
                .transpose()?,
        )?)
    }
}

/// Limits to set: a field left out keeps its current value (at least one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaLimits {
    /// Most bytes of package files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Most packages (a noarch package counts once per arch it is copied into).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_packages: Option<u64>,
}

/// The limits of one level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuotaInfo {
    /// The level: `org[/distro[/version[/repo]]]`.
    pub level: String,
    /// Most bytes of package files (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Most packages (absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_packages: Option<u64>,
}

impl QuotaInfo {
    fn new(level: String, limit: Limit) -> Self {
        Self {
            level,
            max_bytes: limit.max_bytes,
            max_packages: limit.max_packages,
        }
    }
}

/// One level's usage and limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageInfo {
    /// The level: `org[/distro[/version[/repo]]]`.
    pub level: String,
    /// Bytes of package files in its published indexes.
    pub bytes: u64,
    /// Packages in its published indexes.
    pub packages: u64,
    /// Its byte limit, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Its package limit, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_packages: Option<u64>,
}

fn require_quota_admin(auth: &Auth, level: &Scope) -> Result<(), ApiError> {
    if auth
        .0
        .may_manage_tokens(&TokenLevel::Scoped(level.clone()), true)
    {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "{} may not change quotas of {level} (admin tokens, or read-write org tokens in their org, may)",
        auth.0.describe()
    )))
}

/// The limits of a level and of every level below it.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/quotas",
    tag = "quotas",
    params(OrgPath, QuotaQuery),
    responses(
        (status = 200, description = "The limits, by level", body = Vec<QuotaInfo>),
        (status = 404, description = "No such organization", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn get_quotas(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<OrgPath>,
    Query(query): Query<QuotaQuery>,
) -> Result<Json<Vec<QuotaInfo>>, ApiError> {
    let level = query.scope(&path.org)?;
    auth.require_read(&TokenLevel::Scoped(level.clone()))?;
    let publisher = state.publisher();
    publisher.get_org(&level.org).await?;
    let name = level.to_string();
    let below = format!("{name}/");
    let quotas = publisher.quotas(&level.org).await?;
    Ok(Json(
        quotas
            .levels
            .into_iter()
            .filter(|(l, _)| *l == name || l.starts_with(&below))
            .map(|(l, limit)| QuotaInfo::new(l, limit))
            .collect(),
    ))
}

/// Set the limits of a level (fields left out keep their value).
#[utoipa::path(
    put,
    path = "/api/v1/orgs/{org}/quotas",
    tag = "quotas",
    params(OrgPath, QuotaQuery),
    request_body = QuotaLimits,
    responses(
        (status = 200, description = "The level's limits now", body = QuotaInfo),
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
pub(super) async fn put_quota(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<OrgPath>,
    Query(query): Query<QuotaQuery>,
    JsonBody(body): JsonBody<QuotaLimits>,
) -> Result<Json<QuotaInfo>, ApiError> {
    let level = query.scope(&path.org)?;
    require_quota_admin(&auth, &level)?;
    // The document types both as int64: a larger number is refused, not
    // silently accepted as "no limit in practice".
    for (field, value) in [
        ("max_bytes", body.max_bytes),
        ("max_packages", body.max_packages),
    ] {
        if value.is_some_and(|v| v > i64::MAX as u64) {
            return Err(ApiError::bad_request(format!(
                "`{field}` is at most {} (int64)",
                i64::MAX
            )));
        }
    }
    let limit = Limit {
        max_bytes: body.max_bytes,
        max_packages: body.max_packages,
    };
    let now = auth.publisher(&state).set_quota(&level, limit).await?;
    Ok(Json(QuotaInfo::new(level.to_string(), now)))
}

/// Remove the limits of a level.
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{org}/quotas",
    tag = "quotas",
    params(OrgPath, QuotaQuery),
    responses(
        (status = 200, description = "Removed; the limits it had", body = QuotaInfo),
        (status = 404, description = "No such organization, or the level has no quota", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn delete_quota(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<OrgPath>,
    Query(query): Query<QuotaQuery>,
) -> Result<Json<QuotaInfo>, ApiError> {
    let level = query.scope(&path.org)?;
    require_quota_admin(&auth, &level)?;
    let was = auth.publisher(&state).unset_quota(&level).await?;
    Ok(Json(QuotaInfo::new(level.to_string(), was)))
}

/// Usage and limits of a level and of every level below it.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/usage",
    tag = "quotas",
    params(OrgPath, QuotaQuery),
    responses(
        (status = 200, description = "Usage and limits, by level, widest first", body = Vec<UsageInfo>),
        (status = 404, description = "No such organization", body = ErrorBody),
        BadRequest,
        Unauthorized,
        Forbidden,
        Internal,
    )
)]
pub(super) async fn get_usage(
    State(state): State<ApiState>,
    auth: Auth,
    Path(path): Path<OrgPath>,
    Query(query): Query<QuotaQuery>,
) -> Result<Json<Vec<UsageInfo>>, ApiError> {
    let level = query.scope(&path.org)?;
    let target = TokenLevel::Scoped(level.clone());
    if !auth.0.level.covers(&target) {
        return Err(ApiError::forbidden(format!(
            "{} may not read the usage of {level} (a token of that level or above may)",
            auth.0.describe()
        )));
    }
    let report: UsageReport = state.publisher().usage_report(&level).await?;
    Ok(Json(
        report
            .levels
            .into_iter()
            .map(|l| {
                let limit = l.limit.unwrap_or_default();
                UsageInfo {
                    level: l.level,
                    bytes: l.bytes,
                    packages: l.packages,
                    max_bytes: limit.max_bytes,
                    max_packages: limit.max_packages,
                }
            })
            .collect(),
    ))
}
