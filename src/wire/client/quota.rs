//! Quotas and usage through the v1 API (`/api/v1/orgs/{org}/quotas`, `/usage`).

use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};

use super::{Client, ClientError};
use crate::publish::quota::{LevelUsage, Limit, UsageReport};
use crate::repo::Scope;

const NO_BODY: Option<&()> = None;

/// One level's limits as the API answers them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuotaAnswer {
    /// `org[/distro[/version[/repo]]]`.
    pub level: String,
    /// The limits.
    #[serde(flatten)]
    pub limit: Limit,
}

#[derive(Debug, Deserialize)]
struct UsageAnswer {
    level: String,
    bytes: u64,
    packages: u64,
    #[serde(flatten)]
    limit: Limit,
}

impl Client {
    fn level_url(&self, level: &Scope, what: &str) -> Url {
        let mut url = self.url(&["orgs", level.org.as_str(), what]);
        {
            let mut query = url.query_pairs_mut();
            if let Some(distro) = level.distro {
                query.append_pair("distro", distro.as_str());
            }
            if let Some(version) = &level.version {
                query.append_pair("version", version.as_str());
            }
            if let Some(repo) = &level.repo {
                query.append_pair("repo", repo.as_str());
            }
        }
        url
    }

    /// The limits of `level` and of the levels below it.
    pub async fn quotas(&self, level: &Scope) -> Result<Vec<QuotaAnswer>, ClientError> {
        self.call(Method::GET, self.level_url(level, "quotas"), NO_BODY)
            .await
    }

    /// Sets limits of `level`; the level's limits now.
    pub async fn set_quota(&self, level: &Scope, limit: &Limit) -> Result<Limit, ClientError> {
        let url = self.level_url(level, "quotas");
        let answer: QuotaAnswer = self.call(Method::PUT, url, Some(limit)).await?;
        Ok(answer.limit)
    }

    /// Removes the limits of `level`; what they were.
    pub async fn unset_quota(&self, level: &Scope) -> Result<Limit, ClientError> {
        let url = self.level_url(level, "quotas");
        let answer: QuotaAnswer = self.call(Method::DELETE, url, NO_BODY).await?;
        Ok(answer.limit)
    }

    /// Usage and limits of `level` and every level below it.
    pub async fn usage(&self, level: &Scope) -> Result<UsageReport, ClientError> {
        let answer: Vec<UsageAnswer> = self
            .call(Method::GET, self.level_url(level, "usage"), NO_BODY)
            .await?;
        Ok(UsageReport {
            levels: answer
                .into_iter()
                .map(|u| LevelUsage {
                    level: u.level,
                    bytes: u.bytes,
                    packages: u.packages,
                    limit: (!u.limit.is_empty()).then_some(u.limit),
                })
                .collect(),
        })
    }
}
