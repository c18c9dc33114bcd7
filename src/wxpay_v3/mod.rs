//! WeChat Pay API v3's cryptography, as scanpay needs it: requests signed
//! SHA256-RSA2048 with the merchant's API key (`sign`), answers and
//! notifications verified with WeChat Pay's key chosen by serial — a WeChat Pay
//! public key (`PUB_KEY_ID_…`) or a platform certificate — within five minutes
//! (`verify`), and resources decrypted with the APIv3 key (`aead`).
//!
//! Like `wxpay/`: no web framework, no database, no domain; it depends on
//! nothing of ours but the shared outbound `http_client` (used by `client`, the
//! only part that touches the network).

pub mod aead;
pub mod api;
pub mod bill;
pub mod client;
pub mod notify;
pub mod refund;
pub mod sign;
pub mod verify;

use rustls_pki_types::pem::PemObject;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM {0} (expected -----BEGIN {0}-----)")]
    Pem(&'static str),
    #[error("the key is not an RSA key of 2048 to 4096 bits: {0}")]
    Rsa(String),
    #[error("the APIv3 key must be 32 characters, as set on the merchant platform")]
    ApiV3KeyLength,
}

/// The DER of the first `-----BEGIN PRIVATE KEY-----` (PKCS#8) block.
fn pkcs8_der(pem: &[u8]) -> Result<Vec<u8>, KeyError> {
    rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem)
        .map(|k| k.secret_pkcs8_der().to_vec())
        .map_err(|_| KeyError::Pem("PRIVATE KEY"))
}

/// The DER of the first `-----BEGIN PUBLIC KEY-----` (SPKI) block.
fn spki_der(pem: &[u8]) -> Result<Vec<u8>, KeyError> {
    rustls_pki_types::SubjectPublicKeyInfoDer::from_pem_slice(pem)
        .map(|k| k.as_ref().to_vec())
        .map_err(|_| KeyError::Pem("PUBLIC KEY"))
}
