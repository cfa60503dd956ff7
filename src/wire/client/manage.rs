//! The calls of remote mode other than upload and list: organizations,
//! signing keys, removals, indexes, suite aliases and tokens.

use std::collections::BTreeMap;

use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};

use super::{Client, ClientError};
use crate::publish::repo_index::{IndexCheck, IndexRepair};
use crate::repo::{Arch, Distro, Org, RepoId};
use crate::tokens::{TokenInfo, TokenLevel};
use crate::wire::{
    CreatedToken, ImportKey, IndexStatus, NewKey, NewOrg, NewToken, OrgInfo, PackageInfo,
    PublicKeyInfo,
};

/// Where an alias points (the body of the alias routes).
#[derive(Debug, Serialize, Deserialize)]
struct AliasTarget {
    /// Sent as `suite` (accepted by every release); answered as `version`.
    #[serde(alias = "version")]
    suite: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
}

/// No request body.
const NO_BODY: Option<&()> = None;

impl Client {
    fn with_arch(mut url: Url, arch: Option<&Arch>) -> Url {
        if let Some(arch) = arch {
            url.query_pairs_mut().append_pair("arch", arch.as_str());
        }
        url
    }

    fn aliases_url(&self, org: &Org, distro: Distro, alias: Option<&str>) -> Url {
        let mut segments = vec!["orgs", org.as_str(), "distros", distro.as_str(), "aliases"];
        segments.extend(alias);
        self.url(&segments)
    }

    /// The URL of the tokens of `level` (`rest` after `/tokens`), the level as query.
    fn tokens_url(&self, level: &TokenLevel, rest: Option<&str>) -> Url {
        let mut segments = vec!["tokens"];
        segments.extend(rest);
        let mut url = self.url(&segments);
        if let Some(scope) = level.scope() {
            let mut query = url.query_pairs_mut();
            query.append_pair("org", scope.org.as_str());
            if let Some(distro) = scope.distro {
                query.append_pair("distro", distro.as_str());
            }
            if let Some(version) = &scope.version {
                query.append_pair("version", version.as_str());
            }
            if let Some(repo) = &scope.repo {
                query.append_pair("repo", repo.as_str());
            }
        }
        url
    }

    /// Creates an organization.
    pub async fn create_org(&self, org: &Org) -> Result<OrgInfo, ClientError> {
        let body = NewOrg {
            name: org.to_string(),
        };
        self.call(Method::POST, self.url(&["orgs"]), Some(&body))
            .await
    }

    /// The organizations the token may read.
    pub async fn list_orgs(&self) -> Result<Vec<OrgInfo>, ClientError> {
        self.call(Method::GET, self.url(&["orgs"]), NO_BODY).await
    }

    /// One organization.
    pub async fn get_org(&self, org: &Org) -> Result<OrgInfo, ClientError> {
        self.call(Method::GET, self.url(&["orgs", org.as_str()]), NO_BODY)
            .await
    }

    /// Deletes an organization (with everything in it: `force`).
    pub async fn delete_org(&self, org: &Org, force: bool) -> Result<(), ClientError> {
        let mut url = self.url(&["orgs", org.as_str()]);
        if force {
            url.query_pairs_mut().append_pair("force", "true");
        }
        self.call_empty(Method::DELETE, url).await
    }

    /// Generates a signing key in `org`.
    pub async fn generate_key(
        &self,
        org: &Org,
        key: &NewKey,
    ) -> Result<PublicKeyInfo, ClientError> {
        let url = self.url(&["orgs", org.as_str(), "keys"]);
        self.call(Method::POST, url, Some(key)).await
    }

    /// Imports a private signing key into `org`.
    pub async fn import_key(
        &self,
        org: &Org,
        key: &ImportKey,
    ) -> Result<PublicKeyInfo, ClientError> {
        let url = self.url(&["orgs", org.as_str(), "keys", "import"]);
        self.call(Method::POST, url, Some(key)).await
    }

    /// Removes a package (by name: every version; or by file name) from the index.
    pub async fn remove_package(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
        what: &str,
    ) -> Result<Vec<PackageInfo>, ClientError> {
        let url = Self::with_arch(self.repo_url(repo, &["packages", what]), arch);
        self.call(Method::DELETE, url, NO_BODY).await
    }

    /// The architectures of a repository.
    pub async fn arches(&self, repo: &RepoId) -> Result<Vec<String>, ClientError> {
        self.call(Method::GET, self.repo_url(repo, &["arches"]), NO_BODY)
            .await
    }

    /// Regenerates the signed index of one arch (`rebuild`: from the package files first).
    pub async fn reindex(
        &self,
        repo: &RepoId,
        arch: &Arch,
        rebuild: bool,
    ) -> Result<IndexStatus, ClientError> {
        let mut url = self.repo_url(repo, &["arches", arch.as_str(), "index"]);
        if rebuild {
            url.query_pairs_mut().append_pair("rebuild", "true");
        }
        self.call(Method::POST, url, NO_BODY).await
    }

    /// Checks the indexes of a repository (one arch, or all).
    pub async fn check_indexes(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
    ) -> Result<IndexCheck, ClientError> {
        let url = Self::with_arch(self.repo_url(repo, &["index", "check"]), arch);
        self.call(Method::GET, url, NO_BODY).await
    }

    /// Republishes the indexes of a repository from their records (one arch, or all).
    pub async fn repair_indexes(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
    ) -> Result<IndexRepair, ClientError> {
        let url = Self::with_arch(self.repo_url(repo, &["index", "repair"]), arch);
        self.call(Method::POST, url, NO_BODY).await
    }

    /// A distro's suite aliases (alias → suite).
    pub async fn list_aliases(
        &self,
        org: &Org,
        distro: Distro,
    ) -> Result<BTreeMap<String, String>, ClientError> {
        self.call(Method::GET, self.aliases_url(org, distro, None), NO_BODY)
            .await
    }

    /// Points `alias` at `suite`; returns the suite it pointed to before, if any.
    pub async fn set_alias(
        &self,
        org: &Org,
        distro: Distro,
        alias: &str,
        suite: &str,
    ) -> Result<Option<String>, ClientError> {
        let body = AliasTarget {
            suite: suite.to_owned(),
            previous: None,
        };
        let url = self.aliases_url(org, distro, Some(alias));
        let answer: AliasTarget = self.call(Method::PUT, url, Some(&body)).await?;
        Ok(answer.previous)
    }

    /// Removes an alias; returns the suite it pointed to.
    pub async fn remove_alias(
        &self,
        org: &Org,
        distro: Distro,
        alias: &str,
    ) -> Result<String, ClientError> {
        let url = self.aliases_url(org, distro, Some(alias));
        let answer: AliasTarget = self.call(Method::DELETE, url, NO_BODY).await?;
        Ok(answer.suite)
    }

    /// The tokens of one level.
    pub async fn list_tokens(&self, level: &TokenLevel) -> Result<Vec<TokenInfo>, ClientError> {
        self.call(Method::GET, self.tokens_url(level, None), NO_BODY)
            .await
    }

    /// Creates a token; the plaintext is in the answer only.
    pub async fn create_token(&self, token: &NewToken) -> Result<CreatedToken, ClientError> {
        self.call(Method::POST, self.url(&["tokens"]), Some(token))
            .await
    }

    /// Revokes the token `id` of `level`.
    pub async fn revoke_token(
        &self,
        level: &TokenLevel,
        id: &str,
    ) -> Result<TokenInfo, ClientError> {
        self.call(Method::DELETE, self.tokens_url(level, Some(id)), NO_BODY)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_go_into_the_query() {
        let client = Client::new("http://127.0.0.1:8080", "pkgs_x").unwrap();
        assert_eq!(
            client.tokens_url(&TokenLevel::Admin, None).as_str(),
            "http://127.0.0.1:8080/api/v1/tokens"
        );
        let level =
            TokenLevel::from_parts(Some("acme"), Some("alpine"), Some("edge"), None).unwrap();
        assert_eq!(
            client.tokens_url(&level, Some("ab12")).as_str(),
            "http://127.0.0.1:8080/api/v1/tokens/ab12?org=acme&distro=alpine&version=edge"
        );
        let repo = RepoId::parse("acme", "alpine", "edge", "main").unwrap();
        let arch = Arch::parse("x86_64").unwrap();
        assert_eq!(
            Client::with_arch(client.repo_url(&repo, &["index", "check"]), Some(&arch)).as_str(),
            "http://127.0.0.1:8080/api/v1/orgs/acme/distros/alpine/versions/edge/repos/main/index/check?arch=x86_64"
        );
    }
}
