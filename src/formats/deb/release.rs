//! A suite's `Release` as text and as a signed file: its date, the files its
//! `SHA256:` field lists, the text an `InRelease` signs, and signing with
//! every OpenPGP key of a suite.

use crate::keys::{KeyError, KeySet};
use crate::signing::openpgp::{PgpKey, sign_many};
use crate::signing::{Algorithm, PrivateKey, SignatureFormat, Signer, SigningError};

/// One file a `Release` lists in its `SHA256:` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseEntry {
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// The path below `dists/<suite>/`.
    pub path: String,
}

/// Every file a `Release` text lists in its `SHA256:` field.
pub fn release_sha256(release: &str) -> Vec<ReleaseEntry> {
    let mut out = Vec::new();
    let mut in_sha256 = false;
    for line in release.lines() {
        match line.strip_prefix(' ') {
            Some(entry) if in_sha256 => {
                let fields: Vec<&str> = entry.split_whitespace().collect();
                if let [sha, size, path] = fields.as_slice() {
                    if let Ok(size) = size.parse() {
                        out.push(ReleaseEntry {
                            sha256: (*sha).to_owned(),
                            size,
                            path: (*path).to_owned(),
                        });
                    }
                }
            }
            Some(_) => {}
            None => in_sha256 = line == "SHA256:",
        }
    }
    out
}

/// The `Date:` of a `Release`, as Debian writes it (`Sat, 10 Aug 2024 09:09:13 UTC`).
pub(super) fn release_date() -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now()).replace("GMT", "UTC")
}

/// Every key signing a suite: the OpenPGP keys of the set, active first.
pub type SuiteKeys = Vec<PrivateKey>;

fn signing_error(e: SigningError) -> KeyError {
    KeyError::Signing {
        key: "OpenPGP suite key".to_owned(),
        reason: e,
    }
}

/// Every OpenPGP key of a key set, the active one first (then those
/// retiring): what signs a suite or an RPM repository. `what` names the
/// repositories in the error when the set has no active OpenPGP key.
pub(crate) fn pick_pgp_keys(set: &KeySet, what: &str) -> Result<SuiteKeys, KeyError> {
    let mut keys: Vec<(bool, PrivateKey)> = set
        .keys()
        .iter()
        .filter(|k| k.key.algorithm() == Algorithm::OpenPgp)
        .map(|k| (k.state != crate::keys::KeyState::Active, k.key.clone()))
        .collect();
    keys.sort_by_key(|(retiring, _)| *retiring);
    if keys.first().is_none_or(|(retiring, _)| *retiring) {
        return Err(KeyError::Signing {
            key: crate::repo::Key::PrivateKey(set.scope().clone()).path(),
            reason: SigningError::InvalidKey(format!(
                "the key set has no active OpenPGP key ({what} are signed with OpenPGP: run \
                 `packages key generate` for this distro)"
            )),
        });
    }
    Ok(keys.into_iter().map(|(_, k)| k).collect())
}

/// The OpenPGP keys of a suite's keys.
pub(crate) fn pgp_keys(keys: &SuiteKeys) -> Vec<&PgpKey> {
    keys.iter()
        .filter_map(|k| match k {
            PrivateKey::Pgp(key) => Some(key.as_ref()),
            _ => None,
        })
        .collect()
}

/// Signs `text` with every key (one signature per key, in one armor
/// block), as `format`: clients trusting any one of them accept it.
pub(crate) fn sign_with(
    keys: &SuiteKeys,
    text: &[u8],
    format: SignatureFormat,
) -> Result<Vec<u8>, KeyError> {
    sign_many(&pgp_keys(keys), text, format).map_err(signing_error)
}

/// The text a clearsigned `InRelease` signs (dash-escaping undone), if it is one.
pub fn signed_text(in_release: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(in_release).ok()?;
    let rest = text.strip_prefix("-----BEGIN PGP SIGNED MESSAGE-----\n")?;
    let (_, body) = rest.split_once("\n\n")?;
    let (body, _) = body.split_once("\n-----BEGIN PGP SIGNATURE-----")?;
    let lines: Vec<&str> = body
        .split('\n')
        .map(|l| l.strip_prefix("- ").unwrap_or(l))
        .collect();
    Some(lines.join("\n") + "\n")
}
