//! What exists under an organization: its distros, versions and repos, read
//! from the repository settings in its private tree (a repo exists once it
//! has settings: created explicitly or by its first upload).

use std::collections::{BTreeMap, BTreeSet};

use crate::publish::{Publisher, RepoSettings};
use crate::repo::{Key, Org, RepoId, Tree};
use crate::storage::{PutMode, StorageError};

use super::error::ApiError;

/// Name of a repository's settings object inside its private folder.
const REPO_SETTINGS_FILE: &str = "repo.json";

/// Distro → version → repos of one org.
pub type OrgTree = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// Reads the distros, versions and repos of `org` (one listing of its private tree).
pub async fn org_tree(publisher: &Publisher, org: &Org) -> Result<OrgTree, ApiError> {
    let prefix = Key::org_private_prefix(org);
    let mut tree = OrgTree::new();
    for object in publisher.stores().list(Tree::Private, &prefix).await? {
        let Some(rest) = object.key.strip_prefix(&prefix) else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        // `<distro>/<version>/<repo>/repo.json`; deeper objects are per arch.
        if let [distro, version, repo, REPO_SETTINGS_FILE] = parts.as_slice() {
            tree.entry((*distro).to_owned())
                .or_default()
                .entry((*version).to_owned())
                .or_default()
                .insert((*repo).to_owned());
        }
    }
    Ok(tree)
}

/// The settings of `repo`, or 404 when it does not exist.
pub async fn existing_repo(publisher: &Publisher, repo: &RepoId) -> Result<RepoSettings, ApiError> {
    publisher.get_org(&repo.org).await?;
    match publisher.repo_settings(repo).await? {
        (settings, Some(_)) => Ok(settings),
        (_, None) => Err(ApiError::not_found(format!(
            "repository {repo} does not exist"
        ))),
    }
}

/// Creates `repo` with no arches if it does not exist; returns whether it was created.
// The publish use cases create a repo's settings on its first upload; an
// explicit create (the old service's `POST /{org}`) writes empty settings.
pub async fn ensure_repo(publisher: &Publisher, repo: &RepoId) -> Result<bool, ApiError> {
    publisher.get_org(&repo.org).await?;
    if publisher.repo_settings(repo).await?.1.is_some() {
        return Ok(false);
    }
    let body = serde_json::to_vec(&RepoSettings::default())
        .map_err(|e| ApiError::internal(&format!("encode repo settings: {e}")))?;
    match publisher
        .stores()
        .put(
            &Key::RepoSettings(repo.clone()),
            body.into(),
            PutMode::Create,
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(StorageError::AlreadyExists { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
