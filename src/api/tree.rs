//! What exists under an organization (its distros, versions and repos) and
//! whether a repository exists, as API errors: thin wrappers over the use
//! cases of [`crate::publish::queries`].

use crate::publish::queries::OrgTree;
use crate::publish::{Publisher, RepoSettings};
use crate::repo::{Org, RepoId};

use super::error::ApiError;

/// Reads the distros, versions and repos of `org`.
pub async fn org_tree(publisher: &Publisher, org: &Org) -> Result<OrgTree, ApiError> {
    Ok(publisher.org_tree(org).await?)
}

/// The settings of `repo`, or 404 when it does not exist.
pub async fn existing_repo(publisher: &Publisher, repo: &RepoId) -> Result<RepoSettings, ApiError> {
    publisher.get_org(&repo.org).await?;
    if repo.distro.family() == crate::repo::Family::Deb {
        // A component exists while its suite lists packages in it.
        let listed = publisher.list(repo, None).await?;
        if listed.is_empty() {
            return Err(ApiError::not_found(format!(
                "repository {repo} does not exist"
            )));
        }
        return Ok(RepoSettings {
            arches: listed.into_iter().map(|l| l.arch).collect(),
            ..RepoSettings::default()
        });
    }
    match publisher.repo_settings(repo).await? {
        (settings, Some(_)) => Ok(settings),
        (_, None) => Err(ApiError::not_found(format!(
            "repository {repo} does not exist"
        ))),
    }
}

/// Creates `repo` with no arches if it does not exist; returns whether it was created.
pub async fn ensure_repo(publisher: &Publisher, repo: &RepoId) -> Result<bool, ApiError> {
    Ok(publisher.ensure_repo(repo).await?)
}
