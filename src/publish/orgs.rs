//! Organizations: create, read, list, delete.

use super::*;
use crate::audit::{AuditEvent, Target, action};

impl Publisher {
    /// Creates an organization.
    pub async fn create_org(&self, org: &Org) -> Result<OrgRecord, PublishError> {
        let record = OrgRecord {
            name: org.to_string(),
            created: unix_now(),
        };
        let body =
            serde_json::to_vec(&record).map_err(|e| StorageError::backend("encode", "org", e))?;
        let key = Key::Org(org.clone());
        if self.stores.head(&key).await?.is_some() {
            return Err(PublishError::OrgExists(org.to_string()));
        }
        match self.stores.put(&key, body.into(), PutMode::Create).await {
            Ok(_) => {
                self.audit(AuditEvent::new(action::ORG_CREATE, Target::org(org)))
                    .await;
                Ok(record)
            }
            Err(StorageError::AlreadyExists { .. }) => {
                Err(PublishError::OrgExists(org.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The organization's record.
    pub async fn get_org(&self, org: &Org) -> Result<OrgRecord, PublishError> {
        let key = Key::Org(org.clone());
        let Some((bytes, _)) = self.stores.get_bytes_opt(&key).await? else {
            return Err(PublishError::OrgNotFound(org.to_string()));
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| StorageError::backend("decode", &key.path(), e).into())
    }

    /// Every organization, by name.
    pub async fn list_orgs(&self) -> Result<Vec<String>, PublishError> {
        let prefix = Key::orgs_prefix();
        let objects = self.stores.list(Tree::Private, &prefix).await?;
        Ok(objects
            .iter()
            .filter_map(|o| o.key.strip_prefix(&prefix)?.strip_suffix(".json"))
            .map(str::to_owned)
            .collect())
    }

    /// Deletes an organization; with `force`, everything in it too.
    pub async fn delete_org(&self, org: &Org, force: bool) -> Result<(), PublishError> {
        self.get_org(org).await?;
        let public = self
            .stores
            .list(Tree::Public, &Key::org_public_prefix(org))
            .await?;
        let has_packages = public.iter().any(|o| o.key.ends_with(".apk"));
        if has_packages && !force {
            return Err(PublishError::OrgNotEmpty(org.to_string()));
        }
        for object in public {
            self.stores.public().delete(&object.key).await?;
        }
        for object in self
            .stores
            .list(Tree::Private, &Key::org_private_prefix(org))
            .await?
        {
            self.stores.private().delete(&object.key).await?;
        }
        self.stores.delete(&Key::Org(org.clone())).await?;
        let event = AuditEvent::new(action::ORG_DELETE, Target::org(org)).detail("force", force);
        self.audit(event).await;
        Ok(())
    }

    pub(super) async fn require_org(&self, org: &Org) -> Result<(), PublishError> {
        if self.stores.head(&Key::Org(org.clone())).await?.is_none() {
            return Err(PublishError::OrgNotFound(org.to_string()));
        }
        Ok(())
    }
}
