//! [`Signer`] for OpenPGP keys: what the rest of the project signs and
//! verifies through.

use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature};
use secrecy::SecretString;

use super::{PgpKey, cleartext_body, crlf, sign_many};
use crate::signing::{Algorithm, PublicKeyFile, SignatureFormat, Signer, SigningError};

impl Signer for PgpKey {
    fn algorithm(&self) -> Algorithm {
        Algorithm::OpenPgp
    }

    fn key_id(&self) -> &str {
        &self.fingerprint
    }

    fn public_key(&self) -> PublicKeyFile {
        PublicKeyFile {
            file_name: format!("{}.asc", self.file_stem()),
            contents: self.public_armored.clone().into_bytes(),
        }
    }

    fn public_key_files(&self) -> Vec<PublicKeyFile> {
        vec![
            self.public_key(),
            PublicKeyFile {
                file_name: format!("{}.gpg", self.file_stem()),
                contents: self.public_binary.clone(),
            },
        ]
    }

    fn sign(&self, data: &[u8], format: SignatureFormat) -> Result<Vec<u8>, SigningError> {
        sign_many(&[self], data, format)
    }

    fn verify(&self, data: &[u8], signature: &[u8], format: SignatureFormat) -> bool {
        let Ok(armored) = std::str::from_utf8(signature) else {
            return false;
        };
        match format {
            SignatureFormat::Cleartext => {
                let Ok(body) = cleartext_body(data) else {
                    return false;
                };
                let Ok((message, _)) = CleartextSignedMessage::from_string(armored) else {
                    return false;
                };
                let signed = message.signed_text();
                signed == crlf(&body)
                    && message
                        .signatures()
                        .iter()
                        .any(|s| self.verifies(s, signed.as_bytes()))
            }
            SignatureFormat::Detached => {
                let Ok((signatures, _)) = DetachedSignature::from_string_many(armored) else {
                    return false;
                };
                signatures
                    .flatten()
                    .any(|s| self.verifies(&s.signature, data))
            }
            SignatureFormat::Raw => false,
        }
    }

    fn export_private(&self) -> SecretString {
        SecretString::from(self.secret_armored())
    }
}
