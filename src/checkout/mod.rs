//! The domain: orders, their QRs, and every state change, each in one SQLite
//! transaction. No web framework here.

pub mod apply;
pub mod hub;
pub mod transitions;

#[cfg(test)]
mod interleavings;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::money::Fen;
use crate::order::{OrderState, OrderToken, PaymentSource, QrState};
use crate::store::orders::{self, NewOrder, OrderRow, QrRow};
use crate::store::payments::{self, NotificationRow};
use crate::store::{Store, StoreError, now_ms};
use crate::wxpay::notify::{self, Notice};
use crate::wxpay::{
    CloseOrder, ErrCode, OrderQuery, OutTradeNo, QueryResult, TradeState, UnifiedOrder,
    WxPayClient, WxPayError, xml,
};
pub use apply::{ApplyOutcome, Evidence, apply_payment};
pub use hub::Hub;
use transitions::{GATEWAY_MARGIN, end_order, insert_planned, ms, plan_qr, replace_current_qr};

/// How often one unifiedorder is sent again (same parameters) on an unknown outcome.
const ISSUE_ATTEMPTS: u32 = 4;
/// A QR left `creating` this long was interrupted (crash, lost answer): send it again.
pub const STALE_CREATION: Duration = Duration::from_secs(15);
/// Longest notification body kept in the log.
const MAX_LOGGED_BODY: usize = 4096;

#[derive(Debug, Clone)]
pub struct CheckoutConfig {
    pub qr_ttl: Duration,
    pub order_ttl: Duration,
    pub max_amount: Fen,
    pub notify_url: String,
    pub shop_name: String,
    pub shop_tz: jiff::tz::TimeZone,
    pub poll_fast: Duration,
    pub poll_fast_period: Duration,
    pub poll_slow: Duration,
    pub max_backoff: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no such order")]
    NotFound,
    #[error("the order is already {0}")]
    Ended(OrderState),
    #[error("the order's QR code is not in a state that can be retried")]
    NothingToRetry,
}

pub struct NewOrderInput {
    pub amount: Fen,
    pub description: String,
    pub cashier_id: Option<i64>,
    pub client_ip: String,
}

/// When to ask the gateway about a QR again, after an answer that changed nothing.
#[derive(Debug, Clone)]
pub struct PollSchedule {
    pub qr_id: i64,
    pub next_poll_at: i64,
    /// Consecutive gateway errors (0 after an answer), for the backoff.
    pub errors: i64,
    pub error: Option<String>,
}

/// A notification's answer: the XML body, and whether it was SUCCESS.
pub struct NotifyReply {
    pub success: bool,
    pub body: String,
}

#[derive(Clone)]
pub struct Checkout {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    wx: WxPayClient,
    hub: Hub,
    cfg: CheckoutConfig,
}

pub fn to_timestamp(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `body` for the gateway: "shop - description", cut to 128 bytes on a character boundary.
fn gateway_body(shop: &str, description: &str) -> String {
    let mut s = if description.is_empty() {
        shop.to_string()
    } else {
        format!("{shop}-{description}")
    };
    if s.len() > 128 {
        let mut cut = 128;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

impl Checkout {
    pub fn new(store: Store, wx: WxPayClient, hub: Hub, cfg: CheckoutConfig) -> Self {
        Checkout {
            inner: Arc::new(Inner {
                store,
                wx,
                hub,
                cfg,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    pub fn config(&self) -> &CheckoutConfig {
        &self.inner.cfg
    }

    fn wx(&self) -> &WxPayClient {
        &self.inner.wx
    }

    /// Records the order and its first QR, then asks the gateway for the QR.
    /// A gateway failure leaves the order recorded with a failed QR (shown with a retry).
    #[tracing::instrument(skip_all, fields(amount = %input.amount, order_no = tracing::field::Empty))]
    pub async fn create_order(&self, input: NewOrderInput) -> Result<OrderToken, CheckoutError> {
        let token = OrderToken::generate();
        let now = now_ms();
        let cfg = &self.inner.cfg;
        let expires_at = now + ms(cfg.order_ttl);
        let day = to_timestamp(now)
            .to_zoned(cfg.shop_tz.clone())
            .strftime("%Y%m%d")
            .to_string();
        let qr_ttl = cfg.qr_ttl;
        let tok = token.to_string();
        let (order, qr) = self
            .store()
            .write(move |tx| {
                let (order_id, order_no) = orders::insert_order(
                    tx,
                    &NewOrder {
                        token: &tok,
                        amount: input.amount,
                        description: &input.description,
                        cashier_id: input.cashier_id,
                        now,
                        expires_at,
                        day: &day,
                    },
                )?;
                let plan = plan_qr(qr_ttl, &order_no, 1, expires_at, &input.client_ip, now);
                let qr = insert_planned(tx, order_id, 1, &plan, now)?;
                orders::add_event(
                    tx,
                    order_id,
                    now,
                    "created",
                    &format!("{} {}", input.amount, input.description),
                )?;
                orders::add_event(
                    tx,
                    order_id,
                    now,
                    "qr_issued",
                    &format!("QR 1: {}", plan.out_trade_no),
                )?;
                Ok((orders::order_by_id(tx, order_id)?, qr))
            })
            .await?;
        tracing::Span::current().record("order_no", order.order_no.as_str());
        self.issue(&order, &qr).await?;
        Ok(token)
    }

    /// Sends a QR's `unifiedorder` (again, with the same parameters, on an unknown
    /// outcome) and records the answer.
    #[tracing::instrument(skip_all, fields(out_trade_no = %qr.out_trade_no))]
    pub async fn issue(&self, order: &OrderRow, qr: &QrRow) -> Result<(), CheckoutError> {
        let cfg = &self.inner.cfg;
        let out_trade_no = match OutTradeNo::new(qr.out_trade_no.clone()) {
            Ok(o) => o,
            Err(e) => return Err(CheckoutError::Store(StoreError::Task(e.to_string()))),
        };
        let req = UnifiedOrder {
            body: gateway_body(&cfg.shop_name, &order.description),
            out_trade_no,
            total_fee: order.amount,
            spbill_create_ip: qr.spbill_create_ip.clone(),
            time_start: to_timestamp(qr.time_start),
            time_expire: to_timestamp(qr.time_expire),
            notify_url: cfg.notify_url.clone(),
            product_id: order.order_no.clone(),
            attach: None,
        };
        let mut attempt = 1;
        let result = loop {
            match self.wx().unified_order(&req).await {
                Err(e) if e.is_retryable() && attempt < ISSUE_ATTEMPTS => {
                    tracing::warn!(attempt, error.message = %e, "unifiedorder failed; sending it again");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    attempt += 1;
                }
                other => break other,
            }
        };
        let now = now_ms();
        let qr_id = qr.id;
        let order_id = order.id;
        let version = qr.version;
        let next_poll = now + ms(cfg.poll_fast);
        match result {
            Ok(prepay) => {
                self.store()
                    .write(move |tx| {
                        if orders::set_qr_open(
                            tx,
                            qr_id,
                            &prepay.prepay_id,
                            &prepay.code_url,
                            next_poll,
                        )? {
                            orders::add_event(
                                tx,
                                order_id,
                                now,
                                "qr_ready",
                                &format!("QR {version} ready"),
                            )?;
                        }
                        Ok(())
                    })
                    .await?;
            }
            Err(e) => {
                tracing::warn!(error.message = %e, "unifiedorder failed");
                let reason = e.to_string();
                self.store()
                    .write(move |tx| {
                        if orders::set_qr_failed(tx, qr_id, &reason)? {
                            orders::add_event(tx, order_id, now, "qr_failed", &reason)?;
                        }
                        Ok(())
                    })
                    .await?;
            }
        }
        self.hub().publish(&order.token);
        Ok(())
    }

    /// The cashier's retry after a failed QR: a new QR (new out_trade_no).
    pub async fn retry(&self, token: &OrderToken) -> Result<(), CheckoutError> {
        let token = token.to_string();
        let qr_ttl = self.inner.cfg.qr_ttl;
        let now = now_ms();
        let planned = self
            .store()
            .write(move |tx| {
                let Some(order) = orders::order_by_token(tx, &token)? else {
                    return Ok(Err(CheckoutError::NotFound));
                };
                if order.state != OrderState::Open {
                    return Ok(Err(CheckoutError::Ended(order.state)));
                }
                let Some(current) = order
                    .current_qr_id
                    .map(|id| orders::qr_by_id(tx, id))
                    .transpose()?
                else {
                    return Ok(Err(CheckoutError::NothingToRetry));
                };
                if current.state != QrState::Failed {
                    return Ok(Err(CheckoutError::NothingToRetry));
                }
                match replace_current_qr(tx, qr_ttl, order.id, current.id, now, "retry")? {
                    Some(planned) => Ok(Ok(planned)),
                    None => Ok(Err(CheckoutError::NothingToRetry)),
                }
            })
            .await??;
        self.issue(&planned.0, &planned.1).await
    }

    /// Sends again a QR whose creation was interrupted (crash, lost answer).
    pub async fn resume_creation(&self, qr: &QrRow) -> Result<(), CheckoutError> {
        let order_id = qr.order_id;
        let order = self
            .store()
            .read(move |c| orders::order_by_id(c, order_id))
            .await?;
        self.issue(&order, qr).await
    }

    async fn query(&self, qr: &QrRow) -> Result<QueryResult, WxPayError> {
        let out_trade_no = OutTradeNo::new(qr.out_trade_no.clone())
            .map_err(|e| WxPayError::BadResponse(e.to_string()))?;
        self.wx().order_query(&OrderQuery { out_trade_no }).await
    }

    /// Applies a payment in one transaction and tells the open pages.
    pub async fn apply(&self, ev: Evidence) -> Result<ApplyOutcome, CheckoutError> {
        let now = now_ms();
        let outcome = self
            .store()
            .write(move |tx| apply_payment(tx, &ev, now))
            .await?;
        self.after_apply(&outcome);
        Ok(outcome)
    }

    fn after_apply(&self, outcome: &ApplyOutcome) {
        if let ApplyOutcome::Applied {
            token,
            order_no,
            late,
            double_paid,
        } = outcome
        {
            tracing::info!(order_no, late, double_paid, "payment applied");
            self.hub().publish(token);
        }
    }

    /// A query answer that says paid becomes a payment; `true` if it did.
    async fn apply_if_paid(
        &self,
        qr: &QrRow,
        r: &QueryResult,
        source: PaymentSource,
    ) -> Result<bool, CheckoutError> {
        if !r.trade_state.is_paid() {
            return Ok(false);
        }
        let (Some(transaction_id), Some(total_fee)) = (r.transaction_id.clone(), r.total_fee)
        else {
            return Ok(false);
        };
        let outcome = self
            .apply(Evidence {
                out_trade_no: qr.out_trade_no.clone(),
                transaction_id,
                total_fee,
                openid: r.openid.clone(),
                time_end: r.time_end.clone(),
                source,
            })
            .await?;
        if let ApplyOutcome::AmountMismatch { expected } = outcome {
            tracing::error!(out_trade_no = %qr.out_trade_no, %expected, got = %total_fee, "the gateway reports a different amount");
        }
        Ok(true)
    }

    /// When to ask the gateway about a QR next.
    fn next_poll(&self, qr: &QrRow, now: i64) -> i64 {
        let cfg = &self.inner.cfg;
        let young = now - qr.created_at < ms(cfg.poll_fast_period) && qr.state == QrState::Open;
        now + ms(if young { cfg.poll_fast } else { cfg.poll_slow })
    }

    fn backoff(&self, errors: i64) -> i64 {
        let exp = 1000i64.saturating_mul(1i64 << errors.clamp(0, 20));
        exp.min(ms(self.inner.cfg.max_backoff))
    }

    /// One scheduled `orderquery` of an open or closing QR. A payment or a close
    /// is recorded at once; when the answer only means "ask again later", that
    /// bookkeeping is returned for the caller to record (`record_polls`), so the
    /// poller can write many at a time instead of one transaction each.
    #[tracing::instrument(skip_all, fields(out_trade_no = %qr.out_trade_no))]
    pub async fn poll(&self, qr: &QrRow) -> Result<Option<PollSchedule>, CheckoutError> {
        let result = self.query(qr).await;
        let now = now_ms();
        let qr_id = qr.id;
        match result {
            Ok(r) if r.trade_state.is_paid() => {
                self.apply_if_paid(qr, &r, PaymentSource::Poll).await?;
            }
            Ok(r)
                if matches!(
                    r.trade_state,
                    TradeState::Closed | TradeState::Revoked | TradeState::PayError
                ) =>
            {
                self.mark_closed(qr).await?;
            }
            Ok(r) => {
                // Past time_expire an unpaid order can no longer be paid: done.
                let dead = r.trade_state == TradeState::NotPay
                    && now > qr.time_expire + ms(GATEWAY_MARGIN);
                if dead && qr.state == QrState::Closing {
                    self.mark_closed(qr).await?;
                } else {
                    return Ok(Some(PollSchedule {
                        qr_id,
                        next_poll_at: self.next_poll(qr, now),
                        errors: 0,
                        error: None,
                    }));
                }
            }
            Err(e) => {
                let errors = qr.errors + 1;
                let not_exist = e.err_code() == Some(&ErrCode::OrderNotExist);
                if not_exist && now > qr.time_expire {
                    self.mark_closed(qr).await?;
                    return Ok(None);
                }
                tracing::warn!(error.message = %e, errors, "orderquery failed");
                return Ok(Some(PollSchedule {
                    qr_id,
                    next_poll_at: now + self.backoff(errors),
                    errors,
                    error: Some(e.to_string()),
                }));
            }
        }
        Ok(None)
    }

    /// Records when to ask about each QR next, in one transaction. Losing these
    /// (a crash before they are written) only means asking again sooner.
    pub async fn record_polls(&self, polls: Vec<PollSchedule>) -> Result<(), CheckoutError> {
        if polls.is_empty() {
            return Ok(());
        }
        self.store()
            .write(move |tx| {
                for p in &polls {
                    orders::schedule_poll(
                        tx,
                        p.qr_id,
                        Some(p.next_poll_at),
                        p.errors,
                        p.error.as_deref(),
                    )?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn mark_closed(&self, qr: &QrRow) -> Result<(), CheckoutError> {
        let (qr_id, order_id, version) = (qr.id, qr.order_id, qr.version);
        let now = now_ms();
        let changed = self
            .store()
            .write(move |tx| {
                if !orders::set_qr_closed(tx, qr_id)? {
                    return Ok(None);
                }
                orders::add_event(
                    tx,
                    order_id,
                    now,
                    "qr_closed",
                    &format!("QR {version} closed"),
                )?;
                Ok(Some(orders::order_by_id(tx, order_id)?.token))
            })
            .await?;
        // The gateway may close the order's current QR (e.g. CLOSED on a poll): its
        // image and status change, so pages and caches must hear of it.
        if let Some(token) = changed {
            self.hub().publish(&token);
        }
        Ok(())
    }

    /// One `closeorder` of a superseded QR; refusals are tried again later.
    #[tracing::instrument(skip_all, fields(out_trade_no = %qr.out_trade_no))]
    pub async fn close(&self, qr: &QrRow) -> Result<(), CheckoutError> {
        let out_trade_no = match OutTradeNo::new(qr.out_trade_no.clone()) {
            Ok(o) => o,
            Err(_) => return self.mark_closed(qr).await,
        };
        let result = self.wx().close_order(&CloseOrder { out_trade_no }).await;
        let now = now_ms();
        match result {
            Ok(()) => self.mark_closed(qr).await,
            Err(e) => match e.err_code() {
                Some(ErrCode::OrderClosed) | Some(ErrCode::OrderNotExist) => {
                    self.mark_closed(qr).await
                }
                Some(ErrCode::OrderPaid) => {
                    // It was paid: that is a payment, never a failure.
                    match self.query(qr).await {
                        Ok(r) if self.apply_if_paid(qr, &r, PaymentSource::Close).await? => Ok(()),
                        _ => {
                            self.reschedule_close(
                                qr,
                                now,
                                "ORDERPAID; waiting for the payment's details",
                            )
                            .await
                        }
                    }
                }
                _ => {
                    if now > qr.time_expire + ms(GATEWAY_MARGIN) {
                        // The gateway can no longer take money for it; confirm and stop.
                        if let Ok(r) = self.query(qr).await {
                            if self.apply_if_paid(qr, &r, PaymentSource::Close).await? {
                                return Ok(());
                            }
                            if matches!(r.trade_state, TradeState::NotPay | TradeState::Closed) {
                                return self.mark_closed(qr).await;
                            }
                        }
                    }
                    tracing::info!(error.message = %e, "closeorder refused; will try again");
                    self.reschedule_close(qr, now, &e.to_string()).await
                }
            },
        }
    }

    async fn reschedule_close(&self, qr: &QrRow, now: i64, why: &str) -> Result<(), CheckoutError> {
        let qr_id = qr.id;
        let next = now + self.backoff(qr.errors + 1).max(5_000);
        let why = why.to_string();
        self.store()
            .write(move |tx| orders::schedule_close(tx, qr_id, next, &why))
            .await?;
        Ok(())
    }

    /// A QR's screen life is over: query it once more, then supersede it with a
    /// new QR (new out_trade_no); the old one is closed by the close queue.
    /// A failed QR is simply replaced (the gateway may be back).
    #[tracing::instrument(skip_all, fields(out_trade_no = %qr.out_trade_no))]
    pub async fn refresh(&self, order: &OrderRow, qr: &QrRow) -> Result<(), CheckoutError> {
        let failed = qr.state == QrState::Failed;
        match if failed {
            None
        } else {
            Some(self.query(qr).await)
        } {
            Some(Ok(r)) if self.apply_if_paid(qr, &r, PaymentSource::Poll).await? => return Ok(()),
            Some(Ok(r)) if r.trade_state == TradeState::UserPaying => {
                // The customer is entering the password: never pull the QR now.
                let (qr_id, until) = (qr.id, now_ms() + 3_000);
                self.store()
                    .write(move |tx| orders::postpone_display(tx, qr_id, until))
                    .await?;
                return Ok(());
            }
            _ => {}
        }
        let now = now_ms();
        let qr_ttl = self.inner.cfg.qr_ttl;
        let (order_id, old_id) = (order.id, qr.id);
        let planned = self
            .store()
            .write(move |tx| replace_current_qr(tx, qr_ttl, order_id, old_id, now, "refresh"))
            .await?;
        if let Some((order, new_qr)) = planned {
            self.hub().publish(&order.token);
            self.issue(&order, &new_qr).await?;
        }
        Ok(())
    }

    /// Ends an open order (`expired` or `cancelled`) after one last look at its QR.
    async fn end(
        &self,
        order: &OrderRow,
        to: OrderState,
        why: &str,
    ) -> Result<OrderState, CheckoutError> {
        if let Some(qr_id) = order.current_qr_id {
            let qr = self
                .store()
                .read(move |c| orders::qr_by_id(c, qr_id))
                .await?;
            if matches!(qr.state, QrState::Open | QrState::Closing)
                && let Ok(r) = self.query(&qr).await
                && self.apply_if_paid(&qr, &r, PaymentSource::Poll).await?
            {
                return Ok(OrderState::Paid);
            }
        }
        let now = now_ms();
        let order_id = order.id;
        let why = why.to_string();
        let state = self
            .store()
            .write(move |tx| end_order(tx, order_id, to, now, &why))
            .await?;
        self.hub().publish(&order.token);
        Ok(state)
    }

    /// An unpaid order's life is over.
    pub async fn expire(&self, order: &OrderRow) -> Result<(), CheckoutError> {
        self.end(order, OrderState::Expired, "unpaid at the end of its life")
            .await?;
        Ok(())
    }

    /// The cashier cancels an open order.
    pub async fn cancel(&self, token: &OrderToken, by: &str) -> Result<(), CheckoutError> {
        let t = token.to_string();
        let order = self
            .store()
            .read(move |c| orders::order_by_token(c, &t))
            .await?
            .ok_or(CheckoutError::NotFound)?;
        if order.state != OrderState::Open {
            return Err(CheckoutError::Ended(order.state));
        }
        match self
            .end(&order, OrderState::Cancelled, &format!("cancelled by {by}"))
            .await?
        {
            OrderState::Cancelled => Ok(()),
            other => Err(CheckoutError::Ended(other)),
        }
    }

    /// `POST /wxpay/notify`: verify, apply, log; SUCCESS only after the commit.
    #[tracing::instrument(skip_all)]
    pub async fn handle_notification(
        &self,
        body: &[u8],
        remote_addr: Option<String>,
    ) -> NotifyReply {
        let received_at = now_ms();
        let merchant = self.wx().merchant();
        let fail = |msg: &str| NotifyReply {
            success: false,
            body: notify::ack_fail(msg),
        };
        let mut log = NotificationRow {
            received_at,
            remote_addr,
            out_trade_no: None,
            transaction_id: None,
            verified: false,
            outcome: String::new(),
            body: loggable_body(body),
        };
        match notify::verify(body, merchant) {
            Err(e) => {
                tracing::warn!(error.message = %e, "notification refused");
                log.outcome = format!("refused: {e}");
                self.log_notification(log).await;
                fail("invalid notification")
            }
            Ok((
                _,
                Notice::Failed {
                    out_trade_no,
                    err_code,
                },
            )) => {
                log.verified = true;
                log.out_trade_no = out_trade_no;
                log.outcome = format!("payment failed at the gateway: {err_code}");
                if self.log_notification(log).await {
                    NotifyReply {
                        success: true,
                        body: notify::ack_success(),
                    }
                } else {
                    fail("try again")
                }
            }
            Ok((_, Notice::Paid(p))) => {
                log.verified = true;
                log.out_trade_no = Some(p.out_trade_no.to_string());
                log.transaction_id = Some(p.transaction_id.clone());
                let ev = Evidence {
                    out_trade_no: p.out_trade_no.to_string(),
                    transaction_id: p.transaction_id,
                    total_fee: p.total_fee,
                    openid: p.openid,
                    time_end: p.time_end,
                    source: PaymentSource::Notify,
                };
                let now = now_ms();
                let result = self
                    .store()
                    .write(move |tx| {
                        let outcome = apply_payment(tx, &ev, now)?;
                        log.outcome = match &outcome {
                            ApplyOutcome::Applied { late: true, .. } => "applied (late)".into(),
                            ApplyOutcome::Applied {
                                double_paid: true, ..
                            } => "applied (double payment)".into(),
                            ApplyOutcome::Applied { .. } => "applied".into(),
                            ApplyOutcome::AlreadyApplied { .. } => {
                                "duplicate: already applied".into()
                            }
                            ApplyOutcome::UnknownOrder => "refused: unknown out_trade_no".into(),
                            ApplyOutcome::AmountMismatch { expected } => {
                                format!(
                                    "refused: total_fee {} but the order is {expected}",
                                    ev.total_fee
                                )
                            }
                        };
                        payments::log_notification(tx, &log)?;
                        Ok(outcome)
                    })
                    .await;
                match result {
                    Ok(outcome) => {
                        self.after_apply(&outcome);
                        match outcome {
                            ApplyOutcome::Applied { .. } | ApplyOutcome::AlreadyApplied { .. } => {
                                NotifyReply {
                                    success: true,
                                    body: notify::ack_success(),
                                }
                            }
                            ApplyOutcome::UnknownOrder => fail("unknown out_trade_no"),
                            ApplyOutcome::AmountMismatch { .. } => fail("total_fee does not match"),
                        }
                    }
                    Err(e) => {
                        tracing::error!(error.message = %e, "notification could not be recorded");
                        fail("try again")
                    }
                }
            }
        }
    }

    async fn log_notification(&self, log: NotificationRow) -> bool {
        match self
            .store()
            .write(move |tx| payments::log_notification(tx, &log))
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error.message = %e, "notification log failed");
                false
            }
        }
    }
}

/// A notification body fit for the log: capped, signature removed.
fn loggable_body(body: &[u8]) -> String {
    if let Ok(mut fields) = xml::from_xml(body) {
        if fields.get("sign").is_some() {
            fields.set("sign", "[REDACTED]");
        }
        let mut s = xml::to_xml(&fields);
        truncate(&mut s, MAX_LOGGED_BODY);
        return s;
    }
    let mut s = String::from_utf8_lossy(&body[..body.len().min(MAX_LOGGED_BODY)]).into_owned();
    if let Some(start) = s.find("<sign>") {
        let end = s[start..]
            .find("</sign>")
            .map(|e| start + e + 7)
            .unwrap_or(s.len());
        s.replace_range(start..end, "<sign>[REDACTED]</sign>");
    }
    s
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// Seconds from now until `ms` (never negative).
pub fn seconds_until(ms_at: i64) -> i64 {
    ((ms_at - now_ms()) as f64 / 1000.0).ceil().max(0.0) as i64
}
