//! Whether a published file and its detached signature (`repomd.xml` and
//! `repomd.xml.asc`, `Release` and `Release.gpg`) still go together: the
//! check behind `check`'s `BadSignature` for roots whose signature is a
//! file of its own (see "Companion files" in docs/publishing.md).

use super::*;
use crate::repo::Scope;
use crate::signing::{SignatureFormat, Signer as _};

impl Publisher {
    /// `true` when `data` is absent, or when `signature` is a detached
    /// signature of it by a key of `scope`'s key set.
    pub(super) async fn detached_signature_matches(
        &self,
        scope: &Scope,
        data: &Key,
        signature: &Key,
    ) -> Result<bool, PublishError> {
        let Some((data, _)) = self.stores.get_bytes_opt(data).await? else {
            return Ok(true);
        };
        let Some((signature, _)) = self.stores.get_bytes_opt(signature).await? else {
            return Ok(false);
        };
        let set = keys::key_set_for_scope(&self.stores, scope).await?;
        Ok(set
            .keys()
            .iter()
            .any(|k| k.key.verify(&data, &signature, SignatureFormat::Detached)))
    }
}
