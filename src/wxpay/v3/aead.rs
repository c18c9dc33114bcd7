//! Resources in notifications (and downloaded platform certificates) are
//! AES-256-GCM encrypted with the merchant's 32-character APIv3 key: nonce the
//! 12 bytes given, associated data as given, ciphertext ‖ 16-byte tag in Base64.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use secrecy::{ExposeSecret, SecretString};

use super::KeyError;

/// The only algorithm v3 resources use.
pub const ALGORITHM: &str = "AEAD_AES_256_GCM";

/// The APIv3 key set on the merchant platform. Never printed.
#[derive(Clone)]
pub struct ApiV3Key(SecretString);

impl ApiV3Key {
    pub fn new(key: impl Into<String>) -> Result<Self, KeyError> {
        let key = key.into();
        if key.len() != 32 {
            return Err(KeyError::ApiV3KeyLength);
        }
        Ok(ApiV3Key(SecretString::from(key)))
    }

    fn cipher(&self) -> LessSafeKey {
        // 32 bytes is exactly what AES-256 takes, checked in `new`.
        let key = UnboundKey::new(&AES_256_GCM, self.0.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("the APIv3 key is 32 bytes"));
        LessSafeKey::new(key)
    }
}

impl fmt::Debug for ApiV3Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiV3Key([REDACTED])")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AeadError {
    #[error("unsupported resource algorithm {0:?} (expected AEAD_AES_256_GCM)")]
    Algorithm(String),
    #[error("the nonce must be 12 bytes")]
    Nonce,
    #[error("the ciphertext is not Base64")]
    Base64,
    #[error("the resource does not decrypt with our APIv3 key (wrong key, or altered)")]
    Open,
}

/// Decrypts one resource.
pub fn decrypt(
    key: &ApiV3Key,
    algorithm: &str,
    nonce: &str,
    associated_data: &str,
    ciphertext: &str,
) -> Result<Vec<u8>, AeadError> {
    if algorithm != ALGORITHM {
        return Err(AeadError::Algorithm(algorithm.to_string()));
    }
    let nonce = Nonce::try_assume_unique_for_key(nonce.as_bytes()).map_err(|_| AeadError::Nonce)?;
    let mut data = STANDARD.decode(ciphertext).map_err(|_| AeadError::Base64)?;
    let plain = key
        .cipher()
        .open_in_place(nonce, Aad::from(associated_data.as_bytes()), &mut data)
        .map_err(|_| AeadError::Open)?;
    Ok(plain.to_vec())
}

/// Encrypts one resource as WeChat Pay does (the simulator's side).
pub fn encrypt(
    key: &ApiV3Key,
    nonce: &str,
    associated_data: &str,
    plaintext: &[u8],
) -> Result<String, AeadError> {
    let nonce = Nonce::try_assume_unique_for_key(nonce.as_bytes()).map_err(|_| AeadError::Nonce)?;
    let mut data = plaintext.to_vec();
    key.cipher()
        .seal_in_place_append_tag(nonce, Aad::from(associated_data.as_bytes()), &mut data)
        .map_err(|_| AeadError::Open)?;
    Ok(STANDARD.encode(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ApiV3Key {
        ApiV3Key::new("0123456789abcdefghijklmnopqrstuv").unwrap()
    }

    #[test]
    fn a_resource_round_trips_and_nothing_else_opens() {
        let plain = br#"{"out_trade_no":"SP1","trade_state":"SUCCESS"}"#;
        let c = encrypt(&key(), "pUdohsWGTw7G", "transaction", plain).unwrap();
        assert_eq!(
            decrypt(&key(), ALGORITHM, "pUdohsWGTw7G", "transaction", &c).unwrap(),
            plain
        );
        assert_eq!(
            decrypt(&key(), ALGORITHM, "pUdohsWGTw7G", "certificate", &c),
            Err(AeadError::Open),
            "the associated data counts"
        );
        let other = ApiV3Key::new("vutsrqponmlkjihgfedcba9876543210").unwrap();
        assert_eq!(
            decrypt(&other, ALGORITHM, "pUdohsWGTw7G", "transaction", &c),
            Err(AeadError::Open)
        );
        assert_eq!(
            decrypt(&key(), "AES_128", "pUdohsWGTw7G", "", &c),
            Err(AeadError::Algorithm("AES_128".into()))
        );
        assert_eq!(
            decrypt(&key(), ALGORITHM, "short", "", &c),
            Err(AeadError::Nonce)
        );
        assert_eq!(
            decrypt(&key(), ALGORITHM, "pUdohsWGTw7G", "", "%%"),
            Err(AeadError::Base64)
        );
        assert_eq!(
            ApiV3Key::new("short").unwrap_err(),
            KeyError::ApiV3KeyLength
        );
        assert_eq!(format!("{:?}", key()), "ApiV3Key([REDACTED])");
    }
}
