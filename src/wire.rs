//! What crosses the wire between the CLI's remote mode and the server: the
//! JSON bodies of the v1 API (requests and responses, with their OpenAPI
//! schemas), the error body, and the HTTP client ([`client`]).
//!
//! Both sides import these types from here, so the server ([`crate::api`])
//! and the command line ([`crate::cli`]) never import each other. The
//! conversions from the use cases' results ([`crate::publish`]) to these
//! shapes live here too: a handler answers `PackageInfo::from(&listed)` and
//! never looks into a format's record.

pub mod client;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::formats::apk::ApkRecord;
use crate::publish::{Listed, Published};
use crate::repo::RepoId;
use crate::tokens::TokenInfo;

/// The multipart field of an upload that holds the package file.
pub const PACKAGE_FIELD: &str = "package";

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The HTTP status code.
    pub code: u16,
    /// What went wrong, for people.
    pub message: String,
}

/// An organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrgInfo {
    /// Its name.
    pub name: String,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// Its distros (those with at least one repository).
    pub distributions: Vec<String>,
}

/// A new organization.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    /// Its name: lowercase ASCII, `[a-z0-9]` first, then `[a-z0-9._+-]`, at most 64 bytes; not a reserved word.
    pub name: String,
}

/// A distro of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DistroInfo {
    /// The distro (`alpine`).
    pub name: String,
    /// Its versions (those with at least one repository).
    pub versions: Vec<String>,
}

/// A repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RepoInfo {
    /// The repository's name (the same as `repo`).
    pub name: String,
    /// The repository's name.
    pub repo: String,
    /// The distro version.
    pub version: String,
    /// The distro.
    pub distro: String,
    /// The organization.
    pub org: String,
    /// The architectures it serves.
    pub architectures: Vec<String>,
    /// A description (only echoed at creation; not stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl RepoInfo {
    /// The repository `repo`, serving `architectures` (no description).
    pub fn new(repo: &RepoId, architectures: Vec<String>) -> Self {
        Self {
            name: repo.repo.to_string(),
            repo: repo.repo.to_string(),
            version: repo.version.to_string(),
            distro: repo.distro.to_string(),
            org: repo.org.to_string(),
            architectures,
            description: None,
        }
    }
}

/// A repository to create (or to give more arches).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepoSpec {
    /// Architectures to serve (noarch packages go into each).
    #[serde(default)]
    pub architectures: Vec<String>,
}

/// Architectures to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewArches {
    /// The architectures (`x86_64`, `aarch64`, ...).
    pub architectures: Vec<String>,
}

/// One package in the index of one arch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackageInfo {
    /// Package name.
    pub name: String,
    /// Full version, with `-rN`.
    pub version: String,
    /// The arch whose index lists it.
    pub arch: String,
    /// The file name (`<name>-<version>.apk`).
    pub file: String,
    /// File size in bytes.
    pub size: u64,
    /// Installed size in bytes.
    pub installed_size: u64,
    /// The index checksum (`Q1` + base64 SHA-1 of the control member).
    pub checksum: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// The whole index record (the CLI's `list --json` prints it).
    pub record: IndexRecord,
}

impl From<&Listed> for PackageInfo {
    fn from(listed: &Listed) -> Self {
        PackageInfo {
            name: listed.record.name.clone(),
            version: listed.record.version.clone(),
            arch: listed.arch.clone(),
            file: listed.file.clone(),
            size: listed.record.file_size,
            installed_size: listed.record.installed_size,
            checksum: listed.record.checksum.clone(),
            sha256: listed.record.sha256.clone(),
            record: listed.record.clone().into(),
        }
    }
}

impl From<&Published> for PackageInfo {
    fn from(published: &Published) -> Self {
        PackageInfo {
            name: published.record.name.clone(),
            version: published.record.version.clone(),
            arch: published.arch.clone(),
            file: published.file.clone(),
            size: published.record.file_size,
            installed_size: published.record.installed_size,
            checksum: published.record.checksum.clone(),
            sha256: published.record.sha256.clone(),
            record: published.record.clone().into(),
        }
    }
}

/// An index record, as published in `APKINDEX` (the same fields as the CLI's `--json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IndexRecord {
    /// `C:` identity: `Q1` + base64(SHA-1 of the control member).
    pub checksum: String,
    /// `P:` package name.
    pub name: String,
    /// `V:` full version, including `-rN`.
    pub version: String,
    /// `A:` architecture as indexed.
    pub arch: String,
    /// `S:` file size.
    pub file_size: u64,
    /// `I:` installed size.
    pub installed_size: u64,
    /// `T:` description.
    pub description: String,
    /// `U:` project URL.
    pub url: String,
    /// `L:` license.
    pub license: String,
    /// `o:` origin.
    pub origin: String,
    /// `m:` maintainer.
    pub maintainer: String,
    /// `t:` build time, Unix seconds.
    pub build_time: Option<u64>,
    /// `c:` commit.
    pub commit: String,
    /// `k:` provider priority.
    pub provider_priority: Option<u64>,
    /// `D:` dependencies.
    pub depends: Vec<String>,
    /// `p:` provides.
    pub provides: Vec<String>,
    /// `i:` install-if.
    pub install_if: Vec<String>,
    /// Hex SHA-256 of the data member.
    pub datahash: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
}

impl From<ApkRecord> for IndexRecord {
    fn from(r: ApkRecord) -> Self {
        IndexRecord {
            checksum: r.checksum,
            name: r.name,
            version: r.version,
            arch: r.arch,
            file_size: r.file_size,
            installed_size: r.installed_size,
            description: r.description,
            url: r.url,
            license: r.license,
            origin: r.origin,
            maintainer: r.maintainer,
            build_time: r.build_time,
            commit: r.commit,
            provider_priority: r.provider_priority,
            depends: r.depends,
            provides: r.provides,
            install_if: r.install_if,
            datahash: r.datahash,
            sha256: r.sha256,
        }
    }
}

/// What an upload did in one arch (the CLI's `upload --json` shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublishedPackage {
    /// The arch.
    pub arch: String,
    /// The package's file name (`<name>-<version>.apk`, `<name>_<version>_<arch>.deb`).
    pub file: String,
    /// The index record, as published in the signed index.
    pub record: IndexRecord,
    /// Whether the identical package was there already.
    pub unchanged: bool,
}

impl From<Published> for PublishedPackage {
    fn from(p: Published) -> Self {
        PublishedPackage {
            arch: p.arch,
            file: p.file,
            record: p.record.into(),
            unchanged: p.unchanged,
        }
    }
}

/// The outcome of an index regeneration: the signed index is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IndexStatus {
    /// Always `true`: the signed index is written when this is answered.
    pub status: bool,
    /// The arch.
    pub arch: String,
    /// Packages in the index.
    pub packages: usize,
    /// The state's generation.
    pub generation: u64,
}

/// A public signing key, served in the public tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublicKeyInfo {
    /// The apk key name (what goes into `/etc/apk/keys/`).
    pub name: String,
    /// The level it signs: `org/distro[/version[/repo]]`.
    pub level: String,
    /// Its path in the public tree (relative to the server root).
    pub path: String,
    /// The public key, PEM (only when just created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
    /// The level's retiring keys, still published (only when just created).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retiring: Vec<String>,
}

/// A signing key to generate.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// Distro (default `alpine`).
    pub distro: Option<String>,
    /// Version (for a key of one version).
    pub version: Option<String>,
    /// Repo (for a key of one repo; needs `version`).
    pub repo: Option<String>,
    /// RSA key size (default 4096; 2048 to 4096).
    #[serde(default, deserialize_with = "whole_number")]
    pub bits: Option<usize>,
    /// Allow the new key to replace the level's key, or to take over repositories
    /// a wider level's key signs today (default `false`: such a change is refused).
    #[serde(default)]
    pub replace: bool,
}

/// A signing key to import (`packages key import` in remote mode).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportKey {
    /// Distro (default `alpine`).
    pub distro: Option<String>,
    /// Version (for a key of one version).
    pub version: Option<String>,
    /// Repo (for a key of one repo; needs `version`).
    pub repo: Option<String>,
    /// The private key, PEM (e.g. from `abuild-keygen`).
    pub pem: String,
    /// Allow the key to replace the level's key, or to take over repositories
    /// a wider level's key signs today (default `false`: such a change is refused).
    #[serde(default)]
    pub replace: bool,
}

/// An optional count that JSON may write as `3072` or `3072.0` (JSON Schema's
/// `integer` admits both); a fraction or a negative number is refused.
fn whole_number<'de, D>(deserializer: D) -> Result<Option<usize>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(n) = number.as_u64() {
        return usize::try_from(n)
            .map(Some)
            .map_err(serde::de::Error::custom);
    }
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && (0.0..=usize::MAX as f64).contains(&f) => {
            Ok(Some(f as usize))
        }
        _ => Err(serde::de::Error::custom(format!(
            "invalid value `{number}`, expected a whole number"
        ))),
    }
}

/// A token to create.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// A name for people.
    pub name: String,
    /// Organization (none: an admin token).
    pub org: Option<String>,
    /// Distro.
    pub distro: Option<String>,
    /// Version.
    pub version: Option<String>,
    /// Repo.
    pub repo: Option<String>,
    /// Read-only (default: read-write).
    #[serde(default)]
    pub read_only: bool,
    /// Lifetime, e.g. `90d`, `12h` (default: no expiry).
    pub expires_in: Option<String>,
}

/// A created token: the plaintext is in this response only.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The token: shown once, stored nowhere.
    pub token: String,
    /// Its record.
    #[serde(flatten)]
    pub info: TokenInfo,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_record_has_the_fields_of_the_cli_output() {
        let record = ApkRecord {
            checksum: "Q1abc".into(),
            name: "hello".into(),
            version: "1.0-r0".into(),
            arch: "x86_64".into(),
            file_size: 10,
            installed_size: 20,
            description: "d".into(),
            url: "u".into(),
            license: "MIT".into(),
            origin: "hello".into(),
            maintainer: "m".into(),
            build_time: Some(1),
            commit: "c".into(),
            provider_priority: None,
            depends: vec!["a".into()],
            provides: vec![],
            install_if: vec![],
            datahash: "dh".into(),
            sha256: "s".into(),
        };
        assert_eq!(
            serde_json::to_value(IndexRecord::from(record.clone())).unwrap(),
            serde_json::to_value(record).unwrap()
        );
    }
}
