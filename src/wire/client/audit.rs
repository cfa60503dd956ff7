//! The audit log and retention rules through the v1 API (`/api/v1/audit`,
//! `/api/v1/orgs/{org}/audit`, `…/repos/{repo}/retention[/apply]`).

use reqwest::Method;

use super::{Client, ClientError};
use crate::audit::AuditRecord;
use crate::publish::{RetentionOutcome, RetentionRule};
use crate::repo::RepoId;

const NO_BODY: Option<&()> = None;

/// The filters of an audit listing, as the API takes them (times as the
/// CLI was given them: the server reads ages against its own clock).
#[derive(Debug, Clone, Default)]
pub struct AuditFilters {
    /// Only changes to this organization (the org's route; else the server's, admin only).
    pub org: Option<String>,
    /// Only at or after this time.
    pub since: Option<String>,
    /// Only before this time.
    pub until: Option<String>,
    /// Only this action or resource.
    pub action: Option<String>,
    /// Only by this token (name, or 8+ characters of its id).
    pub token: Option<String>,
    /// At most this many records.
    pub limit: Option<usize>,
}

impl Client {
    /// Audit records, newest first: of one org, or (admin) of the server.
    pub async fn audit(&self, filters: &AuditFilters) -> Result<Vec<AuditRecord>, ClientError> {
        let mut url = match &filters.org {
            Some(org) => self.url(&["orgs", org, "audit"]),
            None => self.url(&["audit"]),
        };
        {
            let mut query = url.query_pairs_mut();
            let limit = filters.limit.map(|l| l.to_string());
            for (name, value) in [
                ("since", &filters.since),
                ("until", &filters.until),
                ("action", &filters.action),
                ("token", &filters.token),
                ("limit", &limit),
            ] {
                if let Some(value) = value {
                    query.append_pair(name, value);
                }
            }
        }
        self.call(Method::GET, url, NO_BODY).await
    }

    /// The retention rule of `repo` (empty: none).
    pub async fn retention(&self, repo: &RepoId) -> Result<RetentionRule, ClientError> {
        self.call(Method::GET, self.repo_url(repo, &["retention"]), NO_BODY)
            .await
    }

    /// Sets the retention rule of `repo` (empty: none); the rule now.
    pub async fn set_retention(
        &self,
        repo: &RepoId,
        rule: &RetentionRule,
    ) -> Result<RetentionRule, ClientError> {
        self.call(Method::PUT, self.repo_url(repo, &["retention"]), Some(rule))
            .await
    }

    /// Applies the retention rule of `repo` now (`dry_run`: list only).
    pub async fn apply_retention(
        &self,
        repo: &RepoId,
        dry_run: bool,
    ) -> Result<RetentionOutcome, ClientError> {
        let mut url = self.repo_url(repo, &["retention", "apply"]);
        if dry_run {
            url.query_pairs_mut().append_pair("dry_run", "true");
        }
        self.call(Method::POST, url, NO_BODY).await
    }
}
