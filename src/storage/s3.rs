//! The S3 backend (AWS S3, MinIO, Garage, R2, moto, ...), via aws-sdk-s3.
//!
//! Credentials and region come from the standard AWS chain and environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, ...),
//! unless [`S3Settings`] overrides them. Static keys in the environment are
//! used directly, and with an endpoint URL (an S3-compatible server) the
//! region comes from the environment or profile, else `us-east-1`: neither
//! asks the cloud metadata service (IMDS). Path-style addressing is used
//! whenever an endpoint URL is set (MinIO, Garage), unless turned off.
//!
//! The common failures (no credentials, refused credentials, no bucket,
//! unreachable endpoint, wrong region) become plain messages that say what
//! to fix ([`problem_code`] tells them apart).

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::date_time::DateTime;

mod problem;

pub use problem::problem_code;

use super::{
    GetResult, ObjectMeta, ObjectStore, Payload, PutMode, PutOptions, StorageError, StoreFuture,
    check_key,
};

/// Overrides of the AWS environment, for tests and explicit configuration.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// Endpoint URL (else `AWS_ENDPOINT_URL` or AWS's own).
    pub endpoint: Option<String>,
    /// Region (else the AWS chain; `us-east-1` when nothing says).
    pub region: Option<String>,
    /// Static access key id and secret (else the AWS chain).
    pub credentials: Option<(String, String)>,
    /// Use virtual-hosted-style addressing even with a custom endpoint.
    pub virtual_hosted: bool,
}

/// A bucket plus key prefix.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    endpoint: Option<String>,
}

impl S3Store {
    /// Builds a client for `bucket` under `prefix` (no network I/O yet).
    pub async fn connect(
        bucket: &str,
        prefix: &str,
        settings: &S3Settings,
    ) -> Result<Self, StorageError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let custom_endpoint = settings.endpoint.is_some()
            || env_value("AWS_ENDPOINT_URL_S3").is_some()
            || env_value("AWS_ENDPOINT_URL").is_some();
        if let Some(region) = &settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        } else if custom_endpoint {
            use aws_config::meta::region::RegionProviderChain;
            loader = loader.region(
                RegionProviderChain::first_try(
                    aws_config::environment::EnvironmentVariableRegionProvider::new(),
                )
                .or_else(aws_config::profile::ProfileFileRegionProvider::new())
                .or_else(Some(aws_config::Region::new("us-east-1"))),
            );
        }
        let session_token = env_value("AWS_SESSION_TOKEN");
        let credentials = match &settings.credentials {
            Some((id, secret)) => Some((id.clone(), secret.clone(), None)),
            None => match (
                env_value("AWS_ACCESS_KEY_ID"),
                env_value("AWS_SECRET_ACCESS_KEY"),
            ) {
                (Some(id), Some(secret)) => Some((id, secret, session_token)),
                _ => None,
            },
        };
        if let Some((id, secret, token)) = credentials {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                id,
                secret,
                token,
                None,
                "packages-static",
            ));
        }
        let shared = loader.load().await;
        let endpoint = shared.endpoint_url().map(str::to_owned);
        let mut builder = aws_sdk_s3::config::Builder::from(&shared);
        if shared.region().is_none() {
            builder = builder.region(aws_config::Region::new("us-east-1"));
        }
        if endpoint.is_some() && !settings.virtual_hosted {
            builder = builder.force_path_style(true);
        }
        Ok(Self {
            client: Client::from_conf(builder.build()),
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            endpoint,
        })
    }

    fn description(&self) -> String {
        let mut s = format!("s3://{}", self.bucket);
        if !self.prefix.is_empty() {
            s.push('/');
            s.push_str(&self.prefix);
        }
        if let Some(endpoint) = &self.endpoint {
            s.push_str(&format!(" at {endpoint}"));
        }
        s
    }

    fn full_key(&self, key: &str) -> Result<String, StorageError> {
        check_key(key)?;
        Ok(self.with_prefix(key))
    }

    fn with_prefix(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{}", self.prefix, key)
        }
    }

    fn strip_prefix<'a>(&self, full: &'a str) -> &'a str {
        if self.prefix.is_empty() {
            full
        } else {
            full.strip_prefix(&self.prefix)
                .and_then(|s| s.strip_prefix('/'))
                .unwrap_or(full)
        }
    }

    async fn get(&self, key: &str) -> Result<GetResult, StorageError> {
        let full = self.full_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.map_err("get", key, e))?;
        let meta = ObjectMeta {
            key: key.to_owned(),
            size: out
                .content_length()
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            etag: out.e_tag().unwrap_or_default().to_owned(),
            last_modified: out.last_modified().and_then(to_system_time),
        };
        Ok(GetResult {
            meta,
            body: Box::pin(out.body.into_async_read()),
        })
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        let full = self.full_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectMeta {
                key: key.to_owned(),
                size: out
                    .content_length()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
                etag: out.e_tag().unwrap_or_default().to_owned(),
                last_modified: out.last_modified().and_then(to_system_time),
            })),
            Err(e) => match self.map_err("head", key, e) {
                StorageError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn put(
        &self,
        key: &str,
        payload: Payload,
        options: &PutOptions,
        mode: PutMode,
    ) -> Result<ObjectMeta, StorageError> {
        let full = self.full_key(key)?;
        let (body, size) = match payload {
            Payload::Bytes(bytes) => {
                let size = bytes.len() as u64;
                (ByteStream::from(bytes), size)
            }
            Payload::File(path) => {
                let size = tokio::fs::metadata(&path)
                    .await
                    .map_err(|e| StorageError::backend("put", key, e))?
                    .len();
                let body = ByteStream::from_path(&path)
                    .await
                    .map_err(|e| StorageError::backend("put", key, e))?;
                (body, size)
            }
        };
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .body(body)
            .content_length(i64::try_from(size).unwrap_or(i64::MAX));
        if let Some(content_type) = &options.content_type {
            request = request.content_type(content_type);
        }
        if let Some(cache_control) = &options.cache_control {
            request = request.cache_control(cache_control);
        }
        request = match &mode {
            PutMode::Overwrite => request,
            PutMode::Create => request.if_none_match("*"),
            PutMode::Update(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(out) => Ok(ObjectMeta {
                key: key.to_owned(),
                size,
                etag: out.e_tag().unwrap_or_default().to_owned(),
                last_modified: Some(std::time::SystemTime::now()),
            }),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                let code = e.code().map(str::to_owned);
                match (&mode, status, code.as_deref()) {
                    (PutMode::Create, Some(412 | 409), _) => Err(StorageError::AlreadyExists {
                        key: key.to_owned(),
                    }),
                    // 404 NoSuchKey: If-Match on a missing object (AWS, moto).
                    (PutMode::Update(_), Some(412 | 409 | 404), _) => {
                        Err(StorageError::Precondition {
                            key: key.to_owned(),
                        })
                    }
                    _ => Err(self.map_err("put", key, e)),
                }
            }
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StorageError> {
        let full_prefix = self.with_prefix(prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full_prefix)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.map_err("list", prefix, e))?;
            for object in page.contents() {
                let Some(full) = object.key() else { continue };
                found.push(ObjectMeta {
                    key: self.strip_prefix(full).to_owned(),
                    size: object
                        .size()
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or(0),
                    etag: object.e_tag().unwrap_or_default().to_owned(),
                    last_modified: object.last_modified().and_then(to_system_time),
                });
            }
        }
        Ok(found)
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let source = self.full_key(from)?;
        let target = self.full_key(to)?;
        if source == target {
            // S3 refuses to copy an object onto itself unchanged; it is a no-op.
            return match self.head(from).await? {
                Some(_) => Ok(()),
                None => Err(StorageError::NotFound {
                    key: from.to_owned(),
                }),
            };
        }
        // `x-amz-copy-source` is `BUCKET/KEY`, URL-encoded.
        let copy_source = format!(
            "{}/{}",
            self.bucket,
            percent_encoding::utf8_percent_encode(&source, COPY_SOURCE)
        );
        match self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(&target)
            .copy_source(copy_source)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match self.map_err("copy", to, e) {
                // 404 NoSuchKey names the source: the target is being written.
                StorageError::NotFound { .. } => Err(StorageError::NotFound {
                    key: from.to_owned(),
                }),
                other => Err(other),
            },
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let full = self.full_key(key)?;
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match self.map_err("delete", key, e) {
                StorageError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }
}

/// Everything but unreserved characters and `/` is escaped in a copy source.
const COPY_SOURCE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        self.description()
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, GetResult> {
        Box::pin(self.get(key))
    }

    fn head<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<ObjectMeta>> {
        Box::pin(self.head(key))
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        payload: Payload,
        options: &'a PutOptions,
        mode: PutMode,
    ) -> StoreFuture<'a, ObjectMeta> {
        Box::pin(self.put(key, payload, options, mode))
    }

    fn list<'a>(&'a self, prefix: &'a str) -> StoreFuture<'a, Vec<ObjectMeta>> {
        Box::pin(self.list(prefix))
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.delete(key))
    }

    fn copy<'a>(&'a self, from: &'a str, to: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.copy(from, to))
    }
}

fn to_system_time(t: &DateTime) -> Option<std::time::SystemTime> {
    std::time::SystemTime::try_from(*t).ok()
}

impl S3Store {
    /// Turns an SDK error into ours: a plain message for the common failures
    /// ([`S3Store::problem`]), else the status, S3 error code and message.
    fn map_err<E, R>(&self, op: &'static str, key: &str, err: SdkError<E, R>) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
        SdkError<E, R>: RawStatus,
    {
        if let Some(problem) = self.problem(&err) {
            return StorageError::backend(op, key, problem);
        }
        let status = err.raw_status();
        if status == Some(404) || err.code() == Some("NoSuchKey") || err.code() == Some("NotFound")
        {
            return StorageError::NotFound {
                key: key.to_owned(),
            };
        }
        let detail = match (err.code(), err.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            _ => aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
        };
        let detail = match status {
            Some(status) => format!("HTTP {status}: {detail}"),
            None => detail,
        };
        StorageError::backend(op, key, detail)
    }
}

/// A variable of the environment, if set and not empty.
fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The HTTP status and headers of a failed call, where there was a response.
trait RawStatus {
    fn raw_status(&self) -> Option<u16>;
    fn raw_response_header(&self, name: &str) -> Option<String>;
}

impl<E> RawStatus for SdkError<E, aws_sdk_s3::config::http::HttpResponse> {
    fn raw_status(&self) -> Option<u16> {
        self.raw_response().map(|r| r.status().as_u16())
    }

    fn raw_response_header(&self, name: &str) -> Option<String> {
        self.raw_response()?.headers().get(name).map(str::to_owned)
    }
}
