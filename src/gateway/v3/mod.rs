//! WeChat Pay API v3 behind the checkout's gateway seam: JSON, RSA signatures
//! in headers, encrypted notification resources and HTTP-status answers stay
//! on this side. The shop's terms are the same as for v2.
//!
//! The five-minute QR refresh is v2's: a new `out_trade_no` per QR, the old
//! one closed. v3's alternative, re-ordering the same `out_trade_no` with
//! identical parameters for a fresh `code_url` (the old code dies), would
//! need `time_expire` to be the whole order's life, leaving the trade payable
//! that long even if a close failed, and would make a payment of a superseded
//! QR indistinguishable from one of the current QR; with one trade number per
//! QR, "late" and "superseded" stay exact and `time_expire` bounds each code.

mod mapping;
mod refund;

use std::sync::Arc;

use sha2::Digest;

use crate::checkout::gateway::{
    Ack, BillFetch, CodeRequest, Gateway, GatewayError, GatewayFuture, Notice, NotifyReply,
    NotifyRequest, PayableCode, ReadNotification, RefundRequest, RefundStatus, ReplayKey,
    TradeStatus,
};
use crate::values::trade::OutRefundNo;
use crate::values::trade::OutTradeNo;
use crate::wxpay::v3::aead::ApiV3Key;
use crate::wxpay::v3::api::{self, Amount, NativeOrder, SceneInfo, Transaction};
use crate::wxpay::v3::client::{V3Client, V3Error};
use crate::wxpay::v3::notify::{self, Event};
use crate::wxpay::v3::verify::Signed;
use mapping::{gateway_error, trade_status};

/// The most of a notification body kept in the log (its resource is ciphertext).
const MAX_LOGGED_BODY: usize = 4096;

/// v3's `description` is string(127), one byte less than v2's `body`.
const MAX_DESCRIPTION_BYTES: usize = 127;

pub struct WxPayV3 {
    /// Shared with start-up's certificate refresh.
    client: Arc<V3Client>,
    apiv3_key: ApiV3Key,
    /// Where WeChat Pay sends notifications (`…/wxpay/v3/notify`).
    notify_url: String,
}

impl WxPayV3 {
    pub fn new(client: Arc<V3Client>, apiv3_key: ApiV3Key, notify_url: String) -> Self {
        WxPayV3 {
            client,
            apiv3_key,
            notify_url,
        }
    }

    /// A transaction is believed only for our merchant and app.
    fn ours(&self, tx: &Transaction) -> Result<(), String> {
        if tx.mchid == self.client.mchid() && tx.appid == self.client.appid() {
            Ok(())
        } else {
            Err("the transaction is for another merchant".into())
        }
    }
}

impl Gateway for WxPayV3 {
    fn create_code<'a>(&'a self, req: &'a CodeRequest) -> GatewayFuture<'a, PayableCode> {
        Box::pin(async move {
            // Every field is fixed by the QR row, so a resend is byte for byte the same.
            let order = NativeOrder {
                appid: self.client.appid().to_string(),
                mchid: self.client.mchid().to_string(),
                description: req.description
                    [..req.description.floor_char_boundary(MAX_DESCRIPTION_BYTES)]
                    .to_string(),
                out_trade_no: req.out_trade_no.to_string(),
                time_expire: api::format_time(req.time_expire),
                notify_url: self.notify_url.clone(),
                amount: Amount {
                    total: req.amount.get(),
                    currency: Some("CNY".into()),
                },
                scene_info: SceneInfo {
                    payer_client_ip: req.client_ip.clone(),
                },
            };
            let answer = self.client.native(&order).await.map_err(gateway_error)?;
            Ok(PayableCode {
                code_url: answer.code_url,
                prepay_id: None,
            })
        })
    }

    fn query<'a>(&'a self, out_trade_no: &'a OutTradeNo) -> GatewayFuture<'a, TradeStatus> {
        Box::pin(async move {
            let tx = self
                .client
                .query(out_trade_no.as_str())
                .await
                .map_err(gateway_error)?;
            self.ours(&tx)
                .map_err(|why| GatewayError::Unbelievable(why.into()))?;
            if tx.out_trade_no != out_trade_no.as_str() {
                return Err(GatewayError::Unbelievable(
                    "the answer is about another out_trade_no".into(),
                ));
            }
            trade_status(tx)
        })
    }

    fn close<'a>(&'a self, out_trade_no: &'a OutTradeNo) -> GatewayFuture<'a, ()> {
        Box::pin(async move {
            self.client
                .close(out_trade_no.as_str())
                .await
                .map_err(gateway_error)
        })
    }

    fn refund<'a>(&'a self, req: &'a RefundRequest) -> GatewayFuture<'a, RefundStatus> {
        Box::pin(async move { refund::refund(&self.client, req, &self.notify_url).await })
    }

    fn query_refund<'a>(
        &'a self,
        out_refund_no: &'a OutRefundNo,
    ) -> GatewayFuture<'a, RefundStatus> {
        Box::pin(async move { refund::query(&self.client, out_refund_no).await })
    }

    fn read_notification(&self, req: &NotifyRequest<'_>) -> ReadNotification {
        let signed = Signed {
            timestamp: req.header("Wechatpay-Timestamp"),
            nonce: req.header("Wechatpay-Nonce"),
            signature: req.header("Wechatpay-Signature"),
            serial: req.header("Wechatpay-Serial"),
        };
        let mut loggable_body = String::from_utf8_lossy(req.body).into_owned();
        loggable_body.truncate(loggable_body.floor_char_boundary(MAX_LOGGED_BODY));
        let now = jiff::Timestamp::now().as_second();
        let mut replay_key = None;
        let notice = notify::read(req.body, &signed, &*self.client, &self.apiv3_key, now)
            .map_err(|e| e.to_string())
            .inspect(|n| {
                // Only a verified id counts: the checkout refuses it with another body.
                replay_key = Some(ReplayKey {
                    id: n.id.clone(),
                    body_sha256: sha2::Sha256::digest(req.body).into(),
                });
            })
            .and_then(|n| match n.event {
                // Only a success pays: another TRANSACTION.* event (signed, and
                // perhaps carrying a "SUCCESS" resource) is logged, not applied;
                // the poller asks the gateway what really happened.
                Event::Transaction(_) if n.event_type != notify::TRANSACTION_SUCCESS => {
                    let mut what = format!("event {}", n.event_type);
                    what.truncate(what.floor_char_boundary(80));
                    Ok(Notice::Unhandled { what })
                }
                Event::Transaction(tx) => {
                    self.ours(&tx)?;
                    transaction_notice(*tx)
                }
                Event::Refund(n) => refund::refund_notice(*n, self.client.mchid()),
            });
        ReadNotification {
            notice,
            loggable_body,
            replay_key,
        }
    }

    fn fetch_bill(&self, day: jiff::civil::Date) -> GatewayFuture<'_, BillFetch> {
        Box::pin(async move {
            let answer = match self.client.trade_bill(day).await {
                Ok(a) => a,
                // A day without trades has no bill; one not made yet, later.
                Err(V3Error::Api { raw_code, .. }) if raw_code == "NO_STATEMENT_EXIST" => {
                    return Ok(BillFetch::NoTrades);
                }
                Err(V3Error::Api {
                    raw_code, message, ..
                }) if raw_code == "STATEMENT_CREATING" => {
                    return Ok(BillFetch::NotReady(format!("{raw_code}: {message}")));
                }
                Err(e) => return Err(gateway_error(e)),
            };
            // The download URL lives minutes (or seconds): fetched at once.
            let raw = self
                .client
                .download_bill(&answer)
                .await
                .map_err(gateway_error)?;
            Ok(BillFetch::Bill {
                bill: super::bill::day_bill(&raw, self.client.mchid())?,
                raw,
            })
        })
    }

    fn notify_reply(&self, ack: Ack) -> NotifyReply {
        // v3 reads the status: 204 stops the retries, 4xx/5xx asks for them.
        match ack {
            Ack::Received => NotifyReply {
                status: 204,
                content_type: "application/json",
                body: String::new(),
            },
            Ack::Refused(why) => NotifyReply {
                status: 500,
                content_type: "application/json",
                body: notify::reply_fail(why),
            },
        }
    }
}

/// A payment notification in the shop's terms.
fn transaction_notice(tx: Transaction) -> Result<Notice, String> {
    let out_trade_no = OutTradeNo::new(tx.out_trade_no.clone()).map_err(|e| e.to_string())?;
    match trade_status(tx).map_err(|e| e.to_string())? {
        TradeStatus::Paid(facts) => Ok(Notice::Payment {
            out_trade_no,
            facts,
        }),
        other => Ok(Notice::PaymentFailed {
            out_trade_no: Some(out_trade_no),
            reason: format!("{other:?}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::mapping::paid_at;
    use super::*;
    use crate::checkout::gateway::{NotifyEndpoint, Refusal};
    use crate::values::money::Fen;
    use crate::wxpay::v3::api::ErrorCode;

    fn tx(state: &str) -> Transaction {
        serde_json::from_str(&format!(
            r#"{{"appid":"wx","mchid":"1","out_trade_no":"SP1","transaction_id":"4200001","trade_state":"{state}","amount":{{"total":1250,"currency":"CNY"}},"payer":{{"openid":"o1"}},"success_time":"2026-01-01T12:00:00+08:00"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn every_v3_trade_state_has_the_same_meaning_as_in_v2() {
        assert!(matches!(
            trade_status(tx("SUCCESS")),
            Ok(TradeStatus::Paid(f)) if f.amount == Fen::new(1250) && f.payer.as_deref() == Some("o1")
        ));
        // The wire's RFC 3339 is a moment by the time it reaches the domain.
        let noon: jiff::Timestamp = "2026-01-01T04:00:00Z".parse().unwrap();
        assert!(matches!(
            trade_status(tx("SUCCESS")),
            Ok(TradeStatus::Paid(f)) if f.paid_at == Some(noon.into())
        ));
        assert_eq!(
            paid_at(Some("2026-01-01T12:00:00+08:00")),
            Some(noon.into())
        );
        assert_eq!(paid_at(Some("yesterday")), None);
        assert_eq!(paid_at(None), None);
        assert!(matches!(
            trade_status(tx("REFUND")),
            Ok(TradeStatus::Paid(_))
        ));
        assert_eq!(trade_status(tx("NOTPAY")).ok(), Some(TradeStatus::NotPaid));
        assert_eq!(
            trade_status(tx("USERPAYING")).ok(),
            Some(TradeStatus::Paying)
        );
        for s in ["CLOSED", "REVOKED", "PAYERROR"] {
            assert_eq!(trade_status(tx(s)).ok(), Some(TradeStatus::Closed));
        }
        assert_eq!(
            trade_status(tx("SOMETHING_NEW")).ok(),
            Some(TradeStatus::Pending("SOMETHING_NEW".into()))
        );
        let mut unproven = tx("SUCCESS");
        unproven.amount = None;
        assert!(matches!(
            trade_status(unproven),
            Err(GatewayError::Unbelievable(_))
        ));
    }

    #[test]
    fn failures_keep_their_level_in_both_spellings() {
        let api = |status, code: &str| V3Error::Api {
            status,
            code: ErrorCode::parse(code),
            raw_code: code.into(),
            message: "m".into(),
        };
        assert_eq!(
            gateway_error(api(404, "ORDER_NOT_EXIST")).refusal(),
            Some(Refusal::NoSuchTrade)
        );
        assert_eq!(
            gateway_error(api(404, "ORDERNOTEXIST")).refusal(),
            Some(Refusal::NoSuchTrade)
        );
        assert_eq!(
            gateway_error(api(400, "ORDER_PAID")).refusal(),
            Some(Refusal::AlreadyPaid)
        );
        assert_eq!(
            gateway_error(api(400, "ORDER_CLOSED")).refusal(),
            Some(Refusal::AlreadyClosed)
        );
        assert!(gateway_error(api(500, "SYSTEM_ERROR")).is_retryable());
        assert!(gateway_error(api(503, "SERVICE_UNAVAILABLE")).is_retryable());
        assert!(gateway_error(api(429, "FREQUENCY_LIMITED")).is_retryable());
        assert!(matches!(
            gateway_error(api(401, "SIGN_ERROR")),
            GatewayError::Protocol(_)
        ));
        assert!(!gateway_error(api(403, "NO_AUTH")).is_retryable());
        assert!(gateway_error(V3Error::Transport("timed out".into())).is_retryable());
    }

    #[test]
    fn a_refusal_asks_for_a_resend_by_its_status() {
        use crate::wxpay::v3::sign::tests::official;
        use crate::wxpay::v3::verify::WechatPayKeys;
        let client = V3Client::new(
            "http://127.0.0.1:9",
            "wx",
            official(),
            WechatPayKeys::default(),
            "PUB_KEY_ID_X",
            std::time::Duration::from_secs(1),
        )
        .unwrap();
        let g = WxPayV3::new(
            Arc::new(client),
            ApiV3Key::new("scanpay-demo-apiv3-key-000000000").unwrap(),
            "https://shop.example/wxpay/v3/notify".into(),
        );
        assert_eq!(g.notify_reply(Ack::Received).status, 204);
        let fail = g.notify_reply(Ack::Refused("try again"));
        assert_eq!(fail.status, 500);
        assert!(fail.body.contains("\"FAIL\""));
        // An unsigned body is refused before anything in it is read.
        let read = g.read_notification(&NotifyRequest {
            endpoint: NotifyEndpoint::Events,
            body: b"{}",
            headers: &[],
        });
        assert!(read.notice.is_err());
    }

    #[tokio::test]
    async fn a_transport_failure_keeps_its_cause_and_no_token() {
        use crate::wxpay::v3::sign::tests::official;
        use crate::wxpay::v3::verify::WechatPayKeys;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let client = V3Client::new(
            &base,
            "wx",
            official(),
            WechatPayKeys::default(),
            "PUB_KEY_ID_X",
            std::time::Duration::from_secs(5),
        )
        .unwrap();
        // A bill's download link carries its token in the query.
        let bill = crate::wxpay::v3::bill::TradeBill {
            hash_type: "SHA1".into(),
            hash_value: "00".into(),
            download_url: format!("{base}/v3/billdownload/file?token=SECRETTOKEN"),
        };
        let e = gateway_error(client.download_bill(&bill).await.unwrap_err());
        assert_eq!(
            e.to_string(),
            "could not reach the payment gateway: connection failed"
        );
        let levels: Vec<_> =
            std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source()).collect();
        assert!(levels.iter().any(|l| l.is::<V3Error>()));
        assert!(levels.iter().any(|l| l.is::<reqwest::Error>()));
        assert!(levels.iter().any(|l| l.is::<std::io::Error>()));
        let logged = crate::base::cause::chain(&e).to_string();
        assert!(logged.contains("Connection refused"), "{logged}");
        for shown in [logged, format!("{e:?}")] {
            assert!(!shown.contains("SECRETTOKEN"), "{shown}");
            assert!(!shown.contains("billdownload"), "no URL: {shown}");
        }
    }

    #[test]
    fn a_foreign_download_link_is_named_without_its_token() {
        let e = crate::wxpay::v3::bill::download_path(
            "https://elsewhere.example/file?token=SECRETTOKEN",
            "https://api.mch.weixin.qq.com",
        )
        .unwrap_err();
        assert!(!e.to_string().contains("SECRETTOKEN"), "{e}");
        assert!(e.to_string().contains("elsewhere.example/file"), "{e}");
    }
}
