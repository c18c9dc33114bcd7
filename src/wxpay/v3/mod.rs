//! WeChat Pay API v3's cryptography, as scanpay needs it: requests signed
//! SHA256-RSA2048 with the merchant's API key (`sign`), answers and
//! notifications verified with WeChat Pay's key chosen by serial — a WeChat Pay
//! public key (`PUB_KEY_ID_…`) or a platform certificate — within five minutes
//! (`verify`), and resources decrypted with the APIv3 key (`aead`).
//!
//! Like `wxpay/v2`: no web framework, no database, no domain; it depends on
//! nothing of ours but `values` and `base` (errors keep their causes; the
//! shared outbound HTTP, used by `client`, the only part that touches the
//! network). The checkout reaches it only through `crate::gateway::v3`.

pub mod aead;
pub mod api;
pub mod bill;
pub mod cert;
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

/// The official test key of the "带 Body 参数如何计算签名" page: public test
/// material, the demo v3 merchant's key in simulator mode (never valid for money).
pub const OFFICIAL_TEST_KEY_PEM: &str = include_str!("official_test_key.pem");

/// A WeChat Pay public key as configured: its id `PUB_KEY_ID_…` and its SPKI PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub id: String,
    pub pem: String,
}

/// One v3 merchant's identity and secrets, as read from the settings (files
/// already read). Never printed: the Debug of the secrets is redacted.
#[derive(Debug, Clone)]
pub struct Merchant {
    pub appid: String,
    pub mchid: String,
    /// The serial of the merchant's API certificate (upper-case hex).
    pub cert_serial: String,
    pub private_key_pem: secrecy::SecretString,
    pub apiv3_key: aead::ApiV3Key,
    /// The WeChat Pay public key, when the merchant verifies with one.
    pub public_key: Option<PublicKey>,
}

impl Merchant {
    /// The merchant's signer (parses the private key).
    pub fn signer(&self) -> Result<sign::MerchantSigner, KeyError> {
        use secrecy::ExposeSecret;
        sign::MerchantSigner::from_pem(
            &self.mchid,
            &self.cert_serial,
            self.private_key_pem.expose_secret().as_bytes(),
        )
    }

    /// The WeChat Pay keys the settings give (the public key, if any).
    pub fn configured_keys(&self) -> Result<verify::WechatPayKeys, KeyError> {
        let mut keys = verify::WechatPayKeys::default();
        if let Some(pk) = &self.public_key {
            keys.add_public_key_pem(&pk.id, pk.pem.as_bytes())?;
        }
        Ok(keys)
    }
}
