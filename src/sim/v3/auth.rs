//! How WeChat Pay checks a merchant's request (§1.8, §1.11): the
//! `Authorization` header's five fields in any order, the merchant and its
//! certificate serial, the five-minute window, and the RSA signature over
//! method, raw path with query, timestamp, nonce and the exact body.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

use super::ApiError;
use crate::wxpay::v3::sign::{Authorization, SCHEME, request_message};
use crate::wxpay::v3::verify::MAX_SKEW_SECS;

/// The merchant as WeChat Pay knows it: its mchid, its API certificate's
/// serial and that certificate's public key.
pub struct MerchantAuth {
    pub mchid: String,
    pub serial: String,
    pub key: UnparsedPublicKey<Vec<u8>>,
}

impl MerchantAuth {
    /// From the merchant's PKCS#1 RSAPublicKey DER.
    pub fn new(mchid: &str, serial: &str, rsa_public_der: Vec<u8>) -> Self {
        MerchantAuth {
            mchid: mchid.to_string(),
            serial: serial.to_string(),
            key: UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, rsa_public_der),
        }
    }
}

fn sign_error(message: &str, detail: serde_json::Value) -> ApiError {
    ApiError::new(401, "SIGN_ERROR", message).with_detail(detail)
}

/// Checks one request at `now` (Unix seconds); the parsed header when it holds.
pub fn verify(
    merchant: &MerchantAuth,
    header: Option<&str>,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now: i64,
) -> Result<Authorization, ApiError> {
    let Some(header) = header else {
        return Err(sign_error(
            "Http头缺少Authorization",
            serde_json::json!({"field": "authorization", "location": "header"}),
        ));
    };
    if !header.starts_with(SCHEME) {
        return Err(sign_error(
            "错误的签名方式",
            serde_json::json!({"field": "authorization", "location": "header",
                "detail": {"issue": format!("the scheme must be {SCHEME}")}}),
        ));
    }
    let auth = Authorization::parse(header).ok_or_else(|| {
        sign_error(
            "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》",
            serde_json::json!({"field": "authorization", "location": "header"}),
        )
    })?;
    if auth.mchid != merchant.mchid {
        return Err(ApiError::new(400, "MCH_NOT_EXISTS", "商户号不存在"));
    }
    if !auth.serial_no.eq_ignore_ascii_case(&merchant.serial) {
        return Err(sign_error(
            "商户证书序列号有误。请使用签名私钥匹配的证书序列号",
            serde_json::json!({"field": "serial_no", "location": "authorization"}),
        ));
    }
    if now.saturating_sub(auth.timestamp).unsigned_abs() >= MAX_SKEW_SECS as u64 {
        return Err(sign_error(
            "Http头Authorization中的timestamp与发起请求的时间不得超过5分钟",
            serde_json::json!({"field": "timestamp", "location": "authorization"}),
        ));
    }
    let message = request_message(
        method,
        path_and_query,
        auth.timestamp,
        &auth.nonce_str,
        body,
    );
    let matches = STANDARD
        .decode(&auth.signature)
        .ok()
        .is_some_and(|sig| merchant.key.verify(&message, &sig).is_ok());
    if !matches {
        // What WeChat Pay echoes to help a merchant find the difference.
        let shown = String::from_utf8_lossy(&message[..message.len().min(64)]).into_owned();
        return Err(sign_error(
            "签名错误，请检查后再试",
            serde_json::json!({
                "detail": {"issue": "sign not match"},
                "field": "signature",
                "location": "authorization",
                "sign_information": {
                    "method": method,
                    "sign_message_length": message.len(),
                    "truncated_sign_message": shown,
                    "url": path_and_query.split('?').next().unwrap_or(""),
                }
            }),
        ));
    }
    Ok(auth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wxpay::v3::sign::tests::{OFFICIAL_SERIAL, official};

    const NOW: i64 = 1_800_000_000;
    const PATH: &str = "/v3/pay/transactions/out-trade-no/SP1?mchid=1900007291";

    fn merchant() -> MerchantAuth {
        MerchantAuth::new(
            "1900007291",
            OFFICIAL_SERIAL,
            official().public_key_der().to_vec(),
        )
    }

    fn header(ts: i64, body: &[u8]) -> String {
        official()
            .authorization("POST", PATH, ts, "n0nce", body)
            .unwrap()
    }

    fn code(r: Result<Authorization, ApiError>) -> (u16, &'static str, String) {
        let e = r.unwrap_err();
        (e.status, e.code, e.message)
    }

    #[test]
    fn a_well_signed_request_passes_and_every_kind_of_wrong_is_a_401() {
        let body = br#"{"mchid":"1900007291"}"#;
        let h = header(NOW, body);
        let ok = verify(&merchant(), Some(&h), "POST", PATH, body, NOW + 5).unwrap();
        assert_eq!(ok.mchid, "1900007291");

        // Altered body, other method, other path: the signature no longer matches.
        for (method, path, b) in [
            ("POST", PATH, &br#"{"mchid":"1900007292"}"#[..]),
            ("GET", PATH, &body[..]),
            (
                "POST",
                "/v3/pay/transactions/out-trade-no/SP2?mchid=1900007291",
                &body[..],
            ),
        ] {
            let (status, c, m) = code(verify(&merchant(), Some(&h), method, path, b, NOW));
            assert_eq!((status, c), (401, "SIGN_ERROR"), "{method} {path}");
            assert!(m.contains("签名错误"), "{m}");
        }
        // Stale either way (300 s or more).
        for ts in [NOW - 300, NOW + 300] {
            let (status, c, m) = code(verify(
                &merchant(),
                Some(&header(ts, body)),
                "POST",
                PATH,
                body,
                NOW,
            ));
            assert_eq!((status, c), (401, "SIGN_ERROR"));
            assert!(m.contains("5分钟"), "{m}");
        }
        assert!(
            verify(
                &merchant(),
                Some(&header(NOW - 299, body)),
                "POST",
                PATH,
                body,
                NOW
            )
            .is_ok()
        );
        // Wrong key: signed by another key under the merchant's serial.
        let other = crate::wxpay::v3::sign::MerchantSigner::from_pem(
            "1900007291",
            OFFICIAL_SERIAL,
            include_bytes!("sim_platform_private.pem"),
        )
        .unwrap();
        let forged = other
            .authorization("POST", PATH, NOW, "n0nce", body)
            .unwrap();
        assert_eq!(
            code(verify(&merchant(), Some(&forged), "POST", PATH, body, NOW)).0,
            401
        );
        // Wrong serial: the merchant's key, another certificate's serial.
        let wrong_serial = h.replace(OFFICIAL_SERIAL, "0000000000000000000000000000000000000000");
        let (status, _, m) = code(verify(
            &merchant(),
            Some(&wrong_serial),
            "POST",
            PATH,
            body,
            NOW,
        ));
        assert_eq!(status, 401);
        assert!(m.contains("序列号"), "{m}");
        // Another merchant, a missing or malformed header, another scheme.
        let other_mch = h.replace("mchid=\"1900007291\"", "mchid=\"1900000001\"");
        assert_eq!(
            code(verify(
                &merchant(),
                Some(&other_mch),
                "POST",
                PATH,
                body,
                NOW
            ))
            .1,
            "MCH_NOT_EXISTS"
        );
        assert_eq!(
            code(verify(&merchant(), None, "POST", PATH, body, NOW)).0,
            401
        );
        assert_eq!(
            code(verify(
                &merchant(),
                Some("WECHATPAY2-SHA256-RSA2048 mchid=\"1\""),
                "POST",
                PATH,
                body,
                NOW
            ))
            .0,
            401
        );
        assert_eq!(
            code(verify(
                &merchant(),
                Some("Bearer abc"),
                "POST",
                PATH,
                body,
                NOW
            ))
            .0,
            401
        );
    }

    #[test]
    fn the_sign_error_tells_what_was_signed_like_wechat_pay() {
        let body = b"{}";
        let h = header(NOW, b"{ }");
        let e = verify(&merchant(), Some(&h), "POST", PATH, body, NOW).unwrap_err();
        let d = e.detail.unwrap();
        assert_eq!(d["field"], "signature");
        assert_eq!(d["sign_information"]["method"], "POST");
        assert_eq!(
            d["sign_information"]["url"],
            "/v3/pay/transactions/out-trade-no/SP1"
        );
    }
}
