//! The v1 API, under `/api/v1`: organizations, distros, versions, repos,
//! arches, packages, signing keys and tokens.
//!
//! Reads need a token on the path of what is read (read-only is enough);
//! changes need a read-write token of that level or above; creating and
//! deleting organizations needs an admin token; tokens are managed by admin
//! tokens and by read-write org tokens in their org.
//!
//! One module per resource; [`routes()`] assembles them, and the OpenAPI
//! document is built from the same routes ([`crate::api::routes`]). The JSON
//! bodies are in [`crate::wire`], shared with the CLI's client.

mod audit;
mod deletion;
mod index;
mod key_import;
mod keys;
mod orgs;
mod packages;
mod params;
mod quotas;
mod repo_index;
mod repos;
mod retention;
mod tokens;
mod version_aliases;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;

pub(super) use index::regenerate;
pub use packages::UploadForm;
pub(super) use packages::{listed, publish_upload};
pub use params::{
    ArchPath, ArchQuery, DeleteOrgQuery, DistroPath, LevelQuery, ListQuery, OrgPath, PackagePath,
    ReindexQuery, RepoPath, TokenPath, VersionPath,
};
pub(super) use repos::{distro_info, repos_of};

/// The v1 routes.
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(orgs::list_orgs, orgs::create_org))
        .routes(routes!(orgs::get_org, orgs::delete_org))
        .routes(routes!(repos::list_distros))
        .routes(routes!(repos::get_distro))
        .routes(routes!(repos::list_versions))
        .routes(routes!(deletion::delete_version))
        .routes(routes!(repos::list_repos))
        .routes(routes!(
            repos::get_repo,
            repos::put_repo,
            deletion::delete_repo
        ))
        .routes(routes!(repos::list_arches, repos::add_arches))
        .routes(routes!(packages::list_packages, packages::upload_package))
        .routes(routes!(packages::delete_package))
        .routes(routes!(deletion::delete_arch))
        .routes(routes!(index::reindex))
        .routes(routes!(version_aliases::list_aliases))
        .routes(routes!(
            version_aliases::put_alias,
            version_aliases::delete_alias
        ))
        .routes(routes!(keys::list_keys, keys::create_key))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(
            quotas::get_quotas,
            quotas::put_quota,
            quotas::delete_quota
        ))
        .routes(routes!(quotas::get_usage))
        // The remote mode of `key import`, `index check` and `index repair`.
        .routes(routes!(key_import::import_key))
        .routes(routes!(repo_index::check_indexes))
        .routes(routes!(repo_index::repair_indexes))
        .routes(routes!(audit::server_audit))
        .routes(routes!(audit::org_audit))
        .routes(routes!(retention::get_retention, retention::put_retention))
        .routes(routes!(retention::apply_retention))
}
