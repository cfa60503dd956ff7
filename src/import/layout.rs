//! Reading the old service's directory tree (layout and source references:
//! `docs/import.md`). Only names are read here; files are opened when they
//! are imported.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::{Entry, ImportError, Kind, Outcome, relative};

/// How many bytes of a token file the old service read (`GetValidTokens`).
pub const OLD_TOKEN_READ_LIMIT: usize = 256;

/// The old tree, as far as it matters here.
#[derive(Debug)]
pub(super) struct OldTree {
    /// Its orgs, by name.
    pub orgs: Vec<OldOrg>,
    /// What is found but not imported, with the reason.
    pub notes: Vec<Entry>,
}

/// One org: `static/<org>/` and/or `config/<org>/`.
#[derive(Debug)]
pub(super) struct OldOrg {
    /// The folder name.
    pub name: String,
    /// The files of `config/<org>/tokens/`, by name.
    pub tokens: Vec<PathBuf>,
    /// Its distros, by name.
    pub distros: Vec<OldDistro>,
}

/// One distro of an org.
#[derive(Debug)]
pub(super) struct OldDistro {
    /// The folder name.
    pub name: String,
    /// The `*.rsa` files of `config/<org>/<distro>/`, by name.
    pub keys: Vec<PathBuf>,
    /// The arch folders of `static/<org>/<distro>/<version>/<repo>/`.
    pub arches: Vec<OldArch>,
}

/// One arch folder, holding packages.
#[derive(Debug)]
pub(super) struct OldArch {
    /// The version folder name.
    pub version: String,
    /// The repo folder name.
    pub repo: String,
    /// The arch folder name.
    pub arch: String,
    /// The folder.
    pub path: PathBuf,
}

/// Reads the old service's token file as it did: its first 256 bytes, with
/// white space trimmed at both ends (empty: not a token).
pub fn read_old_token(path: &Path) -> std::io::Result<String> {
    let mut bytes = Vec::with_capacity(OLD_TOKEN_READ_LIMIT);
    std::fs::File::open(path)?
        .take(OLD_TOKEN_READ_LIMIT as u64)
        .read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).trim().to_owned())
}

/// A folder's entries `(name, path, is_dir)`, by name; none when it does not exist.
pub(super) fn entries(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>, ImportError> {
    let read = |source| ImportError::Read {
        path: dir.display().to_string(),
        source,
    };
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read(e)),
    };
    let mut out = Vec::new();
    for entry in listing {
        let entry = entry.map_err(read)?;
        // Follows symbolic links, as the old service's reads did.
        let is_dir = entry.path().is_dir();
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
            is_dir,
        ));
    }
    out.sort();
    Ok(out)
}

fn dirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, ImportError> {
    Ok(entries(dir)?
        .into_iter()
        .filter(|(_, _, is_dir)| *is_dir)
        .map(|(name, path, _)| (name, path))
        .collect())
}

impl OldTree {
    /// Reads the tree at `root` (the old service's `-dir`).
    pub fn read(root: &Path) -> Result<Self, ImportError> {
        let (statics, config) = (root.join("static"), root.join("config"));
        if !statics.is_dir() && !config.is_dir() {
            return Err(ImportError::NotATree(format!(
                "{}: neither `static/` nor `config/` is there: not a tree of the old service \
                 (give the directory it ran with, its `-dir`, default /srv/packages)",
                root.display()
            )));
        }
        let mut tree = OldTree {
            orgs: Vec::new(),
            notes: Vec::new(),
        };
        let mut names: Vec<String> = dirs(&statics)?
            .into_iter()
            .chain(dirs(&config)?)
            .map(|(name, _)| name)
            .filter(|name| name != "tokens")
            .collect();
        names.sort();
        names.dedup();
        if config.join("tokens").is_dir() {
            tree.note(
                root,
                &config.join("tokens"),
                "ignored: the old service read only org tokens (config/<org>/tokens/), \
                 never server-wide ones",
            );
        }
        for name in names {
            let org = tree.read_org(root, &name)?;
            tree.orgs.push(org);
        }
        Ok(tree)
    }

    fn note(&mut self, root: &Path, path: &Path, reason: &str) {
        self.notes.push(Entry {
            kind: Kind::Other,
            source: relative(root, path),
            target: None,
            outcome: Outcome::Skipped,
            reason: Some(reason.to_owned()),
        });
    }

    fn read_org(&mut self, root: &Path, name: &str) -> Result<OldOrg, ImportError> {
        let (statics, config) = (
            root.join("static").join(name),
            root.join("config").join(name),
        );
        let tokens = entries(&config.join("tokens"))?
            .into_iter()
            .filter(|(_, _, is_dir)| !is_dir)
            .map(|(_, path, _)| path)
            .collect();
        let mut distro_names: Vec<String> = dirs(&statics)?
            .into_iter()
            .chain(dirs(&config)?)
            .map(|(name, _)| name)
            .filter(|name| name != "tokens")
            .collect();
        distro_names.sort();
        distro_names.dedup();
        for (file, path, is_dir) in entries(&statics)? {
            if !is_dir {
                let reason = if file.ends_with(".pub") {
                    "ignored: public keys are published again from the imported private keys"
                } else {
                    "ignored: not in a distro folder"
                };
                self.note(root, &path, reason);
            }
        }
        let mut distros = Vec::new();
        for distro in distro_names {
            distros.push(self.read_distro(root, &statics.join(&distro), &config.join(&distro))?);
        }
        Ok(OldOrg {
            name: name.to_owned(),
            tokens,
            distros,
        })
    }

    fn read_distro(
        &mut self,
        root: &Path,
        statics: &Path,
        config: &Path,
    ) -> Result<OldDistro, ImportError> {
        let name = statics
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut keys = Vec::new();
        for (file, path, is_dir) in entries(config)? {
            if !is_dir && file.ends_with(".rsa") {
                keys.push(path);
            } else if !is_dir {
                self.note(
                    root,
                    &path,
                    "ignored: the old service signed only with `*.rsa` files of this folder",
                );
            } else if is_dir {
                self.note_deeper_config(root, &path, 0)?;
            }
        }
        for (file, path, is_dir) in entries(statics)? {
            if !is_dir && file.ends_with(".pub") {
                self.note(
                    root,
                    &path,
                    "ignored: public keys are published again from the imported private keys",
                );
            } else if !is_dir {
                self.note(root, &path, "ignored: not in a version folder");
            }
        }
        let mut arches = Vec::new();
        for (version, version_dir) in dirs(statics)? {
            for (repo, repo_dir, is_dir) in entries(&version_dir)? {
                if !is_dir {
                    self.note(root, &repo_dir, "ignored: not in a repo folder");
                    continue;
                }
                for (arch, arch_dir, is_dir) in entries(&repo_dir)? {
                    if !is_dir {
                        self.note(root, &arch_dir, "ignored: not in an arch folder");
                        continue;
                    }
                    arches.push(OldArch {
                        version: version.clone(),
                        repo: repo.clone(),
                        arch,
                        path: arch_dir,
                    });
                }
            }
        }
        Ok(OldDistro { name, keys, arches })
    }

    /// Notes token folders and keys below a distro's config folder (versions
    /// and repos): the old service never read them.
    fn note_deeper_config(
        &mut self,
        root: &Path,
        dir: &Path,
        depth: usize,
    ) -> Result<(), ImportError> {
        if dir.file_name().is_some_and(|n| n == "tokens") {
            self.note(
                root,
                dir,
                "ignored: the old service read only org tokens (config/<org>/tokens/)",
            );
            return Ok(());
        }
        for (file, path, is_dir) in entries(dir)? {
            if is_dir && depth < 2 {
                self.note_deeper_config(root, &path, depth + 1)?;
            } else if !is_dir && (file.ends_with(".rsa") || file.ends_with(".key")) {
                self.note(
                    root,
                    &path,
                    "ignored: the old service signed only with the distro's key \
                     (config/<org>/<distro>/*.rsa), never with a version's or repo's",
                );
            }
        }
        Ok(())
    }
}
