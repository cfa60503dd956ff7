//! Browse pages: a static `index.html` in the public folders, so a person can
//! see what is published (and how to install it) from the bucket, the CDN or
//! `packages serve`.
//!
//! | level | folder | lists | written |
//! |---|---|---|---|
//! | org | `<org>/` | distros | [`ensure_listed`] |
//! | distro | `<org>/<distro>/` | versions (Debian: suites, `dists/<suite>/`) | [`ensure_listed`] |
//! | version | `<org>/<distro>/<version>/` (Fedora: `linux/releases/<version>/`) | repos | [`ensure_listed`] |
//! | repo | the repo folder (Alpine, RPM) | arches, install snippet, keys | [`ensure_listed`] |
//! | root | an Alpine or RPM repo arch folder; a Debian `dists/<suite>/` | packages, install snippet, keys | with the index, by the commit |
//!
//! # Guarantees
//!
//! *Root pages* are written by the commit that writes the index
//! ([`crate::core`], `Format::browse_page`), rendered from the very parts
//! the index is assembled from: the page is written right after the root
//! file and before the marker is completed. So a page never lists a package
//! the index it was written with does not; a crash between the two leaves
//! the marker incomplete and the next publish rewrites both. Two writers
//! racing may leave the older page last (a writer that loses the marker
//! does not publish again: that would interleave root files and detached
//! signatures such as `repomd.xml.asc`); the next publish corrects it, and
//! the page never names a package no index named. Without conditional writes (Garage) the page follows the index the
//! same way the index follows the records: the last writer wins and the
//! loop of `reindex` converges.
//!
//! *Upper pages* list their children from a listing (the repo page: its
//! `repo.json`; the others: the private tree below them). After every
//! commit, [`ensure_listed`] checks that the page above the root names it
//! (once per process and root: no request on a warm process) and else
//! rewrites the pages from the org down, each from a fresh listing, then
//! lists again and rewrites until the listing did not change while it
//! wrote. Every writer does so after its child exists, so the last page
//! written names every child that existed when it was written: concurrent
//! creators never lose an entry. Children that go away (a deleted version)
//! stay listed until [`refresh`] rewrites the level.
//!
//! Every piece of user data is escaped ([`html::escape`]); links are
//! relative, so the pages work at any prefix of a bucket website or CDN.

pub mod html;
pub mod rows;
mod tree;

use std::fmt::Write as _;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::keys::KeySet;
use crate::repo::{
    Distro, Family, Key, Org, RepoArch, RepoId, STATIC_PREFIX, Segment, SuiteId, rpm_arch_dir,
    rpm_repo_dir, rpm_repo_id,
};
use crate::signing::{Algorithm, Signer};
use html::{Doc, escape, href, relative};
pub use rows::Row;
pub use tree::{ensure_listed, refresh};

/// The environment variable naming the URL the public tree is served at;
/// install snippets start from it when set.
pub const PUBLIC_URL_ENV: &str = "PACKAGES_PUBLIC_URL";

/// Most packages one page lists (the first by name); the index has them all.
pub const MAX_ROWS: usize = 3000;

/// A folder that has a browse page.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// An organization.
    Org(Org),
    /// A distro of an organization.
    Distro(Org, Distro),
    /// A version of an Alpine or RPM distro (Debian suites are roots).
    Version(Org, Distro, Segment),
    /// An Alpine or RPM repository.
    Repo(RepoId),
    /// An Alpine or RPM repo arch (a root: its page lists packages).
    Arch(RepoArch),
    /// A Debian-style suite (a root: its page lists packages).
    Suite(SuiteId),
}

impl Level {
    /// The folder, relative to the public tree, without `/` at either end.
    pub fn dir(&self) -> String {
        match self {
            Level::Org(org) => org.to_string(),
            Level::Distro(org, distro) => format!("{org}/{distro}"),
            Level::Version(org, distro, version) if distro.as_str() == "fedora" => {
                format!("{org}/fedora/linux/releases/{version}")
            }
            Level::Version(org, distro, version) => format!("{org}/{distro}/{version}"),
            Level::Repo(repo) if repo.distro.family() == Family::Rpm => rpm_repo_dir(repo),
            Level::Repo(repo) => repo.path(),
            Level::Arch(arch) if arch.repo.distro.family() == Family::Rpm => rpm_arch_dir(arch),
            Level::Arch(arch) => arch.path(),
            Level::Suite(suite) => format!("{}/dists/{}", suite.distro_path(), suite.suite),
        }
    }

    /// The page's object.
    pub fn key(&self) -> Key {
        Key::Page { dir: self.dir() }
    }

    /// The name shown for this level.
    pub fn label(&self) -> String {
        match self {
            Level::Org(org) => org.to_string(),
            Level::Distro(_, distro) => distro.to_string(),
            Level::Version(_, _, version) => version.to_string(),
            Level::Repo(repo) => repo.repo.to_string(),
            Level::Arch(arch) => arch.arch.to_string(),
            Level::Suite(suite) => suite.suite.to_string(),
        }
    }

    /// The level whose page lists this one.
    pub fn parent(&self) -> Option<Level> {
        match self {
            Level::Org(_) => None,
            Level::Distro(org, _) => Some(Level::Org(org.clone())),
            Level::Version(org, distro, _) => Some(Level::Distro(org.clone(), *distro)),
            Level::Repo(repo) => Some(Level::Version(
                repo.org.clone(),
                repo.distro,
                repo.version.clone(),
            )),
            Level::Arch(arch) => Some(Level::Repo(arch.repo.clone())),
            Level::Suite(suite) => Some(Level::Distro(suite.org.clone(), suite.distro)),
        }
    }

    /// Every level above, the org first.
    pub fn ancestors(&self) -> Vec<Level> {
        let mut out = Vec::new();
        let mut at = self.parent();
        while let Some(level) = at {
            at = level.parent();
            out.push(level);
        }
        out.reverse();
        out
    }

    /// The link to this level's page from its parent's page (`x86_64/`,
    /// Fedora's `linux/releases/40/`, Debian's `dists/bookworm/`).
    pub fn link_from_parent(&self) -> Option<String> {
        let parent = self.parent()?;
        Some(folder_link(&parent.dir(), &self.dir()))
    }

    /// The repository whose install snippet this level's page shows.
    fn repo(&self) -> Option<&RepoId> {
        match self {
            Level::Repo(repo) => Some(repo),
            Level::Arch(arch) => Some(&arch.repo),
            _ => None,
        }
    }
}

/// The relative link from the page in `from` to the folder `to`, ending in `/`.
fn folder_link(from: &str, to: &str) -> String {
    let link = relative(from, &format!("{to}/index.html"));
    let link = link.strip_suffix("index.html").unwrap_or(&link);
    if link.is_empty() {
        "./".to_owned()
    } else {
        link.to_owned()
    }
}

/// Links to the pages above `level`, the org first.
fn crumbs(level: &Level) -> Vec<(String, String)> {
    let here = level.dir();
    level
        .ancestors()
        .iter()
        .map(|a| (a.label(), folder_link(&here, &a.dir())))
        .collect()
}

/// The page title: the path of names down to `level`.
fn title(level: &Level) -> String {
    let mut names: Vec<String> = level.ancestors().iter().map(Level::label).collect();
    names.push(level.label());
    names.join(" / ")
}

/// Where the public tree is served, for install snippets.
fn base_line(level: &Level) -> String {
    match std::env::var(PUBLIC_URL_ENV)
        .ok()
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .filter(|u| !u.is_empty())
    {
        Some(url) => format!("BASE='{url}'"),
        None => format!(
            "BASE=https://packages.example.com   # where this tree is served: this page is $BASE/{}/",
            level.dir()
        ),
    }
}

/// One public signing key as a page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyInfo {
    /// The file name clients install it as.
    file: String,
    /// Its path in the public tree.
    path: String,
    /// Its fingerprint (OpenPGP's; for RSA the SHA-256 of the DER public key).
    fingerprint: String,
    /// Whether it signs new indexes (else it is retiring).
    active: bool,
}

/// The keys of `set` of the algorithm `family` signs with.
fn key_infos(set: &KeySet, family: Family) -> Vec<KeyInfo> {
    let algorithm = match family {
        Family::Apk => Algorithm::RsaSha256,
        Family::Deb | Family::Rpm => Algorithm::OpenPgp,
    };
    set.keys()
        .iter()
        .filter(|k| k.key.algorithm() == algorithm)
        .filter_map(|k| {
            let public = k.key.public_key();
            let fingerprint = match k.key.as_pgp() {
                Some(pgp) => pgp.fingerprint().to_owned(),
                None => hex::encode(Sha256::digest(pem_der(public.text()?)?)),
            };
            let path = Key::PublicKey {
                scope: set.scope().clone(),
                name: Segment::parse("key file name", &public.file_name).ok()?,
            }
            .path();
            Some(KeyInfo {
                path: path.strip_prefix(STATIC_PREFIX).unwrap_or(&path).to_owned(),
                file: public.file_name,
                fingerprint,
                active: k.state == crate::keys::KeyState::Active,
            })
        })
        .collect()
}

/// The DER bytes inside a PEM block.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .ok()
}

/// The install snippet of the repository or suite a page shows.
fn install_lines(level: &Level, keys: &[KeyInfo], components: &[String]) -> Vec<String> {
    let mut lines = vec![base_line(level)];
    match level {
        Level::Suite(suite) => {
            let name = format!("{}-{}", suite.org, suite.distro);
            let keyring = format!("/etc/apt/keyrings/{name}.gpg");
            let components = if components.is_empty() {
                "main".to_owned()
            } else {
                components.join(" ")
            };
            lines.push("sudo mkdir -p /etc/apt/keyrings".to_owned());
            lines.push(format!(
                "sudo wget -O {keyring} \"$BASE/{}/archive-keyring.gpg\"",
                level.dir()
            ));
            lines.push(format!(
                "echo \"deb [signed-by={keyring}] $BASE/{} {} {components}\" | sudo tee /etc/apt/sources.list.d/{name}-{}.list",
                suite.distro_path(),
                suite.suite,
                suite.suite
            ));
            lines.push("sudo apt update".to_owned());
        }
        _ => match level.repo() {
            Some(repo) if repo.distro.family() == Family::Rpm => {
                let id = rpm_repo_id(repo);
                let dir = rpm_repo_dir(repo);
                lines.push(format!(
                    "sudo curl -o /etc/yum.repos.d/{id}.repo \"$BASE/{dir}/{id}.repo\""
                ));
                lines.push(format!(
                    "sudo rpm --import \"$BASE/{dir}/RPM-GPG-KEY-{id}.asc\""
                ));
                lines.push("sudo dnf makecache".to_owned());
            }
            Some(repo) => {
                for key in keys {
                    lines.push(format!(
                        "wget -O /etc/apk/keys/{} \"$BASE/{}\"",
                        key.file, key.path
                    ));
                }
                lines.push(format!(
                    "echo \"$BASE/{}\" >> /etc/apk/repositories",
                    repo.path()
                ));
                lines.push("apk update".to_owned());
            }
            None => lines.clear(),
        },
    }
    lines
}

/// The install and key sections of a repository or root page.
fn install_sections(doc: &mut Doc, level: &Level, keys: Option<&KeySet>, components: &[String]) {
    let family = match level {
        Level::Suite(suite) => suite.distro.family(),
        _ => match level.repo() {
            Some(repo) => repo.distro.family(),
            None => return,
        },
    };
    let infos = keys.map(|set| key_infos(set, family)).unwrap_or_default();
    doc.heading("Install");
    doc.pre(&install_lines(level, &infos, components));
    doc.heading("Signing keys");
    if infos.is_empty() {
        doc.para("No signing key found.");
        return;
    }
    let here = level.dir();
    let mut table =
        String::from("<table>\n<tr><th>Key</th><th>Fingerprint</th><th>State</th></tr>\n");
    for key in &infos {
        let _ = writeln!(
            table,
            "<tr><td><a href=\"{}\">{}</a></td><td><code>{}</code></td><td>{}</td></tr>",
            escape(&href(&relative(&here, &key.path))),
            escape(&key.file),
            escape(&key.fingerprint),
            if key.active { "active" } else { "retiring" }
        );
    }
    table.push_str("</table>\n");
    doc.raw(&table);
}

/// The page of a root (a repo arch or a suite): its packages from `parts`
/// (each part's rows), the install snippet and the keys.
pub fn root_page(level: &Level, parts: &[Arc<Vec<Row>>], keys: Option<&KeySet>) -> Vec<u8> {
    let mut all: Vec<&Row> = parts.iter().flat_map(|p| p.iter()).collect();
    let total = all.len();
    if all.len() > MAX_ROWS {
        all.select_nth_unstable_by(MAX_ROWS, |a, b| a.sort_key().cmp(&b.sort_key()));
        all.truncate(MAX_ROWS);
    }
    all.sort_unstable_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let mut components: Vec<String> = parts
        .iter()
        .flat_map(|p| p.iter().filter_map(|r| r.component.clone()))
        .collect();
    components.sort();
    components.dedup();
    let mut doc = Doc::new(&title(level), &crumbs(level));
    install_sections(&mut doc, level, keys, &components);
    doc.heading("Packages");
    doc.para(&if total > all.len() {
        format!(
            "{total} packages; the first {} by name are listed here, the index lists them all.",
            all.len()
        )
    } else {
        format!("{total} packages.")
    });
    let with_component = level_is_suite(level);
    let mut table = String::with_capacity(all.len() * 200 + 256);
    table.push_str("<table>\n<tr><th>Name</th><th>Version</th><th>Arch</th>");
    if with_component {
        table.push_str("<th>Component</th>");
    }
    table.push_str("<th>Size</th><th>Date</th><th>Description</th></tr>\n");
    for row in all {
        let _ = write!(
            table,
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td>",
            escape(&href(&row.file)),
            escape(&row.name),
            escape(&row.version),
            escape(&row.arch)
        );
        if with_component {
            let _ = write!(
                table,
                "<td>{}</td>",
                escape(row.component.as_deref().unwrap_or(""))
            );
        }
        let _ = writeln!(
            table,
            "<td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            html::size(row.size),
            row.time.map(html::date).unwrap_or_default(),
            escape(&row.description)
        );
    }
    table.push_str("</table>\n");
    doc.raw(&table);
    doc.finish()
}

/// The page of the root at `level` from a commit's parts: `read` gives the
/// rows of one part, kept per process under its id (parts never change
/// under one id), so a commit reads only the parts it changed.
pub fn root_page_from_parts<P>(
    level: &Level,
    parts: &[P],
    ids: &[String],
    keys: Option<&KeySet>,
    read: impl Fn(&P) -> Vec<Row>,
) -> (Key, Vec<u8>) {
    let dir = level.dir();
    let rows: Vec<Arc<Vec<Row>>> = parts
        .iter()
        .zip(ids)
        .map(|(part, id)| rows::cached(format!("{dir}/{id}"), || read(part)))
        .collect();
    (level.key(), root_page(level, &rows, keys))
}

fn level_is_suite(level: &Level) -> bool {
    matches!(level, Level::Suite(_))
}

/// The page of an upper level listing `children` (`(label, link)`), with the
/// install snippet and keys on a repository's page.
pub fn list_page(level: &Level, children: &[(String, String)], keys: Option<&KeySet>) -> Vec<u8> {
    let mut doc = Doc::new(&title(level), &crumbs(level));
    install_sections(&mut doc, level, keys, &[]);
    doc.heading(match level {
        Level::Org(_) => "Distros",
        Level::Distro(_, d) if d.family() == Family::Deb => "Suites",
        Level::Distro(..) => "Versions",
        Level::Version(..) => "Repositories",
        _ => "Architectures",
    });
    if children.is_empty() {
        doc.para("Nothing published here yet.");
    } else {
        let links: Vec<(String, String)> = children
            .iter()
            .map(|(label, link)| (label.clone(), href(link)))
            .collect();
        doc.links(&links);
    }
    doc.finish()
}

/// Whether a page's HTML links to the child folder `link` (as [`list_page`] writes it).
pub fn page_lists(page: &[u8], link: &str) -> bool {
    let needle = format!("href=\"{}\"", escape(&href(link)));
    std::str::from_utf8(page).is_ok_and(|p| p.contains(&needle))
}

#[cfg(test)]
mod tests;
