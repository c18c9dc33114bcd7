//! What the gateway sends the app: signed notifications, per protocol.

use super::*;

/// A payment notification as the gateway signs it, for `merchant`.
pub fn signed_notification(
    merchant: &Merchant,
    out_trade_no: &str,
    fee: i64,
    transaction_id: &str,
) -> String {
    signed_notification_paid_at(
        merchant,
        out_trade_no,
        fee,
        transaction_id,
        "20261123120000",
    )
}

/// As `signed_notification`, the money taken at `time_end` (`YYYYMMDDhhmmss`,
/// Beijing time).
pub fn signed_notification_paid_at(
    merchant: &Merchant,
    out_trade_no: &str,
    fee: i64,
    transaction_id: &str,
    time_end: &str,
) -> String {
    let notice = scanpay::wxpay::v2::notify::PaymentNotice {
        out_trade_no: scanpay::wxpay::v2::OutTradeNo::new(out_trade_no).unwrap(),
        transaction_id: transaction_id.into(),
        total_fee: scanpay::values::money::Fen::new(fee),
        openid: Some("oUpF8uTEST".into()),
        time_end: Some(time_end.into()),
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
    v3_notification_of("TRANSACTION.SUCCESS", id, tx, apiv3_key, timestamp)
}

/// As `v3_notification`, with another `event_type` (a `transaction` resource).
pub fn v3_notification_of(
    event_type: &str,
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
        event_type,
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
        self.notify_at("/wxpay/notify", body).await
    }
}

/// What the protocols spell differently, so that a flow run on both (`both!`)
/// never names a protocol's word, path or setting.
pub trait GatewaySide: Copy {
    /// How the gateway names its own trouble (a failure worth trying again).
    fn system_error(self) -> &'static str;
    /// How the gateway says a day's bill is not ready yet.
    fn bill_not_ready(self) -> &'static str;
    /// Where the gateway posts payment notifications.
    fn notify_path(self) -> &'static str;
    /// The ways a live app can verify the gateway's answers.
    fn verifications(self) -> &'static [V3Keys];
    /// What a `scanpay` command (not the app) needs in its env to speak it.
    fn cli_env(self) -> &'static [(&'static str, &'static str)];
}

impl GatewaySide for Api {
    fn system_error(self) -> &'static str {
        match self {
            Api::V2 => "SYSTEMERROR",
            Api::V3 => "SYSTEM_ERROR",
        }
    }

    fn bill_not_ready(self) -> &'static str {
        match self {
            Api::V2 => "Bill Creating",
            Api::V3 => "STATEMENT_CREATING",
        }
    }

    fn notify_path(self) -> &'static str {
        match self {
            Api::V2 => "/wxpay/notify",
            Api::V3 => "/wxpay/v3/notify",
        }
    }

    fn verifications(self) -> &'static [V3Keys] {
        match self {
            // v2 signs with the shared key alone: one way.
            Api::V2 => &[V3Keys::PublicKey],
            Api::V3 => &[V3Keys::PublicKey, V3Keys::Certificates],
        }
    }

    fn cli_env(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Api::V2 => &[],
            Api::V3 => &[("SCANPAY_WXPAY_API", "v3")],
        }
    }
}

/// The simulated gateway of an app in simulator mode, spoken to in the app's
/// protocol: what it says of a refund, and the notices it sends.
pub struct Gateway<'a> {
    app: &'a TestApp,
}

impl TestApp {
    /// The gateway at `/sim/`, in this app's protocol.
    pub fn gateway(&self) -> Gateway<'_> {
        Gateway { app: self }
    }

    /// Posts `body` to `path` as the gateway would: the status and the answer.
    pub async fn notify_at(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
        let resp = self
            .anonymous()
            .post(self.url(path))
            .body(body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

impl Gateway<'_> {
    /// What the gateway itself says of refund `no` (its status), if it has it.
    pub async fn query_refund(&self, no: &str) -> Option<String> {
        use scanpay::values::trade::OutRefundNo;
        use scanpay::wxpay::v2::refund::RefundQuery;
        let app = self.app;
        match app.api {
            Api::V2 => {
                let query = RefundQuery {
                    out_refund_no: OutRefundNo::new(no.to_string()).unwrap(),
                };
                let gateway = client(&app.url("/sim/"), SignType::Md5);
                gateway
                    .refund_query(&query)
                    .await
                    .ok()
                    .map(|r| r.status.as_str().to_string())
            }
            Api::V3 => {
                let wx = scanpay::config::Wxpay {
                    api: Api::V3,
                    ..Default::default()
                };
                let mut merchant = wx.v3_merchant_or_demo().unwrap();
                merchant.public_key = Some(scanpay::wxpay::v3::PublicKey {
                    id: scanpay::sim::v3::keys::PUBLIC_KEY_ID.into(),
                    pem: scanpay::sim::v3::keys::PUBLIC_KEY_PEM.into(),
                });
                let timeout = Duration::from_secs(20);
                let gateway = scanpay::wxpay::v3::client::V3Client::connect(
                    &app.url("/sim"),
                    &merchant,
                    timeout,
                )
                .await
                .unwrap();
                gateway.query_refund(no).await.ok().map(|r| r.status)
            }
        }
    }

    /// The gateway's notice that refund `no` (of `fee` fen, of `out_trade_no`)
    /// succeeded, arriving late: whether it was acknowledged.
    pub async fn notify_refund_succeeded(&self, no: &str, out_trade_no: &str, fee: i64) -> bool {
        let app = self.app;
        match app.api {
            Api::V2 => {
                let (status, body) = v2_refund_notice(app, no, out_trade_no, fee, "SUCCESS").await;
                status == 200 && body.contains("SUCCESS")
            }
            Api::V3 => {
                let now = jiff::Timestamp::now().as_second();
                let refund_id: String = app
                    .db()
                    .query_row(
                        "SELECT refund_id FROM refunds WHERE out_refund_no = ?1",
                        [no],
                        |r| r.get(0),
                    )
                    .unwrap();
                let notice = serde_json::json!({"mchid": DEMO_V3_MCH_ID, "out_trade_no": out_trade_no,
                    "refund_id": refund_id, "out_refund_no": no, "refund_status": "SUCCESS",
                    "user_received_account": "支付用户零钱",
                    "amount": {"total": fee, "refund": fee, "payer_total": fee, "payer_refund": fee}});
                let (body, _) = v3_notification("EV-LATE", &notice, DEMO_V3_APIV3_KEY, now);
                let mut env: serde_json::Value = serde_json::from_slice(&body).unwrap();
                env["event_type"] = "REFUND.SUCCESS".into();
                let body = serde_json::to_vec(&env).unwrap();
                let (status, _) = app.notify_v3(&body, &sign_v3(&body, now)).await;
                matches!(status, 200 | 204)
            }
        }
    }
}

/// The v2 gateway's refund notification for `no` in state `status`, encrypted
/// with the demo key, posted to `/wxpay/refund-notify`: the status and the answer.
pub async fn v2_refund_notice(
    app: &TestApp,
    no: &str,
    out_trade_no: &str,
    fee: i64,
    status: &str,
) -> (u16, String) {
    use scanpay::wxpay::v2::refund::{RefundInfo, RefundStatusV2, build_notification};
    let info = RefundInfo {
        out_refund_no: no.into(),
        out_trade_no: Some(out_trade_no.into()),
        transaction_id: None,
        refund_id: Some("50000000000000000001".into()),
        refund_fee: Some(scanpay::values::money::Fen::new(fee)),
        status: RefundStatusV2::parse(status),
        account: Some("支付用户零钱".into()),
        success_time: Some("2026-12-01 12:00:00".into()),
    };
    let body = scanpay::wxpay::v2::xml::to_xml(&build_notification(
        &info,
        &demo_merchant(SignType::Md5),
        "n",
    ));
    app.notify_at("/wxpay/refund-notify", body).await
}
