//! Plain-language messages for the S3 failures a user fixes in their
//! settings, and their codes for `--json` errors.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use super::{RawStatus, S3Store};

impl S3Store {
    /// A plain message for the failures a user fixes in their settings: no
    /// credentials, refused credentials, no bucket, unreachable endpoint,
    /// wrong region. Each starts with a [`PROBLEMS`] phrase and says what to fix.
    pub(super) fn problem<E, R>(&self, err: &SdkError<E, R>) -> Option<String>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
        SdkError<E, R>: RawStatus,
    {
        let status = err.raw_status();
        let code = err.code();
        let said = match (status, code) {
            (Some(status), Some(code)) => format!("HTTP {status} {code}"),
            (Some(status), None) => format!("HTTP {status}"),
            (None, Some(code)) => code.to_owned(),
            (None, None) => String::new(),
        };
        let endpoint = self.endpoint_name();
        let bucket = &self.bucket;
        let region = self
            .client
            .config()
            .region()
            .map_or_else(|| "us-east-1".to_owned(), ToString::to_string);
        match code {
            Some("NoSuchBucket") => {
                return Some(format!(
                    "{NO_BUCKET} `{bucket}` at {endpoint} ({said}): create the bucket, or fix its name in `--storage s3://BUCKET[/PREFIX]`"
                ));
            }
            Some("InvalidAccessKeyId") => {
                return Some(format!(
                    "{WRONG_CREDENTIALS} ({said}): the access key id is unknown to {endpoint}; check AWS_ACCESS_KEY_ID (or the profile's keys)"
                ));
            }
            Some("SignatureDoesNotMatch") => {
                return Some(format!(
                    "{WRONG_CREDENTIALS} ({said}): the secret key does not match the access key id; check AWS_SECRET_ACCESS_KEY (or the profile's keys)"
                ));
            }
            _ => {}
        }
        let wrong_region = matches!(
            code,
            Some("AuthorizationHeaderMalformed" | "PermanentRedirect" | "IncorrectEndpoint")
        ) || status == Some(301);
        if wrong_region {
            // AWS says the right region in a header, or in the message
            // ("... the region 'us-east-1' is wrong; expecting 'eu-west-1'").
            let expected = err
                .message()
                .and_then(|m| m.split("expecting '").nth(1))
                .and_then(|rest| rest.split('\'').next())
                .map(str::to_owned);
            let hint = match err
                .raw_response_header("x-amz-bucket-region")
                .or(expected)
                .filter(|r| *r != region && !r.is_empty())
            {
                Some(right) => format!("bucket `{bucket}` is in `{right}`; set AWS_REGION={right}"),
                None => format!("set AWS_REGION to the region of bucket `{bucket}`"),
            };
            return Some(format!(
                "{WRONG_REGION} `{region}` for {endpoint} ({said}): {hint}"
            ));
        }
        if let Some("AccessDenied" | "InvalidToken" | "ExpiredToken" | "InvalidSecurity") = code {
            // Some servers (Garage) answer AccessDenied for a bad signature
            // or an unknown key id, and say which in the message.
            let said_why = err.message().unwrap_or_default().to_ascii_lowercase();
            if said_why.contains("signature") {
                return Some(format!(
                    "{WRONG_CREDENTIALS} ({said}: {}): the secret key does not match the access key id; check AWS_SECRET_ACCESS_KEY (or the profile's keys)",
                    err.message().unwrap_or_default()
                ));
            }
            if said_why.contains("no such key") || said_why.contains("access key") {
                return Some(format!(
                    "{WRONG_CREDENTIALS} ({said}: {}): the access key id is unknown to {endpoint}; check AWS_ACCESS_KEY_ID (or the profile's keys)",
                    err.message().unwrap_or_default()
                ));
            }
            return Some(format!(
                "{ACCESS_DENIED} for bucket `{bucket}` at {endpoint} ({said}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and that this key may read and write the bucket"
            ));
        }
        if status == Some(403) && code.is_none() {
            return Some(format!(
                "{ACCESS_DENIED} for bucket `{bucket}` at {endpoint} ({said}): check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and that this key may use the bucket"
            ));
        }
        let chain = aws_smithy_types::error::display::DisplayErrorContext(err).to_string();
        if chain.contains("CredentialsNotLoaded")
            || chain.contains("no credentials")
            || chain.contains("while loading credentials")
            || chain.contains("the credential provider was not enabled")
        {
            return Some(format!(
                "{NO_CREDENTIALS} for {endpoint}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
            ));
        }
        let unreachable = |why: &str| {
            format!(
                "{UNREACHABLE} {endpoint} ({why}): check the endpoint (AWS_ENDPOINT_URL), that the server runs, and the network"
            )
        };
        match err {
            SdkError::DispatchFailure(d) if d.is_io() || d.is_timeout() => {
                let lower = chain.to_ascii_lowercase();
                let why = if lower.contains("connection refused") {
                    "connection refused"
                } else if lower.contains("dns error")
                    || lower.contains("failed to lookup")
                    || lower.contains("name or service not known")
                {
                    "host name not found"
                } else if d.is_timeout() {
                    "timed out"
                } else {
                    "network error"
                };
                Some(unreachable(why))
            }
            SdkError::TimeoutError(_) => Some(unreachable("timed out")),
            _ => None,
        }
    }

    /// The endpoint, for messages: its URL, or AWS S3 in the client's region.
    fn endpoint_name(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => "AWS S3".to_owned(),
        }
    }
}

/// How the plain messages of [`S3Store`]'s common failures start.
const NO_CREDENTIALS: &str = "no S3 credentials found";
const WRONG_CREDENTIALS: &str = "the S3 server refused the credentials";
const ACCESS_DENIED: &str = "access denied by the S3 server";
const NO_BUCKET: &str = "no such bucket";
const UNREACHABLE: &str = "cannot reach the S3 endpoint";
const WRONG_REGION: &str = "wrong S3 region";

/// Each plain-message start and its code (`--json` errors).
const PROBLEMS: &[(&str, &str)] = &[
    (NO_CREDENTIALS, "s3_no_credentials"),
    (WRONG_CREDENTIALS, "s3_wrong_credentials"),
    (ACCESS_DENIED, "s3_access_denied"),
    (NO_BUCKET, "s3_no_bucket"),
    (UNREACHABLE, "s3_unreachable"),
    (WRONG_REGION, "s3_wrong_region"),
];

/// The code of a backend message that is one of the common S3 failures
/// (`s3_no_credentials`, `s3_wrong_credentials`, `s3_access_denied`,
/// `s3_no_bucket`, `s3_unreachable`, `s3_wrong_region`), else `None`.
pub fn problem_code(message: &str) -> Option<&'static str> {
    PROBLEMS
        .iter()
        .find(|(start, _)| message.starts_with(start))
        .map(|(_, code)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_messages_have_codes() {
        assert_eq!(
            problem_code("no such bucket `b` at http://x (HTTP 404 NoSuchBucket): create it"),
            Some("s3_no_bucket")
        );
        assert_eq!(problem_code("HTTP 500: InternalError"), None);
        for (start, code) in PROBLEMS {
            assert_eq!(problem_code(&format!("{start} ...")), Some(*code));
        }
    }
}
