//! `packages` publishes signed Linux package repositories into an S3-compatible
//! bucket (or a local directory) so that the bucket, or a CDN in front of it,
//! serves them straight to `apk`.
//!
//! Map of the crate:
//! - [`repo`]: typed names (org, distro, version, repo, arch, file) and the one
//!   place where object keys are built from them ([`repo::Key`]).
//! - [`cache_rules`]: how long each kind of public object may be cached (the one table
//!   `packages serve`, S3 object metadata and the terraform CDN policies follow).
//! - [`storage`]: the object-store interface and its backends (local directory, S3).
//! - [`stores`]: the public and private trees, each in its own store or sharing one.
//! - [`formats`]: package formats; [`formats::apk`] reads `.apk` files and renders
//!   a signed `APKINDEX.tar.gz` (pure: bytes in, bytes out).
//! - [`signing`]: the `Signer` interface (sign bytes with a named key); RSA for apk first.
//! - [`keys`]: key sets per scope in the store, which one signs a repo, safe key changes.
//! - [`core`]: the publish protocol (pending changes, record chunks, manifest,
//!   claim/marker, check, repair), generic over a [`formats::Format`].
//! - [`index`]: the Alpine entry points of the core (one repo arch's signed index).
//! - [`publish`]: the use cases (upload, remove, list, rebuild) shared by the CLI and the server.
//! - [`audit`]: the audit log: one immutable record per change, in the private tree.
//! - [`tokens`]: API tokens: plaintext shown once, stored as SHA-256 per level, cached look-ups, scopes.
//! - [`api`]: the HTTP API (v1, the compatibility API, health, metrics, OpenAPI).
//! - [`serve`]: the HTTP server: the API next to the public tree.
//! - [`browse`]: the static `index.html` browse pages of the public tree (packages,
//!   install snippets, keys), written with the indexes.
//! - [`wire`]: what crosses the wire: the v1 API's JSON bodies and the client of the
//!   CLI's remote mode, shared by [`api`] and [`cli`] so neither imports the other.
//! - [`config`]: store locations and limits, read once.
//! - [`doctor`]: store checks (reachability, conditional writes, clock skew, private-tree exposure).
//! - [`apkbuild`]: reads `pkgname`/`pkgver`/`pkgrel` from an `APKBUILD` (for `packages check`).
//! - [`cli`]: the command line.
//! - [`verify`]: checks a published repository over HTTP as its clients would (`packages verify URL`).
//! - [`import`]: `packages import`: moves a tree of the old service (atlascloud/packages) into the store.
//! - [`leftovers`]: cleans what a killed process left on local disk (staged uploads and writes).

pub mod api;
pub mod apkbuild;
pub mod audit;
pub mod browse;
pub mod cache_rules;
pub mod cli;
pub mod config;
pub mod core;
pub mod doctor;
pub mod formats;
pub mod import;
pub mod index;
pub mod keys;
pub mod leftovers;
pub mod publish;
pub mod repo;
pub mod serve;
pub mod signing;
pub mod storage;
pub mod stores;
pub mod tokens;
pub mod verify;
pub mod wire;
