//! Believing WeChat Pay: a 2xx answer or a notification is signed over
//! `timestamp\nnonce\nbody\n` (the raw body) with the key its
//! `Wechatpay-Serial` names — a WeChat Pay public key (`PUB_KEY_ID_…`) or a
//! platform certificate — and must be within five minutes of our clock.
//! Several keys are held at once, so a switch from certificates to the public
//! key verifies both ways while it lasts.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use spki::SubjectPublicKeyInfoRef;
use spki::der::Decode;

use super::{KeyError, spki_der};

/// The largest clock difference believed (WeChat Pay's own rule: under 5 minutes).
pub const MAX_SKEW_SECS: i64 = 300;

/// Signatures WeChat Pay sends on purpose to check that merchants verify.
pub const PROBE_PREFIX: &str = "WECHATPAY/SIGNTEST/";

/// The exact bytes an answer's or notification's signature covers.
pub fn response_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
    m.extend_from_slice(timestamp.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(nonce.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(body);
    m.push(b'\n');
    m
}

/// The `Wechatpay-*` headers of an answer or a notification.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub timestamp: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub serial: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("no WeChat Pay key with serial {0:?} is configured")]
    UnknownSerial(String),
    #[error("the timestamp is {0} s away from our clock (at most 300 s is believed)")]
    Stale(i64),
    #[error("the timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("a signature probe (WECHATPAY/SIGNTEST/): refused, as WeChat Pay expects")]
    Probe,
    #[error("the signature does not match")]
    Mismatch,
}

/// The WeChat Pay keys believed, by serial.
#[derive(Debug, Clone, Default)]
pub struct WechatPayKeys {
    keys: Vec<(String, UnparsedPublicKey<Vec<u8>>)>,
}

impl WechatPayKeys {
    /// Adds the public key `wxp_pub.pem` (SPKI PEM) under its id `PUB_KEY_ID_…`.
    pub fn add_public_key_pem(&mut self, id: &str, pem: &[u8]) -> Result<(), KeyError> {
        let spki = spki_der(pem)?;
        self.add_spki_der(id, &spki)
    }

    /// Adds an SPKI (e.g. a platform certificate's) under `serial`.
    pub fn add_spki_der(&mut self, serial: &str, spki: &[u8]) -> Result<(), KeyError> {
        let info =
            SubjectPublicKeyInfoRef::from_der(spki).map_err(|e| KeyError::Rsa(e.to_string()))?;
        // rsaEncryption (1.2.840.113549.1.1.1): ring takes the PKCS#1 key inside.
        if info.algorithm.oid.to_string() != "1.2.840.113549.1.1.1" {
            return Err(KeyError::Rsa(format!("algorithm {}", info.algorithm.oid)));
        }
        let rsa = info
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| KeyError::Rsa("a key of partial bytes".into()))?;
        self.add_rsa_public_der(serial, rsa.to_vec());
        Ok(())
    }

    /// Adds a PKCS#1 `RSAPublicKey` under `serial`, replacing one of the same serial.
    pub fn add_rsa_public_der(&mut self, serial: &str, der: Vec<u8>) {
        self.keys.retain(|(s, _)| !s.eq_ignore_ascii_case(serial));
        self.keys.push((
            serial.to_string(),
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der),
        ));
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks a signed message at `now` (Unix seconds): the key its serial
    /// names, the five-minute window, the signature over the raw body.
    pub fn verify(&self, h: &Signed<'_>, body: &[u8], now: i64) -> Result<(), VerifyError> {
        let serial = h.serial.ok_or(VerifyError::Missing("Wechatpay-Serial"))?;
        let ts = h
            .timestamp
            .ok_or(VerifyError::Missing("Wechatpay-Timestamp"))?;
        let nonce = h.nonce.ok_or(VerifyError::Missing("Wechatpay-Nonce"))?;
        let signature = h
            .signature
            .ok_or(VerifyError::Missing("Wechatpay-Signature"))?;
        if signature.starts_with(PROBE_PREFIX) {
            return Err(VerifyError::Probe);
        }
        let key = self
            .keys
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(serial))
            .map(|(_, k)| k)
            .ok_or_else(|| VerifyError::UnknownSerial(serial.to_string()))?;
        let at: i64 = ts.parse().map_err(|_| VerifyError::BadTimestamp)?;
        let skew = now.saturating_sub(at);
        if skew.unsigned_abs() >= MAX_SKEW_SECS as u64 {
            return Err(VerifyError::Stale(skew));
        }
        let sig = STANDARD
            .decode(signature)
            .map_err(|_| VerifyError::Mismatch)?;
        key.verify(&response_message(ts, nonce, body), &sig)
            .map_err(|_| VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wxpay::v3::sign::tests::official;

    const NOW: i64 = 1_700_000_000;

    fn keys() -> WechatPayKeys {
        let mut k = WechatPayKeys::default();
        k.add_rsa_public_der(
            "PUB_KEY_ID_0114232134912410000000000000",
            official().public_key_der().to_vec(),
        );
        k
    }

    fn signed(body: &[u8], ts: i64) -> (String, String) {
        let ts = ts.to_string();
        let sig = official()
            .sign(&response_message(&ts, "nonce12chars", body))
            .unwrap();
        (ts, sig)
    }

    #[test]
    fn a_signed_answer_verifies_and_any_change_breaks_it() {
        let body = br#"{"code_url":"weixin://wxpay/bizpayurl?pr=abc"}"#;
        let (ts, sig) = signed(body, NOW - 10);
        let h = Signed {
            timestamp: Some(&ts),
            nonce: Some("nonce12chars"),
            signature: Some(&sig),
            serial: Some("PUB_KEY_ID_0114232134912410000000000000"),
        };
        assert_eq!(keys().verify(&h, body, NOW), Ok(()));
        assert_eq!(
            keys().verify(
                &h,
                br#"{"code_url":"weixin://wxpay/bizpayurl?pr=abd"}"#,
                NOW
            ),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            keys().verify(
                &Signed {
                    nonce: Some("other"),
                    ..h
                },
                body,
                NOW
            ),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            keys().verify(
                &Signed {
                    serial: Some("OTHER"),
                    ..h
                },
                body,
                NOW
            ),
            Err(VerifyError::UnknownSerial("OTHER".into()))
        );
        // Signed at NOW - 10: believed up to 299 s either side, not at 300.
        assert_eq!(keys().verify(&h, body, NOW - 10 + 299), Ok(()));
        assert_eq!(
            keys().verify(&h, body, NOW - 10 + 300),
            Err(VerifyError::Stale(300))
        );
        assert_eq!(keys().verify(&h, body, NOW - 10 - 299), Ok(()));
        assert_eq!(
            keys().verify(&h, body, NOW - 10 - 300),
            Err(VerifyError::Stale(-300))
        );
        assert_eq!(
            keys().verify(
                &Signed {
                    signature: Some("WECHATPAY/SIGNTEST/abc"),
                    ..h
                },
                body,
                NOW
            ),
            Err(VerifyError::Probe)
        );
        assert_eq!(
            keys().verify(
                &Signed {
                    timestamp: None,
                    ..h
                },
                body,
                NOW
            ),
            Err(VerifyError::Missing("Wechatpay-Timestamp"))
        );
    }

    #[test]
    fn an_empty_204_answer_is_signed_over_an_empty_line() {
        assert_eq!(response_message("1", "n", b""), b"1\nn\n\n");
        let (ts, sig) = signed(b"", NOW);
        let h = Signed {
            timestamp: Some(&ts),
            nonce: Some("nonce12chars"),
            signature: Some(&sig),
            serial: Some("pub_key_id_0114232134912410000000000000"),
        };
        assert_eq!(
            keys().verify(&h, b"", NOW),
            Ok(()),
            "serials compare without case"
        );
    }

    #[test]
    fn a_public_key_pem_is_read() {
        let mut k = WechatPayKeys::default();
        assert_eq!(
            k.add_public_key_pem(
                "PUB_KEY_ID_X",
                b"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"
            ),
            Err(KeyError::Pem("PUBLIC KEY"))
        );
        // The official test key's public half, as an SPKI PEM.
        let spki = spki_of(official().public_key_der());
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(&spki)
        );
        k.add_public_key_pem("PUB_KEY_ID_X", pem.as_bytes())
            .unwrap();
        let (ts, sig) = signed(b"{}", NOW);
        let h = Signed {
            timestamp: Some(&ts),
            nonce: Some("nonce12chars"),
            signature: Some(&sig),
            serial: Some("PUB_KEY_ID_X"),
        };
        assert_eq!(k.verify(&h, b"{}", NOW), Ok(()));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

        /// Any body signed verifies; any single byte changed, anywhere, does not.
        #[test]
        fn sign_then_verify_round_trips_and_any_byte_change_fails(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            at in proptest::prelude::any::<usize>(),
            flip in 1u8..=255,
        ) {
            let (ts, sig) = signed(&body, NOW);
            let h = Signed {
                timestamp: Some(&ts),
                nonce: Some("nonce12chars"),
                signature: Some(&sig),
                serial: Some("PUB_KEY_ID_0114232134912410000000000000"),
            };
            proptest::prop_assert_eq!(keys().verify(&h, &body, NOW), Ok(()));
            if !body.is_empty() {
                let mut changed = body.clone();
                changed[at % body.len()] ^= flip;
                proptest::prop_assert_eq!(
                    keys().verify(&h, &changed, NOW),
                    Err(VerifyError::Mismatch)
                );
            }
            let mut longer = body.clone();
            longer.push(b'\n');
            proptest::prop_assert_eq!(keys().verify(&h, &longer, NOW), Err(VerifyError::Mismatch));
        }
    }

    /// Wraps a PKCS#1 RSAPublicKey in an SPKI (rsaEncryption, NULL parameters).
    fn spki_of(rsa: &[u8]) -> Vec<u8> {
        fn der(tag: u8, content: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            let n = content.len();
            if n < 0x80 {
                out.push(n as u8);
            } else {
                let bytes: Vec<u8> = n
                    .to_be_bytes()
                    .into_iter()
                    .skip_while(|b| *b == 0)
                    .collect();
                out.push(0x80 | bytes.len() as u8);
                out.extend(bytes);
            }
            out.extend_from_slice(content);
            out
        }
        let algorithm = der(
            0x30,
            &[
                &[
                    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
                ][..],
                &[0x05, 0x00],
            ]
            .concat(),
        );
        let key = der(0x03, &[&[0u8][..], rsa].concat());
        der(0x30, &[algorithm, key].concat())
    }
}
