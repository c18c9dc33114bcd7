//! The simulator's own WeChat Pay keys: fixed public demo values (made once
//! with openssl, committed beside this file), never valid for real money.
//! A WeChat Pay public key (`PUB_KEY_ID_…`) and a platform certificate, each
//! with its own RSA-2048 key, so a client that picks the key by serial is
//! tested for it.

use crate::wxpay::v3::KeyError;
use crate::wxpay::v3::sign::MerchantSigner;

/// The id of the simulator's WeChat Pay public key.
pub const PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0119000072912026120100000001";
/// Its SPKI PEM, what a merchant downloads as `pub_key.pem`.
pub const PUBLIC_KEY_PEM: &str = include_str!("sim_pub_key.pem");
const PUBLIC_KEY_PRIVATE_PEM: &str = include_str!("sim_pub_key_private.pem");

/// The serial of the simulator's platform certificate (upper-case hex).
pub const PLATFORM_SERIAL: &str = "5311F63F7F553C48090DFBE9D1F405C3F32C7B9D";
/// The self-signed platform certificate (PEM).
pub const PLATFORM_CERT_PEM: &str = include_str!("sim_platform_cert.pem");
const PLATFORM_PRIVATE_PEM: &str = include_str!("sim_platform_private.pem");
/// The certificate's validity as `/v3/certificates` states it.
pub const PLATFORM_EFFECTIVE: &str = "2026-12-01T19:17:31+08:00";
pub const PLATFORM_EXPIRES: &str = "2036-11-28T19:17:31+08:00";

/// The simulator's signing keys, by the serial they sign as.
pub struct SimKeys {
    pub public_key: MerchantSigner,
    pub platform: MerchantSigner,
}

impl SimKeys {
    pub fn load() -> Result<SimKeys, KeyError> {
        Ok(SimKeys {
            public_key: MerchantSigner::from_pem(
                "wechatpay",
                PUBLIC_KEY_ID,
                PUBLIC_KEY_PRIVATE_PEM.as_bytes(),
            )?,
            platform: MerchantSigner::from_pem(
                "wechatpay",
                PLATFORM_SERIAL,
                PLATFORM_PRIVATE_PEM.as_bytes(),
            )?,
        })
    }

    /// The key for a request's `Wechatpay-Serial`: the public key or the
    /// platform certificate it names; a client that names none (one from
    /// before public keys) gets the certificate; an unknown one gets nothing.
    pub fn for_serial(&self, serial: Option<&str>) -> Option<(&'static str, &MerchantSigner)> {
        match serial {
            None | Some("") => Some((PLATFORM_SERIAL, &self.platform)),
            Some(s) if s.eq_ignore_ascii_case(PUBLIC_KEY_ID) => {
                Some((PUBLIC_KEY_ID, &self.public_key))
            }
            Some(s) if s.eq_ignore_ascii_case(PLATFORM_SERIAL) => {
                Some((PLATFORM_SERIAL, &self.platform))
            }
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wxpay::v3::verify::{Signed, WechatPayKeys, response_message};

    #[test]
    fn each_key_verifies_under_its_own_serial_only() {
        let keys = SimKeys::load().unwrap();
        let mut believed = WechatPayKeys::default();
        believed
            .add_public_key_pem(PUBLIC_KEY_ID, PUBLIC_KEY_PEM.as_bytes())
            .unwrap();
        let cert =
            crate::wxpay::v3::cert::PlatformCert::from_pem(PLATFORM_CERT_PEM.as_bytes()).unwrap();
        assert_eq!(cert.serial, PLATFORM_SERIAL);
        believed.add_spki_der(&cert.serial, &cert.spki).unwrap();
        let now = 1_800_000_000;
        let ts = now.to_string();
        for (serial, signer) in [
            (PUBLIC_KEY_ID, &keys.public_key),
            (PLATFORM_SERIAL, &keys.platform),
        ] {
            let sig = signer.sign(&response_message(&ts, "n", b"{}")).unwrap();
            let h = |serial| Signed {
                timestamp: Some(&ts),
                nonce: Some("n"),
                signature: Some(&sig),
                serial: Some(serial),
            };
            assert_eq!(believed.verify(&h(serial), b"{}", now), Ok(()));
            let other = if serial == PUBLIC_KEY_ID {
                PLATFORM_SERIAL
            } else {
                PUBLIC_KEY_ID
            };
            assert!(believed.verify(&h(other), b"{}", now).is_err());
        }
        assert!(keys.for_serial(Some("PUB_KEY_ID_OTHER")).is_none());
    }
}
