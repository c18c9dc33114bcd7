//! The one mapping of API v3's words to the shop's, shared by the trade half
//! (`mod.rs`) and the refund half (`refund.rs`) of the adapter: trade states,
//! failures, and the gateway's moments.

use crate::base::cause::Failure;
use crate::checkout::gateway::{GatewayError, PaymentFacts, Refusal, TradeStatus};
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::trade::TransactionId;
use crate::wxpay::v3::api::{ErrorCode, TradeState, Transaction};
use crate::wxpay::v3::client::V3Error;

/// v3's `success_time` (RFC 3339) as a moment. A text that is not one is
/// left out, not refused: the payment is real either way, and its day falls
/// back to when we recorded it.
pub(super) fn paid_at(success_time: Option<&str>) -> Option<Millis> {
    let text = success_time?;
    match text.parse::<jiff::Timestamp>() {
        Ok(t) => crate::gateway::believable_time(t.into(), text),
        Err(e) => {
            tracing::warn!(success_time = text, error.message = %e, error.cause_chain = %crate::base::cause::chain(&e), "the gateway's time of payment is not readable");
            None
        }
    }
}

/// The one mapping of v3 trade states to the shop's.
pub(super) fn trade_status(tx: Transaction) -> Result<TradeStatus, GatewayError> {
    Ok(match tx.state() {
        TradeState::Success | TradeState::Refund => {
            let (Some(id), Some(amount)) = (tx.transaction_id, tx.amount) else {
                return Err(GatewayError::Unbelievable(
                    "a paid order without transaction_id or amount".into(),
                ));
            };
            // Orders are made in CNY only: fen of another currency are not our fen.
            if let Some(c) = amount.currency.as_deref().filter(|c| *c != "CNY") {
                return Err(GatewayError::Unbelievable(
                    format!("a payment in {c:.8}, not CNY").into(),
                ));
            }
            TradeStatus::Paid(PaymentFacts {
                transaction_id: TransactionId::new(id)
                    .map_err(|e| GatewayError::Unbelievable(Failure::of(e)))?,
                amount: Fen::new(amount.total),
                payer: tx.payer.map(|p| p.openid),
                paid_at: paid_at(tx.success_time.as_deref()),
            })
        }
        TradeState::NotPay => TradeStatus::NotPaid,
        TradeState::UserPaying => TradeStatus::Paying,
        TradeState::Closed | TradeState::Revoked | TradeState::PayError => TradeStatus::Closed,
        TradeState::Unknown(other) => TradeStatus::Pending(other),
    })
}

/// The one mapping of v3 failures to the seam's levels.
pub(super) fn gateway_error(e: V3Error) -> GatewayError {
    match e {
        // The words stay the protocol's; the protocol's error stays the cause.
        V3Error::Transport(ref f) => {
            GatewayError::Transport(Failure::because(f.text().to_string(), e))
        }
        V3Error::Unbelievable(ref f) => {
            GatewayError::Unbelievable(Failure::because(f.text().to_string(), e))
        }
        V3Error::Key(e) => GatewayError::Protocol(e.to_string()),
        V3Error::Api {
            status,
            code,
            raw_code,
            message,
        } => {
            let kind = match code {
                ErrorCode::OrderPaid => Refusal::AlreadyPaid,
                ErrorCode::OrderClosed => Refusal::AlreadyClosed,
                ErrorCode::OrderNotExist => Refusal::NoSuchTrade,
                ErrorCode::SignError | ErrorCode::ParamError | ErrorCode::InvalidRequest => {
                    return GatewayError::Protocol(format!("{raw_code}: {message}"));
                }
                c if c.is_retryable() || status >= 500 => Refusal::GatewayBusy,
                _ => Refusal::Other,
            };
            GatewayError::Business {
                kind,
                code: raw_code,
                message,
            }
        }
    }
}
