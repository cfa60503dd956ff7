//! A client of the v1 API, for the CLI's remote mode (`--server URL --token T`).
//!
//! Uploads stream the file from disk (never whole in memory) and report
//! progress; errors carry the server's `{code, message}`. The calls of the
//! other commands are in [`manage`].

mod audit;
mod manage;
mod quota;

pub use audit::AuditFilters;

use std::path::Path;

use futures::StreamExt as _;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::io::ReaderStream;

use super::{ErrorBody, PACKAGE_FIELD, PackageInfo, PublishedPackage};
use crate::repo::{Arch, RepoId};

/// Why a call to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL is unusable.
    #[error("invalid server URL `{url}`: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// Why.
        reason: String,
    },
    /// The token cannot be sent in a header.
    #[error("the token contains characters not allowed in an HTTP header")]
    Token,
    /// The server could not be reached, or the exchange failed (the cause
    /// is the source, so that a chain prints it once).
    #[error("the request to the server failed")]
    Http(#[from] reqwest::Error),
    /// The server answered with an error.
    #[error("server answered {status}: {message}")]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The server's message.
        message: String,
    },
    /// A local file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl ClientError {
    /// The HTTP status the server answered, if it answered with an error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A v1 API client for one server and token.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
}

impl Client {
    /// A client of the server at `server` (e.g. `https://packages.example.com`).
    pub fn new(server: &str, token: &str) -> Result<Self, ClientError> {
        let invalid = |reason: &str| ClientError::Url {
            url: server.to_owned(),
            reason: reason.to_owned(),
        };
        let base = Url::parse(server).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("use an `http://` or `https://` URL"));
        }
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| ClientError::Token)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("packages/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base,
            token: SecretString::from(token.to_owned()),
        })
    }

    /// The URL of `segments` under `/api/v1`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .expect("checked in new: the URL can be a base");
            path.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        url
    }

    fn repo_url(&self, repo: &RepoId, rest: &[&str]) -> Url {
        let (org, distro, version, name) = (
            repo.org.to_string(),
            repo.distro.to_string(),
            repo.version.to_string(),
            repo.repo.to_string(),
        );
        let mut segments = vec![
            "orgs", &org, "distros", &distro, "versions", &version, "repos", &name,
        ];
        segments.extend_from_slice(rest);
        self.url(&segments)
    }

    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.token.expose_secret()))
            .expect("checked in new");
        auth.set_sensitive(true);
        self.http.request(method, url).header(AUTHORIZATION, auth)
    }

    /// Sends a request (with a JSON body, if any) and reads the JSON answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&(impl Serialize + Sync)>,
    ) -> Result<T, ClientError> {
        let mut request = self.request(method, url);
        if let Some(body) = body {
            request = request.json(body);
        }
        Self::answer(request.send().await?).await
    }

    /// Sends a request that answers no body (`204 No Content`).
    async fn call_empty(&self, method: Method, url: Url) -> Result<(), ClientError> {
        let response = self.request(method, url).send().await?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(Self::error(response).await)
    }

    async fn answer<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, ClientError> {
        if response.status().is_success() {
            return Ok(response.json().await?);
        }
        Err(Self::error(response).await)
    }

    /// The error of a failed answer: the `{code, message}` body's message, or the text.
    async fn error(response: reqwest::Response) -> ClientError {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|e| e.message)
            .unwrap_or_else(|_| {
                if text.trim().is_empty() {
                    status.canonical_reason().unwrap_or("error").to_owned()
                } else {
                    text.trim().to_owned()
                }
            });
        ClientError::Api { status, message }
    }

    /// The packages of a repository (one arch, or all; one name, or all).
    pub async fn list_packages(
        &self,
        repo: &RepoId,
        arch: Option<&Arch>,
        name: Option<&str>,
    ) -> Result<Vec<PackageInfo>, ClientError> {
        let mut url = self.repo_url(repo, &["packages"]);
        {
            let mut query = url.query_pairs_mut();
            if let Some(arch) = arch {
                query.append_pair("arch", arch.as_str());
            }
            if let Some(name) = name {
                query.append_pair("name", name);
            }
        }
        let response = self.request(Method::GET, url).send().await?;
        Self::answer(response).await
    }

    /// Uploads one package file, streamed; `progress` gets the bytes sent so far.
    /// Returns once the server has it in the signed index.
    pub async fn upload(
        &self,
        repo: &RepoId,
        arches: &[Arch],
        file: &Path,
        create: bool,
        progress: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<Vec<PublishedPackage>, ClientError> {
        let io = |source| ClientError::Io {
            path: file.display().to_string(),
            source,
        };
        let opened = tokio::fs::File::open(file).await.map_err(io)?;
        let length = opened.metadata().await.map_err(io)?.len();
        let mut sent = 0u64;
        let stream = ReaderStream::with_capacity(opened, 256 << 10).map(move |chunk| {
            if let Ok(bytes) = &chunk {
                sent += bytes.len() as u64;
                progress(sent);
            }
            chunk
        });
        let file_name = file.file_name().map_or_else(
            || "package.apk".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        let part = reqwest::multipart::Part::stream_with_length(
            reqwest::Body::wrap_stream(stream),
            length,
        )
        .file_name(file_name)
        .mime_str("application/vnd.apk")?;
        let mut form = reqwest::multipart::Form::new().part(PACKAGE_FIELD, part);
        for arch in arches {
            form = form.text("arch", arch.to_string());
        }
        let mut url = self.repo_url(repo, &["packages"]);
        if create {
            url.query_pairs_mut().append_pair("create", "true");
        }
        let response = self
            .request(Method::POST, url)
            .multipart(form)
            .send()
            .await?;
        Self::answer(response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_encoded_urls() {
        let client = Client::new("http://127.0.0.1:8080/prefix/", "pkgs_x").unwrap();
        let repo = RepoId::parse("acme", "alpine", "v3.20", "main").unwrap();
        assert_eq!(
            client.repo_url(&repo, &["packages"]).as_str(),
            "http://127.0.0.1:8080/prefix/api/v1/orgs/acme/distros/alpine/versions/v3.20/repos/main/packages"
        );
        assert!(Client::new("ftp://x", "t").is_err());
        assert!(Client::new("http://x", "bad\ntoken").is_err());
    }
}
