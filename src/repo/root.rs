//! [`RootId`]: the unit the publish protocol replaces at once.

use std::fmt;

use super::{Arch, Org, RepoArch, RepoId, Scope, SuiteId};

/// Folder name of a repository's settings root. An arch name cannot contain
/// `.`, so it never collides with an arch folder.
const SETTINGS_FOLDER: &str = "settings.d";

/// Folder name of a Debian suite's root. Version and repo names start with a
/// letter or digit, so `_suite` never collides with a component folder.
const SUITE_FOLDER: &str = "_suite";

/// A root: a set of records published together as one set of files, changed
/// through the protocol of `src/core` (pending changes, chunks, manifest,
/// marker). Alpine (and RPM) sign one root per repo arch; a repository's
/// settings are a root of their own, so concurrent settings changes go
/// through the same protocol as packages. Debian's suites come next.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RootId {
    /// One arch of a repository.
    Arch(RepoArch),
    /// A repository's settings (arches, noarch packages).
    Settings(RepoId),
    /// A Debian-style suite: every component and arch, signed as one
    /// `InRelease`.
    Suite(SuiteId),
}

impl RootId {
    /// The repository the root belongs to (a suite spans several).
    pub fn repo(&self) -> Option<&RepoId> {
        match self {
            RootId::Arch(arch) => Some(&arch.repo),
            RootId::Settings(repo) => Some(repo),
            RootId::Suite(_) => None,
        }
    }

    /// The narrowest key scope holding the root: its repository, or the
    /// suite's version.
    pub fn scope(&self) -> Scope {
        match self {
            RootId::Arch(arch) => arch.repo.scope(),
            RootId::Settings(repo) => repo.scope(),
            RootId::Suite(suite) => suite.scope(),
        }
    }

    /// The repo arch, for a root that is one.
    pub fn arch(&self) -> Option<&RepoArch> {
        match self {
            RootId::Arch(arch) => Some(arch),
            RootId::Settings(_) | RootId::Suite(_) => None,
        }
    }

    /// The folder of the root's objects below the tree prefix.
    pub(crate) fn path(&self) -> String {
        match self {
            RootId::Arch(arch) => arch.path(),
            RootId::Settings(repo) => format!("{}/{SETTINGS_FOLDER}", repo.path()),
            RootId::Suite(suite) => format!("{}/{SUITE_FOLDER}", suite.path()),
        }
    }

    /// The root whose folder (below the tree prefix) is `path`.
    pub(crate) fn parse_path(path: &str) -> Option<RootId> {
        let parts: Vec<&str> = path.split('/').collect();
        if let [org, distro, suite, last] = parts.as_slice() {
            if *last != SUITE_FOLDER {
                return None;
            }
            let distro = super::Distro::parse(distro).ok()?;
            return SuiteId::new(Org::parse(org).ok()?, distro, suite)
                .ok()
                .map(RootId::Suite);
        }
        let [org, distro, version, repo, last] = parts.as_slice() else {
            return None;
        };
        let repo = RepoId::parse(org, distro, version, repo).ok()?;
        if *last == SETTINGS_FOLDER {
            return Some(RootId::Settings(repo));
        }
        Some(RootId::Arch(repo.arch(Arch::parse(last).ok()?)))
    }
}

impl From<RepoArch> for RootId {
    fn from(arch: RepoArch) -> Self {
        RootId::Arch(arch)
    }
}

impl From<&RepoArch> for RootId {
    fn from(arch: &RepoArch) -> Self {
        RootId::Arch(arch.clone())
    }
}

impl fmt::Display for RootId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootId::Arch(arch) => arch.fmt(f),
            RootId::Settings(repo) => write!(f, "{repo} (settings)"),
            RootId::Suite(suite) => write!(f, "{suite} (suite)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        let repo = RepoId::parse("acme", "alpine", "v3.20", "main").unwrap();
        let suite = SuiteId::new(
            Org::parse("acme").unwrap(),
            crate::repo::Distro::parse("debian").unwrap(),
            "bookworm",
        )
        .unwrap();
        for root in [
            RootId::Suite(suite),
            RootId::Settings(repo.clone()),
            RootId::Arch(repo.arch(Arch::parse("x86_64").unwrap())),
        ] {
            assert_eq!(RootId::parse_path(&root.path()), Some(root));
        }
    }
}
