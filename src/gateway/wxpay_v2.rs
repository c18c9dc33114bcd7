//! WeChat Pay API v2 behind the checkout's gateway seam: XML, MD5/HMAC-SHA256
//! signatures and `return_code`/`result_code` stay on this side.

use crate::checkout::gateway::{
    Ack, CodeRequest, Gateway, GatewayError, GatewayFuture, Notice, NotifyReply, NotifyRequest,
    PayableCode, PaymentFacts, ReadNotification, Refusal, TradeStatus,
};
use crate::trade::{OutTradeNo, TransactionId};
use crate::wxpay::notify::{self, PaymentNotice};
use crate::wxpay::{
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

    fn read_notification(&self, req: &NotifyRequest<'_>) -> ReadNotification {
        let (notice, loggable_body) = notify::read(req.body, self.client.merchant());
        let notice = match notice {
            Err(e) => Err(e.to_string()),
            Ok(notify::Notice::Failed {
                out_trade_no,
                err_code,
            }) => Ok(Notice::PaymentFailed {
                out_trade_no,
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
            paid_at: p.time_end,
        },
    })
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
                    .map_err(|e| GatewayError::Unbelievable(e.to_string()))?,
                amount,
                payer: r.openid,
                paid_at: r.time_end,
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
        WxPayError::Transport(detail) => GatewayError::Transport(detail),
        WxPayError::BadResponse(detail) => GatewayError::Unbelievable(detail),
        WxPayError::Protocol { return_msg } => GatewayError::Protocol(return_msg),
        WxPayError::Business { code, description } => {
            let kind = match code {
                ErrCode::OrderPaid => Refusal::AlreadyPaid,
                ErrCode::OrderClosed => Refusal::AlreadyClosed,
                ErrCode::OrderNotExist => Refusal::NoSuchTrade,
                ErrCode::SystemError => Refusal::GatewayBusy,
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
    use crate::money::Fen;

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
        assert_eq!(
            trade_status(result(TradeState::NotPay)),
            Ok(TradeStatus::NotPaid)
        );
        assert_eq!(
            trade_status(result(TradeState::UserPaying)),
            Ok(TradeStatus::Paying)
        );
        for s in [
            TradeState::Closed,
            TradeState::Revoked,
            TradeState::PayError,
        ] {
            assert_eq!(trade_status(result(s)), Ok(TradeStatus::Closed));
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
        assert!(
            !gateway_error(WxPayError::Protocol {
                return_msg: "sign".into()
            })
            .is_retryable()
        );
    }
}
