//! Use cases the HTTP API and the CLI need besides publishing: what exists
//! under an organization, explicit repository creation, signing keys,
//! index maintenance and the stores' readiness.
//!
//! They are here so that neither front end touches the store, the index
//! protocol or the key layout itself: `api/` and `cli/` call these methods of
//! [`Publisher`] and nothing below them.

use std::collections::{BTreeMap, BTreeSet};

use super::{PublishError, Publisher};
use crate::index::{self, IndexProblem, Reindexed, Repaired};
use crate::keys::{self, GeneratedKey};
use crate::repo::{Key, Org, RepoArch, RepoId, STATIC_PREFIX, Scope, Tree};

/// Name of a repository's settings object inside its private folder.
const REPO_SETTINGS_FILE: &str = "repo.json";

/// Object probed by [`Publisher::probe_stores`] (never written; org names
/// cannot start with `_`).
const READY_PROBE: &str = "config/_ready";

/// Distro → version → repos of one org.
pub type OrgTree = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// A public signing key, as served in the public tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The apk key name (what goes into `/etc/apk/keys/`).
    pub name: String,
    /// The level it signs: `org/distro[/version[/repo]]`.
    pub level: String,
    /// Its path in the public tree (relative to the tree's root).
    pub path: String,
}

impl Publisher {
    // ---- what exists -------------------------------------------------------

    /// The distros, versions and repos of `org` (one listing of its private
    /// tree; a repo exists once it has settings).
    pub async fn org_tree(&self, org: &Org) -> Result<OrgTree, PublishError> {
        let prefix = Key::org_private_prefix(org);
        let mut tree = OrgTree::new();
        for object in self.stores().list(Tree::Private, &prefix).await? {
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

    /// Creates `repo` with no arches if it does not exist; returns whether it
    /// was created. (Uploads create a repo's settings on their own; this is
    /// the explicit create of the API.)
    pub async fn ensure_repo(&self, repo: &RepoId) -> Result<bool, PublishError> {
        // Through the settings protocol, so it never overwrites settings a
        // concurrent upload is writing on a store without conditional writes.
        self.create_repo(repo).await
    }

    /// Answers once both stores answer a read.
    pub async fn probe_stores(&self) -> Result<(), PublishError> {
        let stores = self.stores();
        stores.private().head(READY_PROBE).await?;
        if stores.is_separate() {
            stores.public().head(READY_PROBE).await?;
        }
        Ok(())
    }

    // ---- signing keys --------------------------------------------------------

    /// The public signing keys of `org`, as served in its public tree.
    pub async fn public_keys(&self, org: &Org) -> Result<Vec<PublicKey>, PublishError> {
        let mut out = Vec::new();
        for object in self
            .stores()
            .list(Tree::Public, &Key::org_public_prefix(org))
            .await?
        {
            // apk keys, and OpenPGP keys by their armored file (each has a
            // binary `.gpg` twin; suites' keyrings under `dists/` are copies).
            let pgp = object.key.ends_with(".asc") && !object.key.contains("/dists/");
            if !object.key.ends_with(".rsa.pub") && !pgp {
                continue;
            }
            let path = object
                .key
                .strip_prefix(STATIC_PREFIX)
                .unwrap_or(&object.key)
                .to_owned();
            let Some((level, name)) = path.rsplit_once('/') else {
                continue;
            };
            out.push(PublicKey {
                name: name.to_owned(),
                level: level.to_owned(),
                path: path.clone(),
            });
        }
        Ok(out)
    }

    /// Generates the signing key of `scope` (refused if one exists there).
    pub async fn generate_key(
        &self,
        scope: &Scope,
        bits: Option<usize>,
        replace: bool,
    ) -> Result<GeneratedKey, PublishError> {
        let algorithm = algorithm_for(scope);
        let bits = bits.unwrap_or(match algorithm {
            crate::signing::Algorithm::OpenPgp => keys::DEFAULT_PGP_KEY_BITS,
            _ => keys::DEFAULT_KEY_BITS,
        });
        let options = keys::ChangeOptions {
            replace,
            algorithm,
            ..keys::ChangeOptions::default()
        };
        let generated = keys::generate_with(self.stores(), scope, bits, &options).await?;
        self.audit_key(
            crate::audit::action::KEY_GENERATE,
            scope,
            &generated,
            replace,
        )
        .await;
        Ok(generated)
    }

    /// Imports a PEM private key as the signing key of `scope`.
    pub async fn import_key(
        &self,
        scope: &Scope,
        pem: &str,
        replace: bool,
    ) -> Result<GeneratedKey, PublishError> {
        let options = keys::ChangeOptions {
            replace,
            algorithm: algorithm_for(scope),
            ..keys::ChangeOptions::default()
        };
        let imported = keys::import_with(self.stores(), scope, pem, &options).await?;
        self.audit_key(crate::audit::action::KEY_IMPORT, scope, &imported, replace)
            .await;
        Ok(imported)
    }

    // ---- index maintenance ---------------------------------------------------

    /// Merges what is pending into the signed index of `arch` and publishes
    /// it, and the aliases of its version; returns once they are written.
    pub async fn regenerate_index(&self, arch: &RepoArch) -> Result<Reindexed, PublishError> {
        let done = index::reindex(self.stores(), arch).await?;
        self.sync_version_aliases(arch).await?;
        Ok(done)
    }

    /// What is wrong with the published index of `arch` (empty: nothing).
    pub async fn check_index(&self, arch: &RepoArch) -> Result<Vec<IndexProblem>, PublishError> {
        Ok(index::check(self.stores(), arch).await?)
    }

    /// Republishes the index of `arch` from its records, dropping records apk
    /// cannot read (an index written by an older release may hold some).
    ///
    /// A dropped package is removed like `packages rm` removes it: out of the
    /// index through a pending removal, then a tombstone, so that `rebuild`
    /// leaves it out and `gc` deletes its file after the grace period.
    pub async fn repair_index(&self, arch: &RepoArch) -> Result<Repaired, PublishError> {
        let repaired = index::repair(self.stores(), arch).await?;
        self.sync_version_aliases(arch).await?;
        for dropped in &repaired.dropped {
            let tombstone = super::Tombstone {
                removed: super::unix_now(),
                sha256: dropped.record.sha256.clone(),
            };
            let body = serde_json::to_vec(&tombstone)
                .map_err(|e| crate::storage::StorageError::backend("encode", &dropped.entry, e))?;
            let file = crate::repo::Segment::parse("file name", &dropped.entry)?;
            self.stores()
                .put(
                    &Key::Tombstone {
                        arch: arch.clone(),
                        file,
                    },
                    body.into(),
                    crate::storage::PutMode::Overwrite,
                )
                .await?;
        }
        Ok(repaired)
    }
}

/// The kind of key a scope's distro signs with: OpenPGP for Debian-style
/// and RPM distros, RSA (apk) otherwise.
fn algorithm_for(scope: &Scope) -> crate::signing::Algorithm {
    match scope.distro.map(crate::repo::Distro::family) {
        Some(crate::repo::Family::Deb | crate::repo::Family::Rpm) => {
            crate::signing::Algorithm::OpenPgp
        }
        _ => crate::signing::Algorithm::RsaSha256,
    }
}
