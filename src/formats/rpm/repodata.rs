//! TEMP STUB (lead): replaced by helper's repodata.rs at merge.
#![allow(missing_docs, dead_code, unused)]
use super::RpmPackage;
pub struct PublishedFile {
    pub location_href: String,
    pub sha256: String,
    pub size: u64,
    pub time_file: u64,
    pub header_start: u64,
    pub header_end: u64,
}
pub struct PackageXml {
    pub primary: String,
    pub filelists: String,
    pub other: String,
}
pub fn package_xml(pkg: &RpmPackage, file: &PublishedFile) -> PackageXml {
    todo!()
}
pub fn primary_head(count: usize) -> String {
    todo!()
}
pub fn filelists_head(count: usize) -> String {
    todo!()
}
pub fn other_head(count: usize) -> String {
    todo!()
}
pub const PRIMARY_TAIL: &str = "</metadata>\n";
pub const FILELISTS_TAIL: &str = "</filelists>\n";
pub const OTHER_TAIL: &str = "</otherdata>\n";
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepomdData {
    pub kind: String,
    pub href: String,
    pub checksum: String,
    pub size: u64,
    pub open_checksum: Option<String>,
    pub open_size: Option<u64>,
    pub timestamp: u64,
}
pub fn repomd_xml(revision: u64, data: &[RepomdData]) -> String {
    todo!()
}
#[derive(Debug)]
pub struct RepodataError;
pub fn parse_repomd(text: &str) -> Result<Vec<RepomdData>, RepodataError> {
    todo!()
}
