//! Quotas for `.rpm` uploads: what a checked batch adds, reserved before
//! anything is written (src/publish/quota.rs).

use std::collections::BTreeMap;

use super::{Checked, PublishError, Publisher, Upload};

impl Publisher {
    /// Checks and reserves what checked `.rpm` uploads add (per target arch,
    /// and the noarch copies arches new to a repository get).
    pub(super) async fn reserve_rpm_quota(
        &self,
        uploads: &[Upload],
        checked: &[Checked],
    ) -> Result<crate::publish::quota::Reservation, PublishError> {
        use crate::publish::quota::Planned;
        let mut planned = Vec::new();
        let mut limited: BTreeMap<crate::repo::Org, bool> = BTreeMap::new();
        for c in checked {
            let file = &uploads[c.index].display_name;
            let r = &c.record;
            planned.extend(Planned::per_arch(
                &c.repo,
                &c.targets,
                &r.file_name,
                &r.sha256,
                r.size,
                file,
            ));
            let org = &c.repo.org;
            let has = match limited.get(org) {
                Some(has) => *has,
                None => {
                    let has = self.has_quotas(org).await?;
                    limited.insert(org.clone(), has);
                    has
                }
            };
            if has {
                planned.extend(self.planned_fill(&c.repo, &c.targets, file).await?);
            }
        }
        self.reserve_quota(&planned).await
    }
}
