//! What the gateway sends the app: signed notifications, per protocol.

use super::*;

/// A payment notification as the gateway signs it, for `merchant`.
pub fn signed_notification(
    merchant: &Merchant,
    out_trade_no: &str,
    fee: i64,
    transaction_id: &str,
) -> String {
    let notice = scanpay::wxpay::v2::notify::PaymentNotice {
        out_trade_no: scanpay::wxpay::v2::OutTradeNo::new(out_trade_no).unwrap(),
        transaction_id: transaction_id.into(),
        total_fee: scanpay::values::money::Fen::new(fee),
        openid: Some("oUpF8uTEST".into()),
        time_end: Some("20261123120000".into()),
        bank_type: None,
    };
    scanpay::wxpay::v2::xml::to_xml(&scanpay::wxpay::v2::notify::build(
        &notice,
        merchant,
        merchant.sign_type,
        "nonce",
        None,
    ))
}

/// What WeChat Pay puts in the headers of a v3 notification.
pub struct V3Headers {
    pub timestamp: String,
    pub nonce: String,
    pub signature: String,
    pub serial: String,
}

/// A v3 payment notification as the simulator's WeChat Pay would send it:
/// `tx` encrypted with `apiv3_key`, the body signed at `timestamp` with the
/// simulator's public key.
pub fn v3_notification(
    id: &str,
    tx: &serde_json::Value,
    apiv3_key: &str,
    timestamp: i64,
) -> (Vec<u8>, V3Headers) {
    use scanpay::wxpay::v3::notify::{EventHead, seal};
    let key = scanpay::wxpay::v3::aead::ApiV3Key::new(apiv3_key).unwrap();
    let plain = serde_json::to_vec(tx).unwrap();
    let head = EventHead {
        id,
        create_time: "2026-12-01T12:00:00+08:00",
        event_type: "TRANSACTION.SUCCESS",
        summary: "支付成功",
    };
    let env = seal(&key, "pUdohsWGTw7G", &head, "transaction", &plain).unwrap();
    let body = serde_json::to_vec(&env).unwrap();
    let headers = sign_v3(&body, timestamp);
    (body, headers)
}

/// Signs `body` at `timestamp` as the simulator's WeChat Pay public key.
pub fn sign_v3(body: &[u8], timestamp: i64) -> V3Headers {
    let keys = scanpay::sim::v3::keys::SimKeys::load().unwrap();
    let ts = timestamp.to_string();
    let nonce = "n0nce0n0nce0n0nce".to_string();
    let signature = keys
        .public_key
        .sign(&scanpay::wxpay::v3::verify::response_message(
            &ts, &nonce, body,
        ))
        .unwrap();
    V3Headers {
        timestamp: ts,
        nonce,
        signature,
        serial: scanpay::sim::v3::keys::PUBLIC_KEY_ID.into(),
    }
}

/// A paid transaction as v3 describes it.
pub fn v3_paid(out_trade_no: &str, total: i64, transaction_id: &str) -> serde_json::Value {
    serde_json::json!({
        "appid": DEMO_V3_APPID, "mchid": DEMO_V3_MCH_ID, "out_trade_no": out_trade_no,
        "transaction_id": transaction_id, "trade_type": "NATIVE", "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功", "bank_type": "OTHERS", "attach": "",
        "success_time": "2026-12-01T12:00:00+08:00", "payer": {"openid": "oUpF8uTEST"},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"}
    })
}

impl TestApp {
    /// Posts a v3 notification to `/wxpay/v3/notify`: the status and the answer.
    pub async fn notify_v3(&self, body: &[u8], h: &V3Headers) -> (u16, String) {
        let resp = self
            .anonymous()
            .post(self.url("/wxpay/v3/notify"))
            .header("content-type", "application/json")
            .header("Wechatpay-Timestamp", &h.timestamp)
            .header("Wechatpay-Nonce", &h.nonce)
            .header("Wechatpay-Signature", &h.signature)
            .header("Wechatpay-Serial", &h.serial)
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

impl TestApp {
    /// Posts `body` to `/wxpay/notify` as the gateway would: the status and the answer.
    pub async fn notify(&self, body: impl Into<reqwest::Body>) -> (u16, String) {
        let resp = self
            .anonymous()
            .post(self.url("/wxpay/notify"))
            .body(body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}
