//! The gateway seam: what the checkout needs from a payment gateway, said in
//! the shop's terms (amounts in `Fen`, states as enums, ids as types). Each
//! protocol implements [`Gateway`] in `crate::gateway`; nothing in `checkout/`
//! knows XML, JSON, signatures or a protocol's field names.
//!
//! Failures keep the levels every WeChat Pay protocol has: the request did not
//! get a usable answer (transport), the answer could not be believed, the
//! request was refused (protocol), or the operation failed (business).

use std::future::Future;
use std::pin::Pin;

use jiff::Timestamp;

use crate::base::cause::Failure;
use crate::values::books::DayBill;
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::order::OrderNo;
use crate::values::trade::{OutRefundNo, OutTradeNo, TransactionId};

/// The future a gateway call returns (boxed, so the gateway can be chosen at start-up).
pub type GatewayFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, GatewayError>> + Send + 'a>>;

/// One payment gateway: a protocol, a merchant and where the gateway is.
pub trait Gateway: Send + Sync + 'static {
    /// Asks for a payable code (the QR's content) for one trade number. Sent
    /// again with identical parameters when the outcome is unknown.
    fn create_code<'a>(&'a self, req: &'a CodeRequest) -> GatewayFuture<'a, PayableCode>;
    /// What the gateway knows of one trade number now.
    fn query<'a>(&'a self, out_trade_no: &'a OutTradeNo) -> GatewayFuture<'a, TradeStatus>;
    /// Makes a trade number unpayable.
    fn close<'a>(&'a self, out_trade_no: &'a OutTradeNo) -> GatewayFuture<'a, ()>;
    /// Asks for part or all of one payment back. Sent again with the same
    /// `out_refund_no` (and amounts) when the outcome is unknown: the gateway
    /// refunds once per number. An accepted refund is usually `Processing`.
    fn refund<'a>(&'a self, req: &'a RefundRequest) -> GatewayFuture<'a, RefundStatus>;
    /// What the gateway knows of one refund now.
    fn query_refund<'a>(
        &'a self,
        out_refund_no: &'a OutRefundNo,
    ) -> GatewayFuture<'a, RefundStatus>;
    /// Reads and verifies one notification the gateway sent us, parsing it once.
    fn read_notification(&self, req: &NotifyRequest<'_>) -> ReadNotification;
    /// The protocol's answer to a notification, for what the checkout decided.
    fn notify_reply(&self, ack: Ack) -> NotifyReply;
    /// The gateway's trade bill of one day (its day: Beijing time).
    fn fetch_bill(&self, day: jiff::civil::Date) -> GatewayFuture<'_, BillFetch>;
}

/// What the gateway had for a day's bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillFetch {
    /// The bill, and its text as downloaded (kept).
    Bill { bill: DayBill, raw: String },
    /// The gateway keeps no bill for a day without trades.
    NoTrades,
    /// Not ready yet (bills come the next morning); the text says what the gateway said.
    NotReady(String),
}

/// The longest description the gateways take (v2 `body`: 128 bytes), cut on a
/// character boundary.
pub const MAX_DESCRIPTION_BYTES: usize = 128;

/// A new payable code: everything is fixed when the QR row is written, so that
/// sending it again sends exactly the same.
#[derive(Debug, Clone)]
pub struct CodeRequest {
    pub out_trade_no: OutTradeNo,
    /// What the customer sees in WeChat ("shop-description", cut to the limit).
    pub description: String,
    pub amount: Fen,
    pub client_ip: String,
    pub time_start: Timestamp,
    pub time_expire: Timestamp,
    pub order_no: OrderNo,
}

/// The gateway's answer to [`Gateway::create_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayableCode {
    /// What the QR encodes.
    pub code_url: String,
    /// The gateway's own id of the prepared payment, kept for support (v2
    /// gives one; v3's native answer has only the code).
    pub prepay_id: Option<String>,
}

/// What the gateway reports about a payment it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFacts {
    pub transaction_id: TransactionId,
    pub amount: Fen,
    /// The payer's id at this merchant (openid), if the gateway says.
    pub payer: Option<String>,
    /// When the gateway says it was paid (each adapter reads its protocol's format).
    pub paid_at: Option<Millis>,
}

/// A trade number's state at the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TradeStatus {
    /// Money was taken (a later refund does not undo the receipt).
    Paid(PaymentFacts),
    /// Not paid; still payable until its expiry.
    NotPaid,
    /// The customer is confirming right now: never pull the code at this moment.
    Paying,
    /// It will never be paid: closed, revoked, or the payment failed.
    Closed,
    /// Not final and not known to us (e.g. a state this version does not know): ask again.
    Pending(String),
}

/// One refund, fixed when its row is written so that sending it again sends
/// exactly the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub out_trade_no: OutTradeNo,
    /// The payment's gateway id, when known (the gateway prefers it).
    pub transaction_id: Option<TransactionId>,
    pub out_refund_no: OutRefundNo,
    /// What goes back.
    pub amount: Fen,
    /// What the payment was.
    pub total: Fen,
    /// Why, as the admin wrote it (the gateway may show it to the customer).
    pub reason: String,
}

/// What the gateway says of a refund, with its own id of it and where the
/// money went (e.g. "支付用户零钱"), when it says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RefundFacts {
    pub refund_id: Option<String>,
    pub account: Option<String>,
    /// The refunded amount, when the answer carries it (checked against ours).
    pub amount: Option<Fen>,
    /// When the gateway says the money went back (its bill's day is by this).
    pub succeeded_at: Option<Millis>,
}

/// A refund's state at the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundStatus {
    /// Accepted; the money is on its way.
    Processing(RefundFacts),
    Succeeded(RefundFacts),
    /// Failed for good; nothing moved.
    Closed(RefundFacts),
    /// Stuck (e.g. the customer's card is closed): handled on the merchant platform.
    Abnormal(RefundFacts),
}

impl RefundStatus {
    pub fn facts(&self) -> &RefundFacts {
        match self {
            RefundStatus::Processing(f)
            | RefundStatus::Succeeded(f)
            | RefundStatus::Closed(f)
            | RefundStatus::Abnormal(f) => f,
        }
    }

    pub fn state(&self) -> crate::values::order::RefundState {
        use crate::values::order::RefundState;
        match self {
            RefundStatus::Processing(_) => RefundState::Processing,
            RefundStatus::Succeeded(_) => RefundState::Succeeded,
            RefundStatus::Closed(_) => RefundState::Closed,
            RefundStatus::Abnormal(_) => RefundState::Abnormal,
        }
    }
}

/// Why a gateway call produced no result. Its text is what staff see (a
/// QR's or a refund's last error); the protocol's error behind a transport
/// failure or an unbelievable answer stays its source, down to the reqwest,
/// XML or JSON error, for the log (`cause::chain`).
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No usable answer: connection, timeout, an HTTP error status.
    #[error("could not reach the payment gateway: {0}")]
    Transport(#[source] Failure),
    /// An answer came but cannot be believed: unreadable, badly signed, another merchant's.
    #[error("the payment gateway's answer was not valid: {0}")]
    Unbelievable(#[source] Failure),
    /// The request itself was refused (signature, parameters).
    #[error("the payment gateway refused the request: {0}")]
    Protocol(String),
    /// The operation failed; `code` is the gateway's own code, as it spelt it.
    #[error("the payment gateway answered {code}: {message}")]
    Business {
        kind: Refusal,
        code: String,
        message: String,
    },
}

/// The business refusals the checkout acts on; the rest are `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The trade was paid (e.g. a close that came too late): a payment, never a failure.
    AlreadyPaid,
    AlreadyClosed,
    NoSuchTrade,
    /// The gateway's own trouble; the outcome is unknown.
    GatewayBusy,
    /// The merchant account lacks the balance for a refund: top it up and retry.
    NotEnough,
    /// No such refund at the gateway (a query for a number it never accepted).
    NoSuchRefund,
    Other,
}

impl GatewayError {
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            GatewayError::Business { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The outcome at the gateway is unknown: the same request may be sent again.
    pub fn is_retryable(&self) -> bool {
        match self {
            GatewayError::Transport(_) | GatewayError::Unbelievable(_) => true,
            GatewayError::Business { kind, .. } => *kind == Refusal::GatewayBusy,
            GatewayError::Protocol(_) => false,
        }
    }
}

/// A notification as it reached us: the endpoint it was posted to, the exact
/// body, and the request's headers (lower-case names; values that are not
/// visible ASCII left out: no gateway signs with such), for protocols that
/// sign in headers.
pub struct NotifyRequest<'a> {
    pub endpoint: NotifyEndpoint,
    pub body: &'a [u8],
    pub headers: &'a [(String, String)],
}

/// What an endpoint receives, as the gateway was told (SPEC §3, §7): the
/// endpoint, not the body, says what kind of notification it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyEndpoint {
    /// `/wxpay/notify`: API v2 payment results.
    Payments,
    /// `/wxpay/refund-notify`: API v2 refund results.
    Refunds,
    /// `/wxpay/v3/notify`: API v3 events of either kind (the event says which).
    Events,
}

impl NotifyRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a notification said, once verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Payment {
        out_trade_no: OutTradeNo,
        facts: PaymentFacts,
    },
    /// A payment attempt failed at the gateway: nothing to apply.
    PaymentFailed {
        out_trade_no: Option<OutTradeNo>,
        reason: String,
    },
    /// A refund reached an outcome (or its state changed) at the gateway.
    Refund {
        out_refund_no: OutRefundNo,
        out_trade_no: Option<OutTradeNo>,
        /// The refunded payment's, when the gateway names it.
        transaction_id: Option<TransactionId>,
        status: RefundStatus,
    },
    /// Verified, but about nothing the checkout applies (yet): logged and acknowledged.
    Unhandled { what: String },
}

/// A notification read by its protocol: the verified notice (or why it was
/// refused), and the body as it may be kept in the log (secrets removed, capped).
pub struct ReadNotification {
    pub notice: Result<Notice, String>,
    pub loggable_body: String,
    /// The protocol's own id of a verified notification (API v3 has one),
    /// with its body's digest: the same id with another body is refused.
    pub replay_key: Option<ReplayKey>,
}

/// A notification's id and the SHA-256 of its raw body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayKey {
    pub id: String,
    pub body_sha256: [u8; 32],
}

/// What the checkout decided about a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Durably recorded (or known already): stop sending it.
    Received,
    /// Not taken; the gateway should send it again. The text says why.
    Refused(&'static str),
}

/// The protocol's HTTP answer to a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyReply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}
