//! Bearer-token authentication and the scope checks of each route.
//!
//! [`Auth`] authenticates the `Authorization: Bearer <token>` header (401
//! when missing or not a live token); handlers then ask it whether the
//! token may read or write the level they act on (403 when not). Routes
//! check this before reading a request body, so an unauthorised upload is
//! refused before its bytes are accepted.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::ApiState;
use super::error::ApiError;
use crate::audit::Actor;
use crate::publish::Publisher;
use crate::repo::Org;
use crate::tokens::{Principal, TokenLevel};

/// The authenticated caller: its token, and who it is in the audit log
/// (the token's id and name and the client's address, [`Actor::token`]).
#[derive(Debug, Clone)]
pub struct Auth(pub Principal, pub Actor);

/// The client's address: the peer of the connection, or with `trust_proxy`
/// the last address of `X-Forwarded-For` (the one the proxy in front of us
/// saw; earlier entries are whatever the client sent).
pub fn client_address(parts: &Parts, trust_proxy: bool) -> Option<String> {
    if trust_proxy {
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|a| !a.is_empty());
        if let Some(ip) = forwarded.and_then(|a| a.parse::<std::net::IpAddr>().ok()) {
            return Some(ip.to_string());
        }
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip().to_string())
}

/// The token of the `Authorization` header, if any.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || ApiError::unauthorized("expected `Authorization: Bearer <token>`");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(Some(token))
}

async fn authenticate(parts: &Parts, state: &ApiState) -> Result<Option<Principal>, ApiError> {
    let Some(token) = bearer(&parts.headers)? else {
        return Ok(None);
    };
    // Tokens moved from the old service carry no level: the org of the path finds them.
    let org = org_of_path(parts.uri.path());
    let principal = state.tokens().authenticate_in(token, org.as_ref()).await?;
    // The id prefix is enough to find the token in `token list`; never the token.
    tracing::Span::current().record("token", &principal.id[..12]);
    Ok(Some(principal))
}

/// The org a request's path names: `/api/v1/orgs/<org>/...` or, on the old
/// service's routes, `/api/<org>/...`.
fn org_of_path(path: &str) -> Option<Org> {
    let rest = path.strip_prefix("/api/")?;
    let name = match rest.strip_prefix("v1/orgs/") {
        Some(rest) => rest.split('/').next()?,
        // Reserved first segments (`v1`, `health`, ...) are no org: `Org::parse` refuses them.
        None => rest.split('/').next()?,
    };
    Org::parse(name).ok()
}

impl FromRequestParts<ApiState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        match authenticate(parts, state).await? {
            Some(principal) => {
                let client = client_address(parts, state.config().trust_proxy);
                let actor = Actor::token(&principal, client);
                Ok(Auth(principal, actor))
            }
            None => Err(ApiError::unauthorized(
                "missing token: send `Authorization: Bearer <token>`",
            )),
        }
    }
}

impl Auth {
    /// The use cases, recording their changes as done by this caller.
    pub fn publisher(&self, state: &ApiState) -> Publisher {
        state.publisher().clone().with_actor(self.1.clone())
    }

    /// Refuses unless the token may read `target`.
    pub fn require_read(&self, target: &TokenLevel) -> Result<(), ApiError> {
        if self.0.may_read(target) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{} may not read {target}",
                self.0.describe()
            )))
        }
    }

    /// Refuses unless the token may change `target` (`action` names the change).
    pub fn require_write(&self, target: &TokenLevel, action: &str) -> Result<(), ApiError> {
        if self.0.read_only && self.0.level.covers(target) {
            return Err(ApiError::forbidden(format!(
                "{} is read-only: it may not {action} {target}",
                self.0.describe()
            )));
        }
        if self.0.may_write(target) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{} may not {action} {target}",
                self.0.describe()
            )))
        }
    }

    /// Refuses unless the token may list (`write: false`) or manage the tokens of `target`.
    pub fn require_token_admin(&self, target: &TokenLevel, write: bool) -> Result<(), ApiError> {
        if self.0.may_manage_tokens(target, write) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{} may not {} tokens of {target} (admin tokens, or read-write org tokens in their org, may)",
                self.0.describe(),
                if write { "manage" } else { "list" }
            )))
        }
    }
}
