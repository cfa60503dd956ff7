//! How a failed command ends: the message on stderr (`error: ...`), or with
//! `--json` one object `{"error": {"code", "message"}}` on stdout; and the
//! exit status (1, or 2 for `check`, whose 1 means "not published").

use crate::config::StoreError;
use crate::publish::PublishError;
use crate::repo::NameError;
use crate::storage::StorageError;
use crate::wire::client::ClientError;

/// The exit status of a failed command: 2 for `check` (1 there means "not
/// published"), 1 for every other command.
pub fn failure_status(command: &super::Command) -> u8 {
    match command {
        super::Command::Check(_) => 2,
        _ => 1,
    }
}

/// Prints a failure: `error: <message with its causes>` on stderr, or with
/// `json` the object `{"error": {"code": CODE, "message": MESSAGE}}` on stdout.
pub fn print_failure(error: &anyhow::Error, json: bool) {
    let message = match error.downcast_ref::<ClientError>() {
        // In JSON the code carries the status: the server's own message is
        // what direct mode prints.
        Some(ClientError::Api { message, .. }) if json => message.clone(),
        _ => format!("{error:#}"),
    };
    if json {
        let body = serde_json::json!({
            "error": { "code": error_code(error), "message": message }
        });
        println!("{body}");
    } else {
        eprintln!("error: {message}");
    }
}

/// A short, stable code for a failure (`store_not_initialized`,
/// `s3_no_bucket`, `not_found`, ...; `error` when nothing more specific fits).
pub fn error_code(error: &anyhow::Error) -> &'static str {
    for cause in error.chain() {
        if let Some(e) = cause.downcast_ref::<StoreError>() {
            return e.code();
        }
        if let Some(e) = cause.downcast_ref::<PublishError>() {
            if let Some(code) = publish_code(e) {
                return code;
            }
        }
        if let Some(e) = cause.downcast_ref::<StorageError>() {
            return storage_code(e);
        }
        if cause.downcast_ref::<NameError>().is_some() {
            return "invalid_name";
        }
        if let Some(e) = cause.downcast_ref::<ClientError>() {
            return match e.status().map(|s| s.as_u16()) {
                Some(401) => "unauthorized",
                Some(403) => "forbidden",
                Some(404) => "not_found",
                Some(409) => "conflict",
                Some(_) => "server_refused",
                None => "server_unreachable",
            };
        }
    }
    "error"
}

fn publish_code(error: &PublishError) -> Option<&'static str> {
    Some(match error {
        PublishError::OrgNotFound(_) | PublishError::NotFound(_) => "not_found",
        PublishError::OrgExists(_) => "already_exists",
        PublishError::OrgNotEmpty(_) => "not_empty",
        PublishError::Conflict { .. }
        | PublishError::PoolConflict { .. }
        | PublishError::RecentlyRemoved { .. } => "conflict",
        PublishError::Name(_) | PublishError::InvalidAlias(_) => "invalid_name",
        PublishError::Package { .. }
        | PublishError::Deb { .. }
        | PublishError::Rpm { .. }
        | PublishError::ArchMismatch { .. }
        | PublishError::NoArchTargets { .. } => "invalid_package",
        PublishError::TooManyArches { .. } => "too_many_arches",
        PublishError::QuotaExceeded { .. } => "quota_exceeded",
        PublishError::InvalidQuota(_) => "invalid_quota",
        PublishError::Storage(e) => storage_code(e),
        _ => return None,
    })
}

fn storage_code(error: &StorageError) -> &'static str {
    match error {
        StorageError::NotFound { .. } => "not_found",
        StorageError::AlreadyExists { .. } | StorageError::Precondition { .. } => "conflict",
        StorageError::InvalidKey { .. } => "invalid_name",
        StorageError::InvalidUrl { .. } => "invalid_storage_url",
        StorageError::InvalidSetting { .. } => "invalid_setting",
        StorageError::Backend { message, .. } => {
            crate::storage::problem_code(message).unwrap_or("storage")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_come_from_the_first_known_cause() {
        let e = anyhow::Error::new(PublishError::OrgNotFound("acme".into())).context("listing");
        assert_eq!(error_code(&e), "not_found");
        let e = anyhow::Error::new(StorageError::InvalidUrl {
            url: "file:/x".into(),
            reason: "r".into(),
        });
        assert_eq!(error_code(&e), "invalid_storage_url");
        let e = anyhow::Error::new(StorageError::backend(
            "list",
            "config/",
            "no such bucket `b` at http://x (HTTP 404 NoSuchBucket): create it",
        ));
        assert_eq!(error_code(&e), "s3_no_bucket");
        assert_eq!(error_code(&anyhow::anyhow!("plain")), "error");
    }
}
