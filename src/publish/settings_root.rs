//! A repository's settings as a root of the publish core, so concurrent
//! settings changes (first uploads to new arches, noarch packages, removals)
//! go through pending changes like packages do and none is lost, even on
//! stores that ignore conditional writes.
//!
//! Records are entries `arch/<name>` and `noarch/<file>`; the root file is
//! `repo.json` in the private tree ([`RepoSettings`], the same JSON older
//! releases wrote in place), unsigned. A repo whose `repo.json` an older
//! release wrote starts from it ([`Format::base_records`]).

use serde::{Deserialize, Serialize};

use super::RepoSettings;
use crate::core::RootProblem;
use crate::formats::apk::ApkRecord;
use crate::formats::{Format, Part, RenderedRoot};
use crate::repo::{Key, RootId};

/// One setting of a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingsEntry {
    /// The repo serves this arch.
    Arch(String),
    /// A noarch package, copied into every arch (also ones added later).
    Noarch(Box<ApkRecord>),
}

impl SettingsEntry {
    /// The entry key of an arch.
    pub fn arch_key(arch: &str) -> String {
        format!("arch/{arch}")
    }

    /// The entry key of a noarch package.
    pub fn noarch_key(file: &str) -> String {
        format!("noarch/{file}")
    }
}

/// Nothing is cached per chunk: the settings are small.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoMeta {}

/// The settings "format": one chunk, `repo.json` as the root file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettingsFormat;

fn settings_of<'a>(entries: impl IntoIterator<Item = &'a SettingsEntry>) -> RepoSettings {
    let mut settings = RepoSettings::default();
    for entry in entries {
        match entry {
            SettingsEntry::Arch(arch) => {
                settings.arches.insert(arch.clone());
            }
            SettingsEntry::Noarch(record) => {
                settings
                    .noarch
                    .insert(record.file_name(), record.as_ref().clone());
            }
        }
    }
    settings
}

impl Format for SettingsFormat {
    type Record = SettingsEntry;
    type PartMeta = NoMeta;
    type SignKey = ();

    fn pick_key(&self, _set: &crate::keys::KeySet) -> Result<(), crate::keys::KeyError> {
        Ok(())
    }

    fn entry_key(&self, record: &SettingsEntry) -> String {
        match record {
            SettingsEntry::Arch(arch) => SettingsEntry::arch_key(arch),
            SettingsEntry::Noarch(record) => SettingsEntry::noarch_key(&record.file_name()),
        }
    }

    fn chunks(&self) -> u32 {
        1
    }

    fn chunk_of(&self, _entry: &str) -> u32 {
        0
    }

    fn render_part(&self, records: &[&SettingsEntry]) -> Part<NoMeta> {
        Part {
            bytes: serde_json::to_vec(records).expect("settings entries encode as JSON"),
            meta: NoMeta {},
        }
    }

    fn root_file(&self, root: &RootId) -> Key {
        Key::RepoSettings(root.repo().expect("a settings root has a repo").clone())
    }

    fn render_root(&self, _root: &RootId, parts: &[Part<NoMeta>]) -> RenderedRoot {
        let mut entries = Vec::new();
        for part in parts {
            // Parts are rendered by `render_part` just above (or read back
            // from objects it wrote); an unreadable one renders as empty and
            // `repair` re-renders it from the records.
            let list: Vec<SettingsEntry> = serde_json::from_slice(&part.bytes).unwrap_or_default();
            entries.extend(list);
        }
        let body =
            serde_json::to_vec(&settings_of(&entries)).expect("repo settings encode as JSON");
        RenderedRoot {
            files: Vec::new(),
            body,
            spans: Vec::new(),
        }
    }

    fn reusable_body(&self, _published: &[u8]) -> Option<Vec<u8>> {
        None
    }

    fn signed(&self) -> bool {
        false
    }

    fn sign(&self, body: Vec<u8>, _key: &()) -> Result<Vec<u8>, crate::keys::KeyError> {
        Ok(body)
    }

    fn verify(
        &self,
        _published: &[u8],
        _records: &[&SettingsEntry],
        _key: Option<&()>,
    ) -> Vec<RootProblem> {
        vec![RootProblem::Differs]
    }

    fn has_legacy_root_files(&self) -> bool {
        true
    }

    fn base_records(&self, published: &[u8]) -> Option<Vec<SettingsEntry>> {
        let settings: RepoSettings = serde_json::from_slice(published).ok()?;
        let mut out: Vec<SettingsEntry> = settings
            .arches
            .into_iter()
            .map(SettingsEntry::Arch)
            .collect();
        out.extend(
            settings
                .noarch
                .into_values()
                .map(|r| SettingsEntry::Noarch(Box::new(r))),
        );
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_json_older_releases_wrote() {
        let entries = [
            SettingsEntry::Arch("x86_64".to_owned()),
            SettingsEntry::Arch("aarch64".to_owned()),
        ];
        let refs: Vec<&SettingsEntry> = entries.iter().collect();
        let part = SettingsFormat.render_part(&refs);
        let repo = crate::repo::RepoId::parse("acme", "alpine", "edge", "main").unwrap();
        let root = SettingsFormat.render_root(&RootId::Settings(repo), &[part]);
        let expected = RepoSettings {
            arches: ["aarch64".to_owned(), "x86_64".to_owned()].into(),
            noarch: Default::default(),
        };
        assert_eq!(root.body, serde_json::to_vec(&expected).unwrap());
        let back = SettingsFormat.base_records(&root.body).unwrap();
        assert_eq!(back.len(), 2);
    }
}
