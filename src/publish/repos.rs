//! Versions and repositories exist because someone created them: the check a
//! front end makes before an upload (so a mistyped `edgee` or `3.20` is an
//! error with a "did you mean", not a new repository), and the explicit
//! creation that `repo create`, `upload --create` and the seed's
//! `POST /api/{org}` go through.
//!
//! The library's [`Publisher::upload`] itself stays permissive (it creates
//! what it needs); the CLI and the HTTP API call [`Publisher::check_upload_target`]
//! first.

use super::queries::OrgTree;
use super::settings_root::SettingsEntry;
use super::*;
use crate::audit::{AuditEvent, Target, action};
use crate::core::Change;
use crate::repo::Family;

impl Publisher {
    /// Whether `repo` exists: it has settings (every repository created or
    /// uploaded to since settings exist), or it is a Debian component its
    /// suite lists packages in (suites published before explicit creation).
    pub async fn repo_exists(&self, repo: &RepoId) -> Result<bool, PublishError> {
        if self.repo_settings(repo).await?.1.is_some() {
            return Ok(true);
        }
        if repo.distro.family() == Family::Deb {
            return Ok(!self.list(repo, None).await?.is_empty());
        }
        Ok(false)
    }

    /// Fails with a "does not exist" error naming the closest existing
    /// version or repository when `repo` does not exist.
    pub async fn require_repo(&self, repo: &RepoId) -> Result<(), PublishError> {
        self.require_org(&repo.org).await?;
        if self.repo_exists(repo).await? {
            return Ok(());
        }
        self.refuse_alias_version(repo).await?;
        let tree = self.org_tree(&repo.org).await?;
        Err(PublishError::NotFound(unknown_repo_message(repo, &tree)))
    }

    /// What a front end checks before an upload: without `create`, the
    /// repository must exist; with it, only its organization (the upload
    /// then creates the repository's settings as it stores the package, so a
    /// refused package creates nothing).
    pub async fn check_upload_target(
        &self,
        repo: &RepoId,
        create: bool,
    ) -> Result<(), PublishError> {
        if create {
            self.require_org(&repo.org).await
        } else {
            self.require_repo(repo).await
        }
    }

    /// Creates `repo` with no arches unless it exists (a Debian component
    /// exists already while its suite lists packages in it); returns whether
    /// this call created it.
    pub async fn create_repo_explicitly(&self, repo: &RepoId) -> Result<bool, PublishError> {
        self.require_org(&repo.org).await?;
        if self.repo_exists(repo).await? {
            return Ok(false);
        }
        self.create_repo(repo).await
    }

    /// Deletes an arch of `repo`: removes every package it lists through the
    /// normal remove path (tombstones; the files stay downloadable for the
    /// grace period, then `gc` deletes them) and drops the arch from the
    /// repository's settings. Its empty signed index stays published, so a
    /// client still configured for it sees an empty repository, not an error.
    pub async fn delete_arch(
        &self,
        repo: &RepoId,
        arch: &Arch,
    ) -> Result<Vec<Listed>, PublishError> {
        self.require_repo(repo).await?;
        let known = self
            .repo_settings(repo)
            .await?
            .0
            .arches
            .contains(arch.as_str());
        let removed = self.remove_every_package(repo, Some(arch)).await?;
        if !known && removed.is_empty() {
            return Err(PublishError::NotFound(format!(
                "repository {repo} has no architecture `{arch}`"
            )));
        }
        if known {
            let change = Change::Remove {
                entry: SettingsEntry::arch_key(arch.as_str()),
            };
            self.change_settings(repo, vec![change]).await?;
        }
        self.audit_deleted(
            action::ARCH_DELETE,
            Target::arch(&repo.arch(arch.clone())),
            &removed,
        )
        .await;
        Ok(removed)
    }

    /// Deletes `repo`: removes every package (as [`Publisher::delete_arch`]
    /// does) and its settings, so it no longer exists: uploads to it need
    /// `--create` again. Its empty signed indexes stay published.
    pub async fn delete_repo(&self, repo: &RepoId) -> Result<Vec<Listed>, PublishError> {
        self.require_repo(repo).await?;
        let removed = self.remove_every_package(repo, None).await?;
        let settings = self.repo_settings(repo).await?.0;
        let changes: Vec<Change<SettingsEntry>> = settings
            .arches
            .iter()
            .map(|a| SettingsEntry::arch_key(a))
            .chain(settings.noarch.keys().map(|f| SettingsEntry::noarch_key(f)))
            .map(|entry| Change::Remove { entry })
            .collect();
        if !changes.is_empty() {
            self.change_settings(repo, changes).await?;
        }
        self.stores.delete(&Key::RepoSettings(repo.clone())).await?;
        self.audit_deleted(action::REPO_DELETE, Target::repo(repo), &removed)
            .await;
        Ok(removed)
    }

    /// Deletes every repository of a version (as [`Publisher::delete_repo`]).
    /// Refused, with nothing deleted, while an alias points at the version:
    /// its clients would be left with an alias to nothing.
    pub async fn delete_version(
        &self,
        org: &Org,
        distro: &crate::repo::Distro,
        version: &Segment,
    ) -> Result<Vec<(RepoId, Vec<Listed>)>, PublishError> {
        self.require_org(org).await?;
        let (aliases, _) = super::version_alias::read_map(&self.stores, org, *distro).await?;
        let pointing: Vec<&str> = aliases
            .0
            .iter()
            .filter(|(_, target)| target.as_str() == version.as_str())
            .map(|(alias, _)| alias.as_str())
            .collect();
        if !pointing.is_empty() {
            return Err(PublishError::InvalidAlias(format!(
                "{org}/{distro}/{version} is the target of alias {}: move it to another version \
                 (`packages alias set`) or unset it (`packages alias unset`) first; nothing was deleted",
                pointing.join(", ")
            )));
        }
        let tree = self.org_tree(org).await?;
        let repos = tree
            .get(distro.as_str())
            .and_then(|v| v.get(version.as_str()))
            .cloned()
            .unwrap_or_default();
        if repos.is_empty() {
            return Err(PublishError::NotFound(format!(
                "{org}/{distro} has no version `{version}`"
            )));
        }
        let mut out = Vec::new();
        for name in repos {
            let repo = RepoId::parse(org.as_str(), distro.as_str(), version.as_str(), &name)?;
            let removed = self.delete_repo(&repo).await?;
            out.push((repo, removed));
        }
        let target = Target::scope(&crate::repo::Scope::new(
            org.clone(),
            Some(*distro),
            Some(version.clone()),
            None,
        )?);
        let repos: Vec<String> = out.iter().map(|(r, _)| r.repo.to_string()).collect();
        self.audit(AuditEvent::new(action::VERSION_DELETE, target).detail("repos", repos))
            .await;
        Ok(out)
    }

    /// Removes every package of `repo` (or of one arch), one package name at
    /// a time through [`Publisher::remove`].
    async fn remove_every_package(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
    ) -> Result<Vec<Listed>, PublishError> {
        let names: BTreeSet<String> = self
            .list(repo, arch)
            .await?
            .into_iter()
            .map(|l| l.record.name)
            .collect();
        let mut removed = Vec::new();
        for name in names {
            match self.remove(repo, arch, &name).await {
                Ok(listed) => removed.extend(listed),
                // Removed meanwhile by someone else: nothing left to do.
                Err(PublishError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }
}

/// "repository … does not exist", with the closest version or repository of
/// the same distro and how to create it.
pub(crate) fn unknown_repo_message(repo: &RepoId, tree: &OrgTree) -> String {
    let versions = tree.get(repo.distro.as_str());
    let hint = match versions.and_then(|v| v.get(repo.version.as_str())) {
        // The version exists: the repository is what is unknown.
        Some(repos) => closest(repo.repo.as_str(), repos.iter())
            .map(|r| format!("; did you mean repository `{r}`?"))
            .unwrap_or_default(),
        None => versions
            .and_then(|v| closest(repo.version.as_str(), v.keys()))
            .map(|v| format!("; did you mean version `{v}`?"))
            .unwrap_or_default(),
    };
    format!(
        "repository {repo} does not exist{hint} (create it with `packages repo create --org {} \
         --distro {} --version {} --repo {}`, or upload with `--create`)",
        repo.org, repo.distro, repo.version, repo.repo
    )
}

/// The candidate closest to `name`: the same but for case, or within a
/// small edit distance (a third of the name's length, at least 1).
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a String>) -> Option<&'a str> {
    let budget = (name.chars().count() / 3).max(1);
    candidates
        .map(|c| {
            let d = if c.eq_ignore_ascii_case(name) {
                0
            } else {
                edit_distance(&name.to_ascii_lowercase(), &c.to_ascii_lowercase())
            };
            (d, c.as_str())
        })
        .filter(|(d, _)| *d <= budget)
        .min()
        .map(|(_, c)| c)
}

/// Edit distance over chars (insertions, deletions, substitutions and
/// transpositions of two neighbours: `mian` is one edit from `main`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> OrgTree {
        let mut tree = OrgTree::new();
        let alpine = tree.entry("alpine".into()).or_default();
        alpine
            .entry("edge".into())
            .or_default()
            .extend(["main".to_string(), "community".to_string()]);
        alpine
            .entry("v3.20".into())
            .or_default()
            .insert("main".into());
        tree
    }

    fn message(version: &str, repo: &str) -> String {
        unknown_repo_message(
            &RepoId::parse("acme", "alpine", version, repo).unwrap(),
            &tree(),
        )
    }

    #[test]
    fn a_mistyped_version_names_the_closest() {
        assert!(message("edgee", "main").contains("did you mean version `edge`?"));
        assert!(message("3.20", "main").contains("did you mean version `v3.20`?"));
        assert!(message("v3.21", "main").contains("did you mean version `v3.20`?"));
    }

    #[test]
    fn a_mistyped_repo_names_the_closest() {
        let m = message("edge", "comunity");
        assert!(m.contains("did you mean repository `community`?"), "{m}");
    }

    #[test]
    fn nothing_close_gives_no_guess_but_the_fix() {
        let m = message("sid", "main");
        assert!(!m.contains("did you mean"), "{m}");
        assert!(
            m.contains("packages repo create --org acme --distro alpine --version sid --repo main"),
            "{m}"
        );
        assert!(m.contains("--create"), "{m}");
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("edge", "edge"), 0);
        assert_eq!(edit_distance("edgee", "edge"), 1);
        assert_eq!(edit_distance("main", "mian"), 1);
        assert_eq!(edit_distance("main", "mains"), 1);
        assert_eq!(edit_distance("edge", "v3.20"), 5);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
