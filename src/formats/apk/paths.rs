//! The data member's file tree, checked the way apk-tools installs it.
//!
//! apk extracts entries in archive order and keeps, per package, the
//! directories it has seen. Both apk-tools 2.14 (`src/database.c`
//! `apk_db_install_archive_entry`, line 2538) and 3.0 (`apk_db_install_file`,
//! line 2839) refuse a file whose directory was not an earlier directory entry
//! of the same package ("no dirent in archive"), a hard link whose target is
//! not an earlier file of it ("no hard link target in archive"), and ignore
//! names starting with `./` or holding `/./`, `/../` or control characters
//! ("ignoring malicious file"): the package then installs broken and `apk add`
//! fails. [`TreeCheck`] refuses all of these at upload, and more that apk would
//! let through but should not: a path through a symlink of the same package
//! (`a -> /etc`, then `a/` and `a/passwd` writes `/etc/passwd` when apk runs
//! without a chroot), device nodes and FIFOs.
//!
//! Memory is bounded: one 8-byte hash per directory, symlink and file seen
//! (hashed with a per-package random key, so collisions cannot be chosen), at
//! most [`ApkLimits::max_entries`](super::ApkLimits::max_entries) entries.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use super::limits::{INSTALLED_SIZE_PER_ENTRY, INSTALLED_SIZE_SLACK, LimitError};
use super::{ApkError, ustar};

/// A relative path without `..` components (and not empty).
pub(super) fn is_safe_path(path: &[u8]) -> bool {
    !path.is_empty() && path[0] != b'/' && !path.split(|&b| b == b'/').any(|c| c == b"..")
}

/// Why apk would skip a name as "malicious", beyond [`is_safe_path`].
fn apk_ignores(path: &[u8]) -> Option<&'static str> {
    if path.iter().any(|&b| b < 0x20 || b == 0x7f) {
        Some("it holds a control character")
    } else if path.starts_with(b"./") || path.windows(3).any(|w| w == b"/./") {
        Some("it starts with `./` or holds `/./`")
    } else {
        None
    }
}

/// What kind of entry a path already names in this package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Directory,
    Symlink,
    File,
}

impl Seen {
    fn name(self) -> &'static str {
        match self {
            Seen::Directory => "directory",
            Seen::Symlink => "symlink",
            Seen::File => "file",
        }
    }
}

/// Follows the data member entry by entry; see the module doc.
pub(super) struct TreeCheck {
    keys: RandomState,
    dirs: HashSet<u64>,
    symlinks: HashSet<u64>,
    files: HashSet<u64>,
    entries: u64,
    max_entries: u64,
    /// Sum of the regular files' sizes.
    content: u64,
}

impl TreeCheck {
    /// A check allowing at most `max_entries` entries.
    pub(super) fn new(max_entries: u64) -> Self {
        Self {
            keys: RandomState::new(),
            dirs: HashSet::new(),
            symlinks: HashSet::new(),
            files: HashSet::new(),
            entries: 0,
            max_entries,
            content: 0,
        }
    }

    fn key(&self, path: &[u8]) -> u64 {
        self.keys.hash_one(path)
    }

    fn seen(&self, path: &[u8]) -> Option<Seen> {
        let key = self.key(path);
        if self.dirs.contains(&key) {
            Some(Seen::Directory)
        } else if self.symlinks.contains(&key) {
            Some(Seen::Symlink)
        } else if self.files.contains(&key) {
            Some(Seen::File)
        } else {
            None
        }
    }

    /// Checks one entry against the ones before it and records it.
    pub(super) fn entry(&mut self, entry: &ustar::Entry) -> Result<(), ApkError> {
        let name = entry.display_name();
        self.entries += 1;
        if self.entries > self.max_entries {
            return Err(LimitError::Entries {
                max: self.max_entries,
            }
            .into());
        }
        if !is_safe_path(&entry.name) {
            return Err(ApkError::UnsafePath(name));
        }
        let refuse = |why: String| ApkError::Uninstallable(format!("{name}: {why}"));
        if let Some(why) = apk_ignores(&entry.name) {
            return Err(refuse(format!(
                "apk ignores this name as malicious ({why}), so the package would install broken"
            )));
        }
        let device = match entry.kind {
            ustar::Kind::CharDevice => Some("a character device"),
            ustar::Kind::BlockDevice => Some("a block device"),
            ustar::Kind::Fifo => Some("a FIFO"),
            _ => None,
        };
        if let Some(what) = device {
            return Err(refuse(format!(
                "{what}; apk creates those with mknod, which fails without CAP_MKNOD (containers, \
                 apk 3 --usermode), and a repository package has no business creating them"
            )));
        }
        let path = match entry.kind {
            ustar::Kind::Directory => trim_slashes(&entry.name),
            _ => &entry.name[..],
        };
        // No component may be a symlink of this package: apk would write through it.
        for (i, _) in path.iter().enumerate().filter(|(_, b)| **b == b'/') {
            let prefix = &path[..i];
            if self.seen(prefix) == Some(Seen::Symlink) {
                return Err(refuse(format!(
                    "its directory {} is a symlink in this package, so apk would write through \
                     the link (apk refuses such a file: \"no dirent in archive\")",
                    String::from_utf8_lossy(prefix)
                )));
            }
        }
        let kind = match entry.kind {
            ustar::Kind::Directory => Seen::Directory,
            ustar::Kind::Symlink => Seen::Symlink,
            _ => Seen::File,
        };
        if kind != Seen::Directory {
            if let Some(slash) = path.iter().rposition(|&b| b == b'/') {
                let parent = &path[..slash];
                if self.seen(parent) != Some(Seen::Directory) {
                    return Err(refuse(format!(
                        "no directory entry for {} comes before it in the package (apk 2.14 and 3 \
                         refuse such a file: \"no dirent in archive\")",
                        String::from_utf8_lossy(parent)
                    )));
                }
            }
        }
        match (self.seen(path), kind) {
            (Some(before), now)
                if before != now && (before == Seen::Directory || now == Seen::Directory) =>
            {
                return Err(refuse(format!(
                    "a {} where an earlier entry of this package is a {} of the same name",
                    now.name(),
                    before.name()
                )));
            }
            _ => {}
        }
        if entry.kind == ustar::Kind::HardLink {
            if !is_safe_path(&entry.link) {
                return Err(ApkError::UnsafePath(format!(
                    "{name} (hard link to {})",
                    String::from_utf8_lossy(&entry.link)
                )));
            }
            if self.seen(&entry.link) != Some(Seen::File) {
                return Err(refuse(format!(
                    "a hard link to {}, which is not a file earlier in this package (apk refuses \
                     it: \"no hard link target in archive\")",
                    String::from_utf8_lossy(&entry.link)
                )));
            }
        }
        if entry.kind == ustar::Kind::Regular {
            self.content = self.content.saturating_add(entry.size);
        }
        let key = self.key(path);
        match kind {
            Seen::Directory => self.dirs.insert(key),
            Seen::Symlink => self.symlinks.insert(key),
            Seen::File => self.files.insert(key),
        };
        Ok(())
    }

    /// The most a package with the entries seen can honestly declare as its
    /// installed `size`: its files' bytes, plus [`INSTALLED_SIZE_PER_ENTRY`]
    /// per entry (block rounding, directory blocks) and [`INSTALLED_SIZE_SLACK`].
    pub(super) fn installed_size_bound(&self) -> u64 {
        self.content
            .saturating_add(self.entries.saturating_mul(INSTALLED_SIZE_PER_ENTRY))
            .saturating_add(INSTALLED_SIZE_SLACK)
    }

    /// Refuses a `.PKGINFO` `size` beyond [`Self::installed_size_bound`].
    pub(super) fn check_installed_size(&self, declared: u64) -> Result<(), ApkError> {
        let max = self.installed_size_bound();
        if declared > max {
            return Err(LimitError::InstalledSize {
                actual: declared,
                max,
                content: self.content,
                entries: self.entries,
            }
            .into());
        }
        Ok(())
    }
}

/// `path` without trailing slashes (directory entries are written `usr/bin/`).
fn trim_slashes(path: &[u8]) -> &[u8] {
    let end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    &path[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: ustar::Kind, link: &str) -> ustar::Entry {
        ustar::Entry {
            name: name.as_bytes().to_vec(),
            kind,
            size: 10,
            link: link.as_bytes().to_vec(),
            sha1: None,
        }
    }

    fn run(entries: &[(&str, ustar::Kind, &str)]) -> Result<TreeCheck, ApkError> {
        let mut check = TreeCheck::new(100);
        for (name, kind, link) in entries {
            check.entry(&entry(name, *kind, link))?;
        }
        Ok(check)
    }

    use ustar::Kind::{Directory as D, HardLink as H, Regular as F, Symlink as L};

    #[test]
    fn a_normal_tree_passes() {
        let check = run(&[
            ("usr/", D, ""),
            ("usr/bin/", D, ""),
            ("usr/bin/a", F, ""),
            ("usr/bin/b", H, "usr/bin/a"),
            ("usr/bin/sh", L, "/bin/busybox"),
            ("usr/bin/sh", L, "busybox"),
            ("top", F, ""),
        ])
        .unwrap();
        assert_eq!(check.content, 20);
        assert_eq!(
            check.installed_size_bound(),
            20 + 7 * INSTALLED_SIZE_PER_ENTRY + INSTALLED_SIZE_SLACK
        );
    }

    fn refused(entries: &[(&str, ustar::Kind, &str)]) -> String {
        match run(entries) {
            Err(ApkError::Uninstallable(msg)) => msg,
            Err(other) => panic!("{entries:?}: {other:?}"),
            Ok(_) => panic!("{entries:?} passed"),
        }
    }

    #[test]
    fn paths_through_symlinks_are_refused() {
        let msg = refused(&[("a", L, "/etc"), ("a/passwd", F, "")]);
        assert!(msg.contains("a/passwd") && msg.contains("symlink"), "{msg}");
        // Even with a directory entry after the link (apk's mkdir sees EEXIST).
        let msg = refused(&[("a", L, "/etc"), ("a/", D, ""), ("a/passwd", F, "")]);
        assert!(msg.contains("a/: a directory where"), "{msg}");
        let msg = refused(&[("a/", D, ""), ("a/b", L, "/"), ("a/b/c/", D, "")]);
        assert!(msg.contains("a/b is a symlink"), "{msg}");
        // A link replacing a directory that already has files in it.
        let msg = refused(&[("a/", D, ""), ("a/x", F, ""), ("a", L, "/etc")]);
        assert!(msg.contains("symlink where"), "{msg}");
    }

    #[test]
    fn files_need_their_directory_first() {
        let msg = refused(&[("usr/bin/a", F, "")]);
        assert!(msg.contains("no directory entry for usr/bin"), "{msg}");
        let msg = refused(&[("usr/", D, ""), ("usr//a", F, "")]);
        assert!(msg.contains("no dirent"), "{msg}");
        let msg = refused(&[("usr/", D, ""), ("usr/a", F, ""), ("usr/a/b", F, "")]);
        assert!(msg.contains("no directory entry for usr/a"), "{msg}");
    }

    #[test]
    fn hard_links_need_an_earlier_file() {
        let msg = refused(&[("b", H, "a"), ("a", F, "")]);
        assert!(msg.contains("hard link to a"), "{msg}");
        let msg = refused(&[("d/", D, ""), ("b", H, "d")]);
        assert!(msg.contains("no hard link target"), "{msg}");
        assert!(matches!(
            run(&[("a", F, ""), ("b", H, "../a")]),
            Err(ApkError::UnsafePath(m)) if m.contains("hard link to ../a")
        ));
    }

    #[test]
    fn devices_fifos_and_names_apk_ignores_are_refused() {
        for (kind, what) in [
            (ustar::Kind::CharDevice, "character device"),
            (ustar::Kind::BlockDevice, "block device"),
            (ustar::Kind::Fifo, "FIFO"),
        ] {
            let msg = refused(&[("null", kind, "")]);
            assert!(msg.starts_with("null: a ") && msg.contains(what), "{msg}");
        }
        for name in ["./etc/", "etc/./x", "a\u{1}b", "del\u{7f}"] {
            let msg = refused(&[(name, F, "")]);
            assert!(msg.contains("malicious"), "{name:?}: {msg}");
        }
        for name in ["../x", "/x", "a/../b", ""] {
            assert!(
                matches!(run(&[(name, F, "")]), Err(ApkError::UnsafePath(_))),
                "{name:?}"
            );
        }
    }

    #[test]
    fn entry_count_and_installed_size_are_capped() {
        let mut check = TreeCheck::new(2);
        check.entry(&entry("a", F, "")).unwrap();
        check.entry(&entry("b", F, "")).unwrap();
        match check.entry(&entry("c", F, "")) {
            Err(ApkError::Limit(e)) => assert!(e.to_string().contains("2 entries"), "{e}"),
            other => panic!("{other:?}"),
        }
        let bound = check.installed_size_bound();
        check.check_installed_size(bound).unwrap();
        match check.check_installed_size(u64::MAX) {
            Err(ApkError::Limit(e)) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("18446744073709551615") && msg.contains(&bound.to_string()),
                    "{msg}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
