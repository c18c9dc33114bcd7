//! A v3 notification: the signature over the raw body is checked first (by
//! serial, within five minutes), then the resource is decrypted with the
//! APIv3 key and read. Only then is anything in it believed.

use serde::{Deserialize, Serialize};

use super::aead::{self, AeadError, ApiV3Key};
use super::api::Transaction;
use super::refund::RefundNotice;
use super::verify::{Signed, VerifyError, WechatPayKeys};

/// A payment succeeded.
pub const TRANSACTION_SUCCESS: &str = "TRANSACTION.SUCCESS";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub algorithm: String,
    pub ciphertext: String,
    #[serde(default)]
    pub associated_data: String,
    pub nonce: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_type: Option<String>,
}

/// The envelope WeChat Pay posts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    pub create_time: String,
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub resource: Resource,
}

/// What a notification's envelope says of itself (the gateway's side).
pub struct EventHead<'a> {
    pub id: &'a str,
    pub create_time: &'a str,
    pub event_type: &'a str,
    pub summary: &'a str,
}

/// The envelope WeChat Pay posts for `plain`, its resource encrypted with the
/// APIv3 key; `kind` (`transaction`, `refund`) is both the associated data and
/// the original type. What the simulator sends, and what tests and benchmarks
/// that play the gateway send.
pub fn seal(
    key: &ApiV3Key,
    nonce: &str,
    head: &EventHead<'_>,
    kind: &str,
    plain: &[u8],
) -> Result<Envelope, AeadError> {
    Ok(Envelope {
        id: head.id.into(),
        create_time: head.create_time.into(),
        event_type: head.event_type.into(),
        resource_type: Some("encrypt-resource".into()),
        summary: Some(head.summary.into()),
        resource: Resource {
            algorithm: aead::ALGORITHM.into(),
            ciphertext: aead::encrypt(key, nonce, kind, plain)?,
            associated_data: kind.into(),
            nonce: nonce.into(),
            original_type: Some(kind.into()),
        },
    })
}

/// What a verified, decrypted notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `TRANSACTION.*`: a payment.
    Transaction(Box<Transaction>),
    /// `REFUND.*`: a refund's outcome.
    Refund(Box<RefundNotice>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The notification's id: the same id again is the same notification.
    pub id: String,
    pub event_type: String,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("notification signature: {0}")]
    Verify(#[from] VerifyError),
    #[error("unreadable notification: {0}")]
    Json(String),
    #[error("notification resource: {0}")]
    Decrypt(#[from] AeadError),
    #[error("unknown notification event {0:?}")]
    Event(String),
}

/// Whatever holds the WeChat Pay keys believed now.
pub trait Verifier {
    fn verify(&self, h: &Signed<'_>, body: &[u8], now: i64) -> Result<(), VerifyError>;
}

impl Verifier for WechatPayKeys {
    fn verify(&self, h: &Signed<'_>, body: &[u8], now: i64) -> Result<(), VerifyError> {
        WechatPayKeys::verify(self, h, body, now)
    }
}

impl Verifier for super::client::V3Client {
    fn verify(&self, h: &Signed<'_>, body: &[u8], now: i64) -> Result<(), VerifyError> {
        super::client::V3Client::verify(self, h, body, now)
    }
}

/// Verifies, decrypts and reads one notification at `now` (Unix seconds).
pub fn read(
    body: &[u8],
    headers: &Signed<'_>,
    keys: &impl Verifier,
    apiv3_key: &ApiV3Key,
    now: i64,
) -> Result<Notification, NotifyError> {
    keys.verify(headers, body, now)?;
    let env: Envelope =
        serde_json::from_slice(body).map_err(|e| NotifyError::Json(e.to_string()))?;
    let r = &env.resource;
    let plain = aead::decrypt(
        apiv3_key,
        &r.algorithm,
        &r.nonce,
        &r.associated_data,
        &r.ciphertext,
    )?;
    let event = if env.event_type.starts_with("TRANSACTION.") {
        Event::Transaction(
            serde_json::from_slice(&plain).map_err(|e| NotifyError::Json(e.to_string()))?,
        )
    } else if env.event_type.starts_with("REFUND.") {
        Event::Refund(serde_json::from_slice(&plain).map_err(|e| NotifyError::Json(e.to_string()))?)
    } else {
        return Err(NotifyError::Event(env.event_type));
    };
    Ok(Notification {
        id: env.id,
        event_type: env.event_type,
        event,
    })
}

/// The answer that makes WeChat Pay send a notification again (with a 4xx/5xx status).
pub fn reply_fail(message: &str) -> String {
    serde_json::json!({ "code": "FAIL", "message": message }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wxpay::v3::sign::tests::official;
    use crate::wxpay::v3::verify::response_message;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn a_sealed_envelope_opens_with_its_key_and_kind() {
        let key = ApiV3Key::new("scanpay-demo-apiv3-key-000000000").unwrap();
        let head = EventHead {
            id: "EV-1",
            create_time: "2026-12-01T12:00:00+08:00",
            event_type: "REFUND.SUCCESS",
            summary: "退款成功",
        };
        let env = seal(&key, "0123456789ab", &head, "refund", b"{\"a\":1}").unwrap();
        assert_eq!(
            (env.id.as_str(), env.event_type.as_str()),
            ("EV-1", "REFUND.SUCCESS")
        );
        assert_eq!(env.resource.associated_data, "refund");
        let r = &env.resource;
        let plain = aead::decrypt(
            &key,
            &r.algorithm,
            &r.nonce,
            &r.associated_data,
            &r.ciphertext,
        );
        assert_eq!(plain.unwrap(), b"{\"a\":1}");
        assert!(
            aead::decrypt(&key, &r.algorithm, &r.nonce, "transaction", &r.ciphertext).is_err(),
            "the kind is bound in"
        );
    }
    const SERIAL: &str = "PUB_KEY_ID_0114232134912410000000000000";

    fn apiv3() -> ApiV3Key {
        ApiV3Key::new("scanpay-demo-apiv3-key-000000000").unwrap()
    }

    fn keys() -> WechatPayKeys {
        let mut k = WechatPayKeys::default();
        k.add_rsa_public_der(SERIAL, official().public_key_der().to_vec());
        k
    }

    /// A notification as WeChat Pay sends it: encrypted resource, signed body.
    fn notification(tx: &Transaction) -> (Vec<u8>, String) {
        let plain = serde_json::to_vec(tx).unwrap();
        let env = Envelope {
            id: "ad3db7bd-6a70-5d3c-b88e-4769c0465477".into(),
            create_time: "2026-01-01T12:00:00+08:00".into(),
            event_type: TRANSACTION_SUCCESS.into(),
            resource_type: Some("encrypt-resource".into()),
            summary: Some("支付成功".into()),
            resource: Resource {
                algorithm: aead::ALGORITHM.into(),
                ciphertext: aead::encrypt(&apiv3(), "pUdohsWGTw7G", "transaction", &plain).unwrap(),
                associated_data: "transaction".into(),
                nonce: "pUdohsWGTw7G".into(),
                original_type: Some("transaction".into()),
            },
        };
        let body = serde_json::to_vec(&env).unwrap();
        let sig = official()
            .sign(&response_message(&NOW.to_string(), "n0nce", &body))
            .unwrap();
        (body, sig)
    }

    fn paid() -> Transaction {
        serde_json::from_str(
            r#"{"mchid":"1900007291","appid":"wxd678efh567hg6787","out_trade_no":"SP1","transaction_id":"4200002737202507232719585747","trade_type":"NATIVE","trade_state":"SUCCESS","trade_state_desc":"支付成功","success_time":"2025-07-23T09:54:13+08:00","payer":{"openid":"o1"},"amount":{"total":400,"payer_total":400,"currency":"CNY","payer_currency":"CNY"}}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_signed_encrypted_payment_reads_and_nothing_else_does() {
        let (body, sig) = notification(&paid());
        let ts = NOW.to_string();
        let h = Signed {
            timestamp: Some(&ts),
            nonce: Some("n0nce"),
            signature: Some(&sig),
            serial: Some(SERIAL),
        };
        let n = read(&body, &h, &keys(), &apiv3(), NOW + 5).unwrap();
        assert_eq!(n.event, Event::Transaction(Box::new(paid())));
        assert_eq!(n.id, "ad3db7bd-6a70-5d3c-b88e-4769c0465477");

        let mut altered = body.clone();
        let at = altered.len() - 3;
        altered[at] ^= 1;
        assert!(matches!(
            read(&altered, &h, &keys(), &apiv3(), NOW),
            Err(NotifyError::Verify(VerifyError::Mismatch))
        ));
        assert!(matches!(
            read(&body, &h, &keys(), &apiv3(), NOW + 300),
            Err(NotifyError::Verify(VerifyError::Stale(300)))
        ));
        let probe = Signed {
            signature: Some("WECHATPAY/SIGNTEST/xyz"),
            ..h
        };
        assert!(matches!(
            read(&body, &probe, &keys(), &apiv3(), NOW),
            Err(NotifyError::Verify(VerifyError::Probe))
        ));
        let other_key = ApiV3Key::new("another-apiv3-key-00000000000000").unwrap();
        assert!(matches!(
            read(&body, &h, &keys(), &other_key, NOW),
            Err(NotifyError::Decrypt(AeadError::Open))
        ));
    }

    #[test]
    fn the_failure_reply_is_wechat_pays_shape() {
        let v: serde_json::Value = serde_json::from_str(&reply_fail("try again")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"code": "FAIL", "message": "try again"})
        );
    }
}
