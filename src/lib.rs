//! `packages` publishes signed Linux package repositories into an S3-compatible
//! bucket (or a local directory) so that the bucket, or a CDN in front of it,
//! serves them straight to `apk`.
//!
//! Map of the crate:
//! - [`repo`]: typed names (org, distro, version, repo, arch, file) and the one
//!   place where object keys are built from them ([`repo::Key`]).
//! - [`storage`]: the object-store interface and its backends (local directory, S3).
//! - [`stores`]: the public and private trees, each in its own store or sharing one.
//! - [`formats`]: package formats; [`formats::apk`] reads `.apk` files and renders
//!   a signed `APKINDEX.tar.gz` (pure: bytes in, bytes out).
//! - [`signing`]: RSA signing keys for Alpine indexes and their apk key names.
//! - [`keys`]: where signing keys live in the store and which one signs a repo.
//! - [`index`]: per-package records and regeneration of one repository's index.
//! - [`publish`]: the use cases (upload, remove, list, rebuild) shared by the CLI and the server.
//! - [`tokens`]: API tokens: plaintext shown once, stored as SHA-256 per level, cached look-ups, scopes.
//! - [`api`]: the HTTP API (v1, the compatibility API, health, metrics, OpenAPI).
//! - [`serve`]: the HTTP server: the API next to the public tree.
//! - [`config`]: store locations and limits, read once.
//! - [`doctor`]: store checks (reachability, conditional writes, clock skew, private-tree exposure).
//! - [`apkbuild`]: reads `pkgname`/`pkgver`/`pkgrel` from an `APKBUILD` (for `packages check`).
//! - [`cli`]: the command line.

pub mod api;
pub mod apkbuild;
pub mod cache_rules;
pub mod cli;
pub mod config;
pub mod doctor;
pub mod formats;
pub mod index;
pub mod keys;
pub mod publish;
pub mod repo;
pub mod serve;
pub mod signing;
pub mod storage;
pub mod stores;
pub mod tokens;
