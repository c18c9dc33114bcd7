//! WeChat Pay API v2 behind the checkout's gateway seam: XML, MD5/HMAC-SHA256
//! signatures and `return_code`/`result_code` stay on this side.

use crate::base::cause::Failure;
use crate::checkout::gateway::{
    Ack, BillFetch, CodeRequest, Gateway, GatewayError, GatewayFuture, Notice, NotifyEndpoint,
    NotifyReply, NotifyRequest, PayableCode, PaymentFacts, ReadNotification, RefundFacts,
    RefundRequest, RefundStatus, Refusal, TradeStatus,
};
use crate::values::clock::Millis;
use crate::values::trade::{OutRefundNo, OutTradeNo, TransactionId};
use crate::wxpay::v2::download_bill::{BillDownload, DownloadBill};
use crate::wxpay::v2::notify::{self, PaymentNotice};
use crate::wxpay::v2::refund::{self as v2refund, RefundInfo, RefundStatusV2};
use crate::wxpay::v2::types::parse_time;
use crate::wxpay::v2::{
    CloseOrder, ErrCode, OrderQuery, QueryResult, TradeState, UnifiedOrder, WxPayClient, WxPayError,
};

pub struct WxPayV2 {
    client: WxPayClient,
    /// Where the gateway sends payment notifications for the codes we create.
    notify_url: String,
}

impl WxPayV2 {
    pub fn new(client: WxPayClient, notify_url: String) -> Self {
        WxPayV2 { client, notify_url }
    }

    /// Refund notifications go beside payment ones: `…/wxpay/refund-notify`.
    fn refund_notify_url(&self) -> Option<String> {
        self.notify_url
            .strip_suffix("/wxpay/notify")
            .map(|base| format!("{base}/wxpay/refund-notify"))
    }

    fn read_refund_notification(&self, body: &[u8]) -> ReadNotification {
        let notice = v2refund::read_notification(body, self.client.merchant())
            .map_err(|e| e.to_string())
            .and_then(refund_notice);
        // The ciphertext is kept as it came: without the key it says nothing.
        let mut loggable_body = String::from_utf8_lossy(body).into_owned();
        loggable_body.truncate(loggable_body.floor_char_boundary(notify::MAX_LOGGED_BODY));
        ReadNotification {
            notice,
            loggable_body,
            // Authenticity is the decryption, and a refund is applied once by its state.
            replay_key: None,
        }
    }
}

/// The one mapping of v2 refund states to the shop's.
fn refund_status(info: RefundInfo) -> Result<RefundStatus, GatewayError> {
    let facts = RefundFacts {
        refund_id: info.refund_id,
        account: info.account,
        amount: info.refund_fee,
        succeeded_at: info.success_time.as_deref().and_then(refund_time),
    };
    Ok(match info.status {
        RefundStatusV2::Success => RefundStatus::Succeeded(facts),
        RefundStatusV2::Processing => RefundStatus::Processing(facts),
        RefundStatusV2::Closed => RefundStatus::Closed(facts),
        RefundStatusV2::Change => RefundStatus::Abnormal(facts),
        // Not known to this version: not final, so it is asked about again.
        RefundStatusV2::Unknown(_) => RefundStatus::Processing(facts),
    })
}

fn refund_notice(info: RefundInfo) -> Result<Notice, String> {
    let out_refund_no = OutRefundNo::new(info.out_refund_no.clone()).map_err(|e| e.to_string())?;
    let out_trade_no = info
        .out_trade_no
        .as_deref()
        .map(OutTradeNo::new)
        .transpose()
        .map_err(|e| e.to_string())?;
    let transaction_id = info
        .transaction_id
        .clone()
        .map(TransactionId::new)
        .transpose()
        .map_err(|e| e.to_string())?;
    let status = refund_status(info).map_err(|e| e.to_string())?;
    Ok(Notice::Refund {
        out_refund_no,
        out_trade_no,
        transaction_id,
        status,
    })
}

impl Gateway for WxPayV2 {
    fn create_code<'a>(&'a self, req: &'a CodeRequest) -> GatewayFuture<'a, PayableCode> {
        Box::pin(async move {
            let prepay = self
                .client
                .unified_order(&UnifiedOrder {
                    body: req.description.clone(),
                    out_trade_no: req.out_trade_no.clone(),
                    total_fee: req.amount,
                    spbill_create_ip: req.client_ip.clone(),
                    time_start: req.time_start,
                    time_expire: req.time_expire,
                    notify_url: self.notify_url.clone(),
                    product_id: req.order_no.to_string(),
                    attach: None,
                })
                .await
                .map_err(gateway_error)?;
            Ok(PayableCode {
                code_url: prepay.code_url,
                prepay_id: Some(prepay.prepay_id),
            })
        })
    }

    fn query<'a>(&'a self, out_trade_no: &'a OutTradeNo) -> GatewayFuture<'a, TradeStatus> {
        Box::pin(async move {
            let r = self
                .client
                .order_query(&OrderQuery {
                    out_trade_no: out_trade_no.clone(),
                })
                .await
                .map_err(gateway_error)?;
            trade_status(r)
        })
    }

    fn close<'a>(&'a self, out_trade_no: &'a OutTradeNo) -> GatewayFuture<'a, ()> {
        Box::pin(async move {
            self.client
                .close_order(&CloseOrder {
                    out_trade_no: out_trade_no.clone(),
                })
                .await
                .map_err(gateway_error)
        })
    }

    fn fetch_bill(&self, day: jiff::civil::Date) -> GatewayFuture<'_, BillFetch> {
        Box::pin(async move {
            let req = DownloadBill {
                bill_date: day.strftime("%Y%m%d").to_string(),
            };
            match self
                .client
                .download_bill(&req)
                .await
                .map_err(gateway_error)?
            {
                BillDownload::Bill(raw) => Ok(BillFetch::Bill {
                    bill: super::bill::day_bill(&raw, &self.client.merchant().mch_id)?,
                    raw,
                }),
                BillDownload::NoTrades => Ok(BillFetch::NoTrades),
                BillDownload::NotReady => Ok(BillFetch::NotReady("Bill Creating".into())),
            }
        })
    }

    fn refund<'a>(&'a self, req: &'a RefundRequest) -> GatewayFuture<'a, RefundStatus> {
        Box::pin(async move {
            let accepted = self
                .client
                .refund(&v2refund::Refund {
                    out_trade_no: req.out_trade_no.clone(),
                    transaction_id: req.transaction_id.as_ref().map(|t| t.to_string()),
                    out_refund_no: req.out_refund_no.clone(),
                    total_fee: req.total,
                    refund_fee: req.amount,
                    refund_desc: req.reason.clone(),
                    notify_url: self.refund_notify_url(),
                })
                .await
                .map_err(gateway_error)?;
            if accepted.out_refund_no != req.out_refund_no.as_str() {
                return Err(GatewayError::Unbelievable(
                    "the answer is for another refund".into(),
                ));
            }
            // v2 says only "accepted": the outcome comes from refundquery or the notification.
            Ok(RefundStatus::Processing(RefundFacts {
                refund_id: accepted.refund_id,
                account: None,
                amount: accepted.refund_fee,
                succeeded_at: None,
            }))
        })
    }

    fn query_refund<'a>(
        &'a self,
        out_refund_no: &'a OutRefundNo,
    ) -> GatewayFuture<'a, RefundStatus> {
        Box::pin(async move {
            let info = self
                .client
                .refund_query(&v2refund::RefundQuery {
                    out_refund_no: out_refund_no.clone(),
                })
                .await
                .map_err(gateway_error)?;
            refund_status(info)
        })
    }

    fn read_notification(&self, req: &NotifyRequest<'_>) -> ReadNotification {
        // A refund notification is unsigned XML carrying the encrypted
        // req_info, sent where the refund said (`refund_notify_url`).
        if req.endpoint == NotifyEndpoint::Refunds {
            return self.read_refund_notification(req.body);
        }
        let (notice, loggable_body) = notify::read(req.body, self.client.merchant());
        let notice = match notice {
            Err(e) => Err(e.to_string()),
            Ok(notify::Notice::Failed {
                out_trade_no,
                err_code,
            }) => Ok(Notice::PaymentFailed {
                out_trade_no: out_trade_no.and_then(|n| OutTradeNo::new(n).ok()),
                reason: err_code,
            }),
            Ok(notify::Notice::Paid(p)) => paid_notice(p),
        };
        ReadNotification {
            notice,
            loggable_body,
            // v2 notifications carry no id of their own.
            replay_key: None,
        }
    }

    fn notify_reply(&self, ack: Ack) -> NotifyReply {
        // v2 answers every notification with 200; the XML says whether it was taken.
        let body = match ack {
            Ack::Received => notify::ack_success(),
            Ack::Refused(why) => notify::ack_fail(why),
        };
        NotifyReply {
            status: 200,
            content_type: "text/xml; charset=utf-8",
            body,
        }
    }
}

fn paid_notice(p: PaymentNotice) -> Result<Notice, String> {
    let transaction_id = TransactionId::new(p.transaction_id).map_err(|e| e.to_string())?;
    Ok(Notice::Payment {
        out_trade_no: p.out_trade_no,
        facts: PaymentFacts {
            transaction_id,
            amount: p.total_fee,
            payer: p.openid,
            paid_at: paid_at(p.time_end.as_deref()),
        },
    })
}

/// v2's `time_end` (`yyyyMMddHHmmss`, Beijing time) as a moment. A text
/// that is not one is left out, not refused: the payment is real either way,
/// and its day falls back to when we recorded it.
fn paid_at(time_end: Option<&str>) -> Option<Millis> {
    let text = time_end?;
    match parse_time(text) {
        Ok(t) => super::believable_time(t.into(), text),
        Err(e) => {
            tracing::warn!(time_end = text, error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "the gateway's time of payment is not readable");
            None
        }
    }
}

/// v2's refund `success_time` (`yyyy-MM-dd HH:mm:ss`, Beijing time) as a
/// moment; unreadable, it is left out (the refund's day is then when we
/// learned of it).
fn refund_time(text: &str) -> Option<Millis> {
    match jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", text)
        .and_then(|t| t.to_zoned(crate::wxpay::v2::types::beijing()))
    {
        Ok(z) => super::believable_time(z.timestamp().into(), text),
        Err(e) => {
            tracing::warn!(success_time = text, error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "the gateway's time of a refund is not readable");
            None
        }
    }
}

/// The one mapping of v2 trade states to the shop's.
fn trade_status(r: QueryResult) -> Result<TradeStatus, GatewayError> {
    Ok(match r.trade_state {
        TradeState::Success | TradeState::Refund => {
            let (Some(id), Some(amount)) = (r.transaction_id, r.total_fee) else {
                return Err(GatewayError::Unbelievable(
                    "a paid order without transaction_id or total_fee".into(),
                ));
            };
            TradeStatus::Paid(PaymentFacts {
                transaction_id: TransactionId::new(id)
                    .map_err(|e| GatewayError::Unbelievable(Failure::of(e)))?,
                amount,
                payer: r.openid,
                paid_at: paid_at(r.time_end.as_deref()),
            })
        }
        TradeState::NotPay => TradeStatus::NotPaid,
        TradeState::UserPaying => TradeStatus::Paying,
        TradeState::Closed | TradeState::Revoked | TradeState::PayError => TradeStatus::Closed,
        TradeState::Accept => TradeStatus::Pending("ACCEPT".into()),
        TradeState::Unknown(s) => TradeStatus::Pending(s),
    })
}

/// The one mapping of v2 failures to the seam's levels.
fn gateway_error(e: WxPayError) -> GatewayError {
    match e {
        // The words stay the protocol's; the protocol's error stays the cause.
        WxPayError::Transport(ref f) => {
            GatewayError::Transport(Failure::because(f.text().to_string(), e))
        }
        WxPayError::BadResponse(ref f) => {
            GatewayError::Unbelievable(Failure::because(f.text().to_string(), e))
        }
        WxPayError::Protocol { return_msg } => GatewayError::Protocol(return_msg),
        e @ WxPayError::NoClientCertificate => GatewayError::Protocol(e.to_string()),
        WxPayError::Business { code, description } => {
            let kind = match code {
                ErrCode::OrderPaid => Refusal::AlreadyPaid,
                ErrCode::OrderClosed => Refusal::AlreadyClosed,
                ErrCode::OrderNotExist => Refusal::NoSuchTrade,
                ErrCode::SystemError | ErrCode::BizerrNeedRetry => Refusal::GatewayBusy,
                ErrCode::NotEnough => Refusal::NotEnough,
                ErrCode::RefundNotExist => Refusal::NoSuchRefund,
                _ => Refusal::Other,
            };
            GatewayError::Business {
                kind,
                code: code.as_str().to_string(),
                message: description,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::money::Fen;

    fn result(state: TradeState) -> QueryResult {
        QueryResult {
            trade_state: state,
            trade_state_desc: String::new(),
            out_trade_no: "SP1".into(),
            transaction_id: Some("4200000001".into()),
            total_fee: Some(Fen::new(1250)),
            openid: None,
            time_end: None,
        }
    }

    #[test]
    fn every_v2_trade_state_has_one_meaning() {
        assert!(matches!(
            trade_status(result(TradeState::Success)),
            Ok(TradeStatus::Paid(f)) if f.amount == Fen::new(1250)
        ));
        assert!(matches!(
            trade_status(result(TradeState::Refund)),
            Ok(TradeStatus::Paid(_))
        ));
        // The wire's Beijing `yyyyMMddHHmmss` is a moment by the time it reaches the domain.
        let mut stamped = result(TradeState::Success);
        stamped.time_end = Some("20260101120000".into());
        let noon: jiff::Timestamp = "2026-01-01T04:00:00Z".parse().unwrap();
        assert!(matches!(
            trade_status(stamped),
            Ok(TradeStatus::Paid(f)) if f.paid_at == Some(noon.into())
        ));
        assert_eq!(paid_at(Some("2026-01-01 12:00")), None);
        assert_eq!(paid_at(None), None);
        assert_eq!(
            trade_status(result(TradeState::NotPay)).ok(),
            Some(TradeStatus::NotPaid)
        );
        assert_eq!(
            trade_status(result(TradeState::UserPaying)).ok(),
            Some(TradeStatus::Paying)
        );
        for s in [
            TradeState::Closed,
            TradeState::Revoked,
            TradeState::PayError,
        ] {
            assert_eq!(trade_status(result(s)).ok(), Some(TradeStatus::Closed));
        }
        assert!(matches!(
            trade_status(result(TradeState::Unknown("NEW".into()))),
            Ok(TradeStatus::Pending(s)) if s == "NEW"
        ));
        let mut unpaid_paid = result(TradeState::Success);
        unpaid_paid.transaction_id = None;
        assert!(matches!(
            trade_status(unpaid_paid),
            Err(GatewayError::Unbelievable(_))
        ));
    }

    #[test]
    fn every_v2_refund_state_has_one_meaning() {
        let info = |status| RefundInfo {
            out_refund_no: "R1".into(),
            out_trade_no: Some("SP1".into()),
            transaction_id: None,
            refund_id: Some("5000".into()),
            refund_fee: Some(Fen::new(100)),
            status,
            account: Some("支付用户零钱".into()),
            success_time: None,
        };
        let state = |s| refund_status(info(s)).unwrap().state();
        use crate::values::order::RefundState;
        assert_eq!(state(RefundStatusV2::Success), RefundState::Succeeded);
        assert_eq!(state(RefundStatusV2::Processing), RefundState::Processing);
        assert_eq!(state(RefundStatusV2::Closed), RefundState::Closed);
        assert_eq!(state(RefundStatusV2::Change), RefundState::Abnormal);
        assert_eq!(
            state(RefundStatusV2::Unknown("NEW".into())),
            RefundState::Processing
        );
        let s = refund_status(info(RefundStatusV2::Success)).unwrap();
        assert_eq!(s.facts().account.as_deref(), Some("支付用户零钱"));
        // The gateway's time of success, Beijing time, as a moment.
        let mut done = info(RefundStatusV2::Success);
        done.success_time = Some("2026-11-30 23:59:59".into());
        assert_eq!(
            refund_status(done).unwrap().facts().succeeded_at,
            Some(Millis::from(
                "2026-11-30T23:59:59+08:00"
                    .parse::<jiff::Timestamp>()
                    .unwrap()
            ))
        );
        let mut garbled = info(RefundStatusV2::Success);
        garbled.success_time = Some("2026-11-30T23:59:59".into());
        assert_eq!(refund_status(garbled).unwrap().facts().succeeded_at, None);
        assert!(matches!(
            refund_notice(info(RefundStatusV2::Success)),
            Ok(Notice::Refund { out_refund_no, .. }) if out_refund_no.as_str() == "R1"
        ));
    }

    #[test]
    fn failures_keep_their_level_and_the_gateway_code() {
        let e = gateway_error(WxPayError::Business {
            code: ErrCode::OrderPaid,
            description: "paid".into(),
        });
        assert_eq!(e.refusal(), Some(Refusal::AlreadyPaid));
        assert!(!e.is_retryable());
        assert_eq!(
            e.to_string(),
            "the payment gateway answered ORDERPAID: paid"
        );
        let busy = gateway_error(WxPayError::Business {
            code: ErrCode::SystemError,
            description: String::new(),
        });
        assert!(busy.is_retryable());
        assert!(gateway_error(WxPayError::Transport("timed out".into())).is_retryable());
        let poor = gateway_error(WxPayError::Business {
            code: ErrCode::NotEnough,
            description: "基本账户余额不足,请充值后重新发起".into(),
        });
        assert_eq!(poor.refusal(), Some(Refusal::NotEnough));
        assert!(!poor.is_retryable());
        assert!(!gateway_error(WxPayError::NoClientCertificate).is_retryable());
        assert!(
            !gateway_error(WxPayError::Protocol {
                return_msg: "sign".into()
            })
            .is_retryable()
        );
    }

    /// A client of a gateway at `base` (nothing need listen there).
    fn adapter(base: &str) -> WxPayV2 {
        let merchant = crate::wxpay::v2::Merchant {
            appid: "wxd930ea5d5a258f4f".into(),
            mch_id: "10000100".into(),
            key: crate::wxpay::v2::ApiKey::new("192006250b4c09247ec02edce69f6a2d").unwrap(),
            sign_type: crate::wxpay::v2::SignType::Md5,
        };
        let client = WxPayClient::new(base, merchant, std::time::Duration::from_secs(5)).unwrap();
        WxPayV2::new(client, "https://shop.example/wxpay/notify".into())
    }

    fn levels(e: &GatewayError) -> Vec<&(dyn std::error::Error + 'static)> {
        std::iter::successors(Some(e as &dyn std::error::Error), |e| e.source()).collect()
    }

    #[tokio::test]
    async fn a_transport_failure_keeps_its_cause_down_to_the_socket() {
        // A port just freed: the connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let g = adapter(&format!("http://127.0.0.1:{port}/"));
        let e = g.query(&OutTradeNo::new("SP1").unwrap()).await.unwrap_err();
        // What staff see stays the short text.
        assert_eq!(
            e.to_string(),
            "could not reach the payment gateway: connection failed"
        );
        assert!(e.is_retryable());
        let levels = levels(&e);
        assert!(
            levels
                .iter()
                .any(|l| l.downcast_ref::<WxPayError>().is_some()),
            "the protocol's error is kept"
        );
        assert!(levels.iter().any(|l| l.is::<reqwest::Error>()));
        assert!(
            levels.iter().any(|l| l
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)),
            "{}",
            crate::base::cause::chain(&e)
        );
        let logged = crate::base::cause::chain(&e).to_string();
        assert!(
            logged.starts_with("could not reach the payment gateway: connection failed: "),
            "{logged}"
        );
        assert!(!logged.contains(&port.to_string()), "no URL: {logged}");
    }

    #[tokio::test]
    async fn an_unbelievable_answer_keeps_the_xml_error() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0; 4096];
            let _ = s.read(&mut buf).await;
            let body = "<html>not the gateway</html>";
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(answer.as_bytes()).await.unwrap();
        });
        let g = adapter(&format!("http://127.0.0.1:{port}/"));
        let e = g.query(&OutTradeNo::new("SP1").unwrap()).await.unwrap_err();
        assert!(matches!(e, GatewayError::Unbelievable(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "the payment gateway's answer was not valid: the root element must be <xml>"
        );
        let xml = levels(&e)
            .into_iter()
            .find_map(|l| l.downcast_ref::<crate::wxpay::v2::xml::XmlError>());
        assert!(
            matches!(xml, Some(crate::wxpay::v2::xml::XmlError::NoRoot)),
            "{xml:?}"
        );
    }
}
