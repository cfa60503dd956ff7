//! Suite aliases of Debian-style distros (`stable -> bookworm`, `24.04 -> noble`).
//!
//! The aliases of a distro are one private object (`_aliases.json`),
//! replaced conditionally. The suite an alias points to writes the alias's
//! `dists/<alias>/` files when it publishes: the same index files, and a
//! `Release` whose `Suite:` is the alias, signed on its own, so apt accepts
//! `deb … <alias> main` without a warning.

use super::*;
use crate::audit::{AuditEvent, Target, action};
use crate::formats::deb::DebSuite;
use crate::repo::{Distro, DistsFile, Family, SuiteId};

/// A distro's aliases: alias name → suite name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aliases(pub BTreeMap<String, String>);

impl Aliases {
    /// The format instance of `suite`: the suite with the aliases pointing at it.
    pub fn format_for(&self, suite: &SuiteId) -> DebSuite {
        DebSuite {
            aliases: self
                .0
                .iter()
                .filter(|(_, target)| *target == suite.suite.as_str())
                .filter_map(|(alias, _)| Segment::parse("version", alias).ok())
                .collect(),
        }
    }
}

/// Reads the aliases of a distro (none when it has none).
pub async fn read_aliases(
    stores: &Stores,
    org: &Org,
    distro: Distro,
) -> Result<Aliases, PublishError> {
    Ok(read_with_etag(stores, org, distro).await?.0)
}

async fn read_with_etag(
    stores: &Stores,
    org: &Org,
    distro: Distro,
) -> Result<(Aliases, Option<String>), PublishError> {
    let key = Key::SuiteAliases {
        org: org.clone(),
        distro,
    };
    match stores.get_bytes_opt(&key).await? {
        None => Ok((Aliases::default(), None)),
        Some((bytes, meta)) => {
            let aliases = serde_json::from_slice(&bytes)
                .map_err(|e| StorageError::backend("decode", &key.path(), e))?;
            Ok((aliases, Some(meta.etag)))
        }
    }
}

impl Publisher {
    /// Points `alias` at `target` (creating or moving it), then publishes the
    /// alias's files from `target` (and stops the suite it pointed to before
    /// from writing them). Returns the suite it pointed to before, if any.
    pub async fn set_alias(
        &self,
        target: &SuiteId,
        alias: &str,
    ) -> Result<Option<String>, PublishError> {
        self.require_org(&target.org).await?;
        let alias_suite = SuiteId::new(target.org.clone(), target.distro, alias)?;
        if alias_suite == *target {
            return Err(PublishError::InvalidAlias(format!(
                "`{alias}` cannot be an alias of itself"
            )));
        }
        // A suite with packages cannot become an alias.
        let (manifest, _) = crate::core::read_manifest::<crate::formats::deb::suite::SuiteParts>(
            &self.stores,
            &crate::repo::RootId::Suite(alias_suite.clone()),
        )
        .await?;
        if manifest.packages() > 0 {
            return Err(PublishError::InvalidAlias(format!(
                "`{alias}` is a suite with packages; it cannot be an alias"
            )));
        }
        let previous = self
            .update_aliases(target, |aliases| {
                if aliases.0.contains_key(target.suite.as_str()) {
                    return Err(PublishError::InvalidAlias(format!(
                        "`{}` is itself an alias; point `{alias}` at a suite",
                        target.suite
                    )));
                }
                Ok(aliases.0.insert(alias.to_owned(), target.suite.to_string()))
            })
            .await?;
        self.republish_suite(target).await?;
        if let Some(old) = previous
            .as_deref()
            .filter(|old| *old != target.suite.as_str())
        {
            let old = SuiteId::new(target.org.clone(), target.distro, old)?;
            self.republish_suite(&old).await?;
        }
        let event = AuditEvent::new(action::SUITE_ALIAS_SET, Target::suite(target))
            .detail("alias", alias)
            .detail("previous", &previous);
        self.audit(event).await;
        Ok(previous)
    }

    /// Removes `alias`: its signed files are deleted, so apt stops at once.
    pub async fn remove_alias(
        &self,
        org: &Org,
        distro: Distro,
        alias: &str,
    ) -> Result<String, PublishError> {
        let alias_suite = SuiteId::new(org.clone(), distro, alias)?;
        let previous = self
            .update_aliases(&alias_suite, |aliases| Ok(aliases.0.remove(alias)))
            .await?;
        let Some(target) = previous else {
            return Err(PublishError::NotFound(format!(
                "no alias `{alias}` in {org}/{distro}"
            )));
        };
        for file in [
            DistsFile::InRelease,
            DistsFile::Release,
            DistsFile::ReleaseGpg,
        ] {
            self.stores
                .delete(&Key::Dists {
                    suite: alias_suite.clone(),
                    file,
                })
                .await?;
        }
        let target = SuiteId::new(org.clone(), distro, &target)?;
        self.republish_suite(&target).await?;
        let event = AuditEvent::new(action::SUITE_ALIAS_REMOVE, Target::suite(&target))
            .detail("alias", alias);
        self.audit(event).await;
        Ok(target.suite.to_string())
    }

    /// Every alias of a distro.
    pub async fn list_aliases(&self, org: &Org, distro: Distro) -> Result<Aliases, PublishError> {
        self.require_org(org).await?;
        if distro.family() != Family::Deb {
            return Ok(Aliases::default());
        }
        read_aliases(&self.stores, org, distro).await
    }

    /// Applies `change` to the aliases of `suite`'s distro, conditionally
    /// where the store can (re-reading on a race).
    async fn update_aliases<T>(
        &self,
        suite: &SuiteId,
        mut change: impl FnMut(&mut Aliases) -> Result<T, PublishError>,
    ) -> Result<T, PublishError> {
        let conditional = self.stores.conditional_writes().await?;
        let key = Key::SuiteAliases {
            org: suite.org.clone(),
            distro: suite.distro,
        };
        for _ in 0..50 {
            let (mut aliases, etag) =
                read_with_etag(&self.stores, &suite.org, suite.distro).await?;
            let out = change(&mut aliases)?;
            let body = serde_json::to_vec(&aliases)
                .map_err(|e| StorageError::backend("encode", &key.path(), e))?;
            let mode = match (conditional, etag) {
                (false, _) => PutMode::Overwrite,
                (true, Some(etag)) => PutMode::Update(etag),
                (true, None) => PutMode::Create,
            };
            match self.stores.put(&key, body.into(), mode).await {
                Ok(_) => return Ok(out),
                Err(StorageError::Precondition { .. } | StorageError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(PublishError::Index(IndexError::Contended(
            crate::repo::RootId::Suite(suite.clone()),
        )))
    }
}
