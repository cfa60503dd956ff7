//! Upper pages (org, distro, version, repo): listed from the private tree,
//! checked after each commit, rewritten until they agree with a fresh
//! listing (see the guarantees in [`super`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use super::{Level, list_page, page_lists};
use crate::publish::RepoSettings;
use crate::repo::{Arch, CONFIG_PREFIX, Distro, Family, Key, Org, RepoId, RootId, SuiteId, Tree};
use crate::storage::{PutMode, StorageError};
use crate::stores::Stores;

/// How often a page is rewritten while its listing keeps changing under it.
const MAX_REWRITES: usize = 8;

/// Pages this process saw naming a child: `(store, child folder)`.
static SEEN: LazyLock<Mutex<HashSet<(String, String)>>> =
    LazyLock::new(|| Mutex::new(HashSet::new()));

fn store_id(stores: &Stores) -> String {
    let public = stores.public();
    format!(
        "{}@{:p}",
        public.describe(),
        Arc::as_ptr(public.object_store())
    )
}

fn seen(stores: &Stores, level: &Level) -> bool {
    SEEN.lock()
        .is_ok_and(|s| s.contains(&(store_id(stores), level.dir())))
}

fn mark_seen(stores: &Stores, level: &Level) {
    if let Ok(mut s) = SEEN.lock() {
        s.insert((store_id(stores), level.dir()));
    }
}

/// After a commit of `root`: makes sure the pages above it name it (a
/// settings commit also rewrites its repository's page, whose arches may
/// have changed). Costs nothing once this process saw them do so.
pub async fn ensure_listed(stores: &Stores, root: &RootId) -> Result<(), StorageError> {
    let leaf = match root {
        RootId::Arch(arch) => Level::Arch(arch.clone()),
        RootId::Suite(suite) => Level::Suite(suite.clone()),
        RootId::Settings(repo) => {
            if repo.distro.family() == Family::Deb {
                return Ok(());
            }
            let level = Level::Repo(repo.clone());
            rewrite(stores, &level).await?;
            level
        }
    };
    if seen(stores, &leaf) {
        return Ok(());
    }
    // The page just above first: if it names the leaf, a writer before
    // ensured every level above (it works from the org down).
    let (Some(parent), Some(link)) = (leaf.parent(), leaf.link_from_parent()) else {
        return Ok(());
    };
    if !names(stores, &parent, &link).await? {
        let mut chain = leaf.ancestors();
        chain.push(leaf.clone());
        for pair in chain.windows(2) {
            let (above, child) = (&pair[0], &pair[1]);
            let link = child.link_from_parent().unwrap_or_default();
            if !names(stores, above, &link).await? {
                rewrite(stores, above).await?;
            }
        }
    }
    mark_seen(stores, &leaf);
    Ok(())
}

/// Rewrites the page of `level` and of every level above it from fresh
/// listings (after a child went away).
pub async fn refresh(stores: &Stores, level: &Level) -> Result<(), StorageError> {
    let mut chain = level.ancestors();
    chain.push(level.clone());
    for level in chain.iter().rev() {
        if matches!(level, Level::Arch(_) | Level::Suite(_)) {
            continue;
        }
        rewrite(stores, level).await?;
    }
    if let Ok(mut s) = SEEN.lock() {
        s.clear();
    }
    Ok(())
}

/// Whether the page of `level` exists and links to `link`.
async fn names(stores: &Stores, level: &Level, link: &str) -> Result<bool, StorageError> {
    Ok(stores
        .get_bytes_opt(&level.key())
        .await?
        .is_some_and(|(page, _)| page_lists(&page, link)))
}

/// Writes the page of `level` from a listing, and again while a listing
/// taken after the write differs from the one it was rendered from.
async fn rewrite(stores: &Stores, level: &Level) -> Result<(), StorageError> {
    let keys = match level {
        Level::Repo(repo) => crate::keys::key_set_for_scope(stores, &repo.scope())
            .await
            .ok(),
        _ => None,
    };
    let mut children = children(stores, level).await?;
    for _ in 0..MAX_REWRITES {
        let page = list_page(level, &children, keys.as_deref());
        stores
            .put(&level.key(), page.into(), PutMode::Overwrite)
            .await?;
        let now = self::children(stores, level).await?;
        if now == children {
            return Ok(());
        }
        children = now;
    }
    tracing::warn!(page = %level.dir(), "browse page still changing; left for the next commit");
    Ok(())
}

/// The children of `level` as `(label, link)`, sorted by label.
async fn children(stores: &Stores, level: &Level) -> Result<Vec<(String, String)>, StorageError> {
    let levels: Vec<Level> = match level {
        Level::Repo(repo) => {
            let settings = stores
                .get_bytes_opt(&Key::RepoSettings(repo.clone()))
                .await?
                .and_then(|(bytes, _)| serde_json::from_slice::<RepoSettings>(&bytes).ok())
                .unwrap_or_default();
            settings
                .arches
                .iter()
                .filter_map(|a| Arch::parse(a).ok())
                .map(|a| Level::Arch(repo.arch(a)))
                .collect()
        }
        Level::Org(_) | Level::Distro(..) | Level::Version(..) => below(stores, level).await?,
        Level::Arch(_) | Level::Suite(_) => Vec::new(),
    };
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for child in levels {
        if let Some(link) = child.link_from_parent() {
            out.insert(child.label(), link);
        }
    }
    Ok(out.into_iter().collect())
}

/// The levels just below an org, distro or version, from one listing of its
/// private folder: a repository exists once it has settings (`repo.json`), a
/// suite once it has a manifest (`_suite/state.json`).
async fn below(stores: &Stores, level: &Level) -> Result<Vec<Level>, StorageError> {
    let prefix = format!("{CONFIG_PREFIX}{}/", private_dir(level));
    let mut out = HashSet::new();
    for object in stores.list(Tree::Private, &prefix).await? {
        let Some(rest) = object.key.strip_prefix(CONFIG_PREFIX) else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let child = match parts.as_slice() {
            [org, distro, version, repo, "repo.json"] => RepoId::parse(org, distro, version, repo)
                .ok()
                .and_then(|repo| child_of_repo(level, &repo)),
            [org, distro, suite, "_suite", "state.json"] => {
                let (Ok(org), Ok(distro)) = (Org::parse(org), Distro::parse(distro)) else {
                    continue;
                };
                SuiteId::new(org, distro, suite)
                    .ok()
                    .and_then(|suite| child_of_suite(level, &suite))
            }
            _ => None,
        };
        if let Some(child) = child {
            out.insert(child);
        }
    }
    let mut out: Vec<Level> = out.into_iter().collect();
    out.sort();
    Ok(out)
}

/// The private folder of an upper level (org, distro, version).
fn private_dir(level: &Level) -> String {
    match level {
        Level::Org(org) => org.to_string(),
        Level::Distro(org, distro) => format!("{org}/{distro}"),
        Level::Version(org, distro, version) => format!("{org}/{distro}/{version}"),
        Level::Repo(repo) => repo.path(),
        Level::Arch(arch) => arch.path(),
        Level::Suite(suite) => suite.path(),
    }
}

/// The child of `level` on the way down to `repo`.
fn child_of_repo(level: &Level, repo: &RepoId) -> Option<Level> {
    match level {
        Level::Org(_) => Some(Level::Distro(repo.org.clone(), repo.distro)),
        Level::Distro(..) if repo.distro.family() == Family::Deb => None,
        Level::Distro(..) => Some(Level::Version(
            repo.org.clone(),
            repo.distro,
            repo.version.clone(),
        )),
        Level::Version(..) => Some(Level::Repo(repo.clone())),
        _ => None,
    }
}

/// The child of `level` on the way down to `suite`.
fn child_of_suite(level: &Level, suite: &SuiteId) -> Option<Level> {
    match level {
        Level::Org(_) => Some(Level::Distro(suite.org.clone(), suite.distro)),
        Level::Distro(..) => Some(Level::Suite(suite.clone())),
        _ => None,
    }
}
