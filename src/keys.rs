//! Where signing keys live in the store, and which one signs a repository.
//!
//! Private keys are kept in the private tree per distro, and may be
//! overridden per version and per repo; the most specific one signs
//! ([`Scope::ancestry`]). The public half is published in the public tree
//! under its apk key name, at the same level.

use crate::repo::{Key, RepoId, Scope, Segment};
use crate::signing::{SigningError, SigningKey};
use crate::storage::{PutMode, StorageError};
use crate::stores::Stores;

/// Default RSA key size, as `abuild-keygen` makes.
pub const DEFAULT_KEY_BITS: usize = 4096;

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored or new key is unusable.
    #[error("signing key at `{key}`: {reason}")]
    Signing {
        /// The object key.
        key: String,
        /// Why.
        reason: SigningError,
    },
    /// No key covers the repository.
    #[error("no signing key for {repo}: run `packages key generate --org {org} --distro {distro}`")]
    Missing {
        /// The repository.
        repo: RepoId,
        /// Its org, for the hint.
        org: String,
        /// Its distro, for the hint.
        distro: String,
    },
    /// A key already exists at that level.
    #[error(
        "a signing key already exists for {0} (remove it from the private tree first to replace it)"
    )]
    Exists(Scope),
    /// Keys need at least a distro.
    #[error("a signing key belongs to a distro: give `--distro`")]
    NeedsDistro,
}

/// A key that was created, with where its public half is served.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GeneratedKey {
    /// The apk key file name (what goes into `/etc/apk/keys/`).
    pub key_name: String,
    /// The public key's path under the public tree (`<org>/alpine/...`).
    pub public_path: String,
    /// The public key, PEM.
    pub public_pem: String,
}

/// Generates a key for `scope` and stores both halves; refuses to replace one.
pub async fn generate(
    stores: &Stores,
    scope: &Scope,
    bits: usize,
) -> Result<GeneratedKey, KeyError> {
    if scope.distro.is_none() {
        return Err(KeyError::NeedsDistro);
    }
    let private_key = Key::PrivateKey(scope.clone());
    if stores.head(&private_key).await?.is_some() {
        return Err(KeyError::Exists(scope.clone()));
    }
    let org = scope.org.to_string();
    let signing = tokio::task::spawn_blocking(move || SigningKey::generate(&org, bits))
        .await
        .map_err(|e| StorageError::backend("generate key", "", e))?
        .map_err(|reason| KeyError::Signing {
            key: private_key.path(),
            reason,
        })?;
    let name = Segment::parse("file name", signing.key_name()).map_err(|e| KeyError::Signing {
        key: private_key.path(),
        reason: SigningError::Generate(e.to_string()),
    })?;
    let public_key = Key::PublicKey {
        scope: scope.clone(),
        name,
    };
    // Publish the public half first: a private key must never sign indexes
    // whose key clients cannot fetch.
    stores
        .put(
            &public_key,
            signing.public_pem().into_bytes().into(),
            PutMode::Overwrite,
        )
        .await?;
    match stores
        .put(
            &private_key,
            signing.private_pem().into_bytes().into(),
            PutMode::Create,
        )
        .await
    {
        Ok(_) => {}
        Err(StorageError::AlreadyExists { .. }) => return Err(KeyError::Exists(scope.clone())),
        Err(e) => return Err(e.into()),
    }
    let path = public_key.path();
    Ok(GeneratedKey {
        key_name: signing.key_name().to_owned(),
        public_path: path
            .strip_prefix(crate::repo::STATIC_PREFIX)
            .unwrap_or(&path)
            .to_owned(),
        public_pem: signing.public_pem(),
    })
}

/// Imports an existing PEM private key for `scope`.
pub async fn import(stores: &Stores, scope: &Scope, pem: &str) -> Result<GeneratedKey, KeyError> {
    if scope.distro.is_none() {
        return Err(KeyError::NeedsDistro);
    }
    let private_key = Key::PrivateKey(scope.clone());
    let signing = SigningKey::from_private_pem(scope.org.as_str(), pem).map_err(|reason| {
        KeyError::Signing {
            key: private_key.path(),
            reason,
        }
    })?;
    if stores.head(&private_key).await?.is_some() {
        return Err(KeyError::Exists(scope.clone()));
    }
    let name = Segment::parse("file name", signing.key_name()).map_err(|e| KeyError::Signing {
        key: private_key.path(),
        reason: SigningError::Generate(e.to_string()),
    })?;
    let public_key = Key::PublicKey {
        scope: scope.clone(),
        name,
    };
    stores
        .put(
            &public_key,
            signing.public_pem().into_bytes().into(),
            PutMode::Overwrite,
        )
        .await?;
    stores
        .put(
            &private_key,
            signing.private_pem().into_bytes().into(),
            PutMode::Create,
        )
        .await?;
    let path = public_key.path();
    Ok(GeneratedKey {
        key_name: signing.key_name().to_owned(),
        public_path: path
            .strip_prefix(crate::repo::STATIC_PREFIX)
            .unwrap_or(&path)
            .to_owned(),
        public_pem: signing.public_pem(),
    })
}

/// The key that signs `repo`: the most specific of repo, version and distro.
pub async fn signing_key_for(stores: &Stores, repo: &RepoId) -> Result<SigningKey, KeyError> {
    for scope in repo.scope().ancestry() {
        if scope.distro.is_none() {
            break;
        }
        let key = Key::PrivateKey(scope);
        if let Some((pem, _)) = stores.get_bytes_opt(&key).await? {
            let pem = String::from_utf8_lossy(&pem).into_owned();
            return SigningKey::from_private_pem(repo.org.as_str(), &pem).map_err(|reason| {
                KeyError::Signing {
                    key: key.path(),
                    reason,
                }
            });
        }
    }
    Err(KeyError::Missing {
        repo: repo.clone(),
        org: repo.org.to_string(),
        distro: repo.distro.to_string(),
    })
}
