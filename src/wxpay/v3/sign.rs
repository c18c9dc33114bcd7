//! Request signing: five lines (method, path with query, timestamp, nonce,
//! body), each ending in `\n`, signed RSASSA-PKCS1-v1_5 SHA-256 with the
//! merchant's API private key, sent as `Authorization: WECHATPAY2-SHA256-RSA2048 …`.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

use super::{KeyError, pkcs8_der};

/// The authorization scheme of every v3 request.
pub const SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";

/// The exact bytes a request's signature covers. `path_and_query` is the raw
/// path plus `?` and the raw query when there is one; `body` is what is sent
/// (empty for GET), byte for byte.
pub fn request_message(
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(path_and_query.len() + body.len() + 64);
    for part in [method.as_bytes(), path_and_query.as_bytes()] {
        m.extend_from_slice(part);
        m.push(b'\n');
    }
    m.extend_from_slice(timestamp.to_string().as_bytes());
    m.push(b'\n');
    m.extend_from_slice(nonce.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(body);
    m.push(b'\n');
    m
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the request could not be signed")]
pub struct SigningFailed;

/// A merchant's signing identity: its `mchid`, the serial of its API
/// certificate, and the matching private key. Never printed.
pub struct MerchantSigner {
    mchid: String,
    serial_no: String,
    key: RsaKeyPair,
    rng: SystemRandom,
}

impl fmt::Debug for MerchantSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerchantSigner")
            .field("mchid", &self.mchid)
            .field("serial_no", &self.serial_no)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl MerchantSigner {
    /// From `apiclient_key.pem` (PKCS#8) and the certificate serial shown on
    /// the merchant platform (upper-case hex).
    pub fn from_pem(mchid: &str, serial_no: &str, key_pem: &[u8]) -> Result<Self, KeyError> {
        let der = pkcs8_der(key_pem)?;
        let key = RsaKeyPair::from_pkcs8(&der).map_err(|e| KeyError::Rsa(e.to_string()))?;
        Ok(MerchantSigner {
            mchid: mchid.to_string(),
            serial_no: serial_no.to_ascii_uppercase(),
            key,
            rng: SystemRandom::new(),
        })
    }

    pub fn mchid(&self) -> &str {
        &self.mchid
    }

    pub fn serial_no(&self) -> &str {
        &self.serial_no
    }

    /// The PKCS#1 `RSAPublicKey` DER of the key (to check it against the
    /// certificate, and for the simulator to verify with).
    pub fn public_key_der(&self) -> &[u8] {
        use ring::signature::KeyPair;
        self.key.public_key().as_ref()
    }

    /// Base64 of the SHA256-RSA signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Result<String, SigningFailed> {
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
            .map_err(|_| SigningFailed)?;
        Ok(STANDARD.encode(sig))
    }

    /// The `Authorization` header value of one request.
    pub fn authorization(
        &self,
        method: &str,
        path_and_query: &str,
        timestamp: i64,
        nonce: &str,
        body: &[u8],
    ) -> Result<String, SigningFailed> {
        let signature = self.sign(&request_message(
            method,
            path_and_query,
            timestamp,
            nonce,
            body,
        ))?;
        Ok(format!(
            "{SCHEME} mchid=\"{}\",nonce_str=\"{nonce}\",timestamp=\"{timestamp}\",serial_no=\"{}\",signature=\"{signature}\"",
            self.mchid, self.serial_no
        ))
    }
}

/// The five fields of an `Authorization` header, in whatever order they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub mchid: String,
    pub nonce_str: String,
    pub timestamp: i64,
    pub serial_no: String,
    pub signature: String,
}

impl Authorization {
    /// Parses `WECHATPAY2-SHA256-RSA2048 k="v",…` (the simulator's side).
    pub fn parse(header: &str) -> Option<Authorization> {
        let rest = header.strip_prefix(SCHEME)?.strip_prefix(' ')?;
        let (mut mchid, mut nonce, mut ts, mut serial, mut sig) = (None, None, None, None, None);
        for pair in rest.split(',') {
            let (k, v) = pair.trim().split_once('=')?;
            let v = v.strip_prefix('"')?.strip_suffix('"')?.to_string();
            let slot = match k {
                "mchid" => &mut mchid,
                "nonce_str" => &mut nonce,
                "timestamp" => &mut ts,
                "serial_no" => &mut serial,
                "signature" => &mut sig,
                _ => return None,
            };
            if slot.replace(v).is_some() {
                return None;
            }
        }
        Some(Authorization {
            mchid: mchid?,
            nonce_str: nonce?,
            timestamp: ts?.parse().ok()?,
            serial_no: serial?,
            signature: sig?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The official test key of the "带 Body 参数如何计算签名" page (public test material).
    pub(crate) const OFFICIAL_TEST_KEY: &[u8] = include_bytes!("official_test_key.pem");
    pub(crate) const OFFICIAL_SERIAL: &str = "408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB";

    pub(crate) fn official() -> MerchantSigner {
        MerchantSigner::from_pem("1900007291", OFFICIAL_SERIAL, OFFICIAL_TEST_KEY).unwrap()
    }

    #[test]
    fn the_official_post_vector() {
        let body = r#"{"appid":"wxd678efh567hg6787","mchid":"1900007291","description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018","notify_url":"https://www.weixin.qq.com/wxpay/pay.php","amount":{"total":100,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}"#;
        let m = request_message(
            "POST",
            "/v3/pay/transactions/jsapi",
            1554208460,
            "593BEC0C930BF1AFEB40B4A08C8FB242",
            body.as_bytes(),
        );
        assert!(m.ends_with(b"}\n"));
        assert_eq!(
            official().sign(&m).unwrap(),
            "jnks4dlrPw3ZX+ozVvSK39oa0t7OMBsg83BHAwd8BRdUFiVaQNTLTvci+wURgP1OQBbKYhFGvt7iqYpDSTQkp7Uq1sltaQKyncCyrA1g88m5bsKERQfPyT0ahSwKTYJ1CAn9QiJuSJRq1QsQs07eehbU/k9BCS51jTyc1Jpsi2H77HF9f/BnjXAOP3/sPObg6V5Ee4EzwLox684hhuMuIwHo7D8KFk3LIHOKDcNI4It1aCXydFWNpNK+SG86VUDe5kwoDpw4Ulqfu9z8OFDGbDs9TCxEv8iqQzbpxOlEVoOe2kalSYM5kApQb3nZcxdUtoE0liJGW3RGUNE0t4v01A=="
        );
    }

    #[test]
    fn a_get_with_a_query_signs_an_empty_body_line() {
        let m = request_message(
            "GET",
            "/v3/pay/transactions/out-trade-no/1217752501201407033233368018?mchid=1900007291",
            1554208460,
            "593BEC0C930BF1AFEB40B4A08C8FB242",
            b"",
        );
        assert!(m.ends_with(b"593BEC0C930BF1AFEB40B4A08C8FB242\n\n"));
        assert_eq!(
            official().sign(&m).unwrap(),
            "cVvdVujlEmASmAYpcmKXmIrlQualKxd87f8XZtnTeLCw3V7kZ1ST6YwX0kSLsqJeecZqmKJfd6ieRl/hRLZUodxXU1NzoTz1OXNh6TzBfcxU8xRNFbmPiEHwMJM7Jo52TYGk71MaCbvkPlUpUL6WhpmAgfC7jg/3IcA/UILbby4Nro0Nbq0An/DYEEp8vZMaags/5ed52JpGqxEOcTLIuqihy+Amy5z+t8m3a93YTRNDRi0W5b332UQBtrWRSwJOMU96Nof7hJC2MM71Y1bHB8YP8kBKaoDW7vEoNsEMVzkyp0pyjUHFWc6yaRVHE054z79S2koj3jSRbCiY+CaJzg=="
        );
    }

    #[test]
    fn the_authorization_header_round_trips_in_any_order() {
        let s = official();
        let h = s
            .authorization("GET", "/v3/x", 1554208460, "n0nce", b"")
            .unwrap();
        let a = Authorization::parse(&h).unwrap();
        assert_eq!(
            (
                a.mchid.as_str(),
                a.nonce_str.as_str(),
                a.timestamp,
                a.serial_no.as_str()
            ),
            ("1900007291", "n0nce", 1554208460, OFFICIAL_SERIAL)
        );
        let reordered = format!(
            "{SCHEME} signature=\"{}\",serial_no=\"{}\",timestamp=\"1554208460\",nonce_str=\"n0nce\",mchid=\"1900007291\"",
            a.signature, a.serial_no
        );
        assert_eq!(Authorization::parse(&reordered), Some(a));
        assert_eq!(
            Authorization::parse("WECHATPAY2-SHA256-RSA2048 mchid=\"1\""),
            None
        );
        assert_eq!(Authorization::parse("Bearer x"), None);
        assert!(
            !format!("{s:?}").contains("MII"),
            "the key is never printed"
        );
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert_eq!(
            MerchantSigner::from_pem(
                "1",
                "S",
                b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
            )
            .unwrap_err(),
            KeyError::Pem("PRIVATE KEY")
        );
    }
}
