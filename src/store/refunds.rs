//! Refunds: one row per out_refund_no, written before the gateway is asked.
//! What is still refundable is read and reserved in the transaction that
//! writes the row (the caller's), so two admins at once cannot refund twice.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::StoreError;
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::order::{OrderId, OrderNo, PaymentId, RefundId, RefundState, UserId};
use crate::values::trade::{OutRefundNo, OutTradeNo, TransactionId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRow {
    pub id: RefundId,
    pub out_refund_no: OutRefundNo,
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub amount: Fen,
    pub state: RefundState,
    pub user_id: Option<UserId>,
    pub username: String,
    pub reason: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub finished_at: Option<Millis>,
    pub refund_id: Option<String>,
    pub account: Option<String>,
    pub next_query_at: Option<Millis>,
    pub attempts: i64,
    pub errors: i64,
    pub last_error: Option<String>,
}

pub(super) const REFUND_COLS: &str = "r.id, r.out_refund_no, r.payment_id, r.order_id, r.amount_fen, r.state, \
     r.user_id, r.username, r.reason, r.created_at, r.updated_at, r.finished_at, r.refund_id, \
     r.account, r.next_query_at, r.attempts, r.errors, r.last_error";

pub(super) fn refund_row(r: &Row<'_>) -> rusqlite::Result<RefundRow> {
    Ok(RefundRow {
        id: r.get(0)?,
        out_refund_no: r.get(1)?,
        payment_id: r.get(2)?,
        order_id: r.get(3)?,
        amount: Fen::new(r.get(4)?),
        state: r.get(5)?,
        user_id: r.get(6)?,
        username: r.get(7)?,
        reason: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
        finished_at: r.get(11)?,
        refund_id: r.get(12)?,
        account: r.get(13)?,
        next_query_at: r.get(14)?,
        attempts: r.get(15)?,
        errors: r.get(16)?,
        last_error: r.get(17)?,
    })
}

/// A refund and what the gateway needs to hear about its payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundJob {
    pub refund: RefundRow,
    pub out_trade_no: OutTradeNo,
    pub transaction_id: TransactionId,
    pub payment_amount: Fen,
    pub order_no: OrderNo,
}

const JOB_COLS: &str = "q.out_trade_no, p.transaction_id, p.amount_fen, o.order_no";
const JOB_FROM: &str = "FROM refunds r JOIN payments p ON p.id = r.payment_id \
     JOIN qrs q ON q.id = p.qr_id JOIN orders o ON o.id = r.order_id";

fn refund_job(r: &Row<'_>) -> rusqlite::Result<RefundJob> {
    Ok(RefundJob {
        refund: refund_row(r)?,
        out_trade_no: r.get(18)?,
        transaction_id: r.get(19)?,
        payment_amount: Fen::new(r.get(20)?),
        order_no: r.get(21)?,
    })
}

/// How much of a payment is taken by its refunds so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reserved {
    /// Refunds that count against the gateway's 50 (all but the refused ones).
    pub count: i64,
    /// Money gone back or on its way: the states that `RefundState::reserves`
    /// (the test below holds this SQL to it).
    pub sum: Fen,
}

/// What a payment's refunds hold, `except` one of them (a retry re-checks itself).
pub fn reserved(
    conn: &Connection,
    payment_id: PaymentId,
    except: Option<RefundId>,
) -> Result<Reserved, StoreError> {
    let (count, sum) = conn
        .prepare_cached(
            "SELECT COUNT(*) FILTER (WHERE state != 'failed'),
                    COALESCE(SUM(amount_fen) FILTER (WHERE state NOT IN ('closed', 'failed')), 0)
             FROM refunds WHERE payment_id = ?1 AND id IS NOT ?2",
        )?
        .query_row(params![payment_id, except], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })?;
    Ok(Reserved {
        count,
        sum: Fen::new(sum),
    })
}

pub struct NewRefund<'a> {
    pub out_refund_no: &'a OutRefundNo,
    pub payment_id: PaymentId,
    pub order_id: OrderId,
    pub amount: Fen,
    pub user_id: Option<UserId>,
    pub username: &'a str,
    pub reason: &'a str,
    pub now: Millis,
    /// When the poller sends it again should this process not hear back.
    pub resend_at: Millis,
}

/// Records a refund (`pending`) unless its number is taken: `None` then.
pub fn insert_refund(
    tx: &Transaction<'_>,
    n: &NewRefund<'_>,
) -> Result<Option<RefundRow>, StoreError> {
    let changed = tx
        .prepare_cached(
            "INSERT INTO refunds (out_refund_no, payment_id, order_id, amount_fen, state, user_id,
                                  username, reason, created_at, updated_at, next_query_at)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?8, ?9)
             ON CONFLICT (out_refund_no) DO NOTHING",
        )?
        .execute(params![
            n.out_refund_no,
            n.payment_id,
            n.order_id,
            n.amount.get(),
            n.user_id,
            n.username,
            n.reason,
            n.now,
            n.resend_at
        ])?;
    if changed == 0 {
        return Ok(None);
    }
    refund_by_no(tx, n.out_refund_no)
}

pub fn refund_by_no(conn: &Connection, no: &OutRefundNo) -> Result<Option<RefundRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {REFUND_COLS} FROM refunds r WHERE r.out_refund_no = ?1"
        ))?
        .query_row([no], refund_row)
        .optional()?)
}

pub fn job_by_id(conn: &Connection, id: RefundId) -> Result<Option<RefundJob>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {REFUND_COLS}, {JOB_COLS} {JOB_FROM} WHERE r.id = ?1"
        ))?
        .query_row([id], refund_job)
        .optional()?)
}

/// Every refund of an order, oldest first.
pub fn refunds_of_order(
    conn: &Connection,
    order_id: OrderId,
) -> Result<Vec<RefundRow>, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {REFUND_COLS} FROM refunds r WHERE r.order_id = ?1 ORDER BY r.id"
    ))?;
    let rows = st.query_map([order_id], refund_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What went back of an order (succeeded refunds).
pub fn refunded_of_order(conn: &Connection, order_id: OrderId) -> Result<Fen, StoreError> {
    let sum: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(amount_fen), 0) FROM refunds WHERE order_id = ?1 AND state = 'succeeded'",
        )?
        .query_row([order_id], |r| r.get(0))?;
    Ok(Fen::new(sum))
}

/// Refunds the gateway should be asked about now: those due, and those left
/// `pending` by an earlier process (`stale_before`: nobody is sending them).
pub fn due_refunds(
    conn: &Connection,
    now: Millis,
    stale_before: Millis,
    limit: usize,
) -> Result<Vec<RefundJob>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut st = conn.prepare_cached(&format!(
        "SELECT {REFUND_COLS}, {JOB_COLS} {JOB_FROM}
         WHERE r.id IN (SELECT id FROM refunds WHERE next_query_at <= ?1
                          AND state IN ('pending', 'processing', 'abnormal')
                        UNION
                        SELECT id FROM refunds WHERE state = 'pending' AND updated_at < ?2)
         ORDER BY r.next_query_at LIMIT ?3"
    ))?;
    let rows = st.query_map(params![now, stale_before, limit], refund_job)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What the gateway says of a refund, as one row update writes it.
#[derive(Debug, Clone, Copy)]
pub struct GatewayWord<'a> {
    pub state: RefundState,
    pub refund_id: Option<&'a str>,
    pub account: Option<&'a str>,
    pub gateway_succeeded_at: Option<Millis>,
    /// When to ask again (`None`: never).
    pub next_query_at: Option<Millis>,
}

/// The gateway's word on a refund, applied at most once: the state moves only
/// from a state the gateway may still change, and only when it is news.
/// Returns whether it changed.
pub fn apply_outcome(
    tx: &Transaction<'_>,
    id: RefundId,
    word: &GatewayWord<'_>,
    now: Millis,
) -> Result<bool, StoreError> {
    let GatewayWord {
        state,
        refund_id,
        account,
        gateway_succeeded_at,
        next_query_at,
    } = *word;
    let finished = matches!(state, RefundState::Succeeded | RefundState::Closed).then_some(now);
    let changed = tx
        .prepare_cached(
            "UPDATE refunds SET state = ?2, refund_id = COALESCE(?3, refund_id),
                    account = COALESCE(?4, account), next_query_at = ?5, finished_at = ?6,
                    updated_at = ?7, errors = 0, last_error = NULL,
                    gateway_succeeded_at = COALESCE(?8, gateway_succeeded_at)
             WHERE id = ?1 AND state IN ('pending', 'processing', 'abnormal') AND state != ?2",
        )?
        .execute(params![
            id,
            state,
            refund_id,
            account,
            next_query_at,
            finished,
            now,
            gateway_succeeded_at
        ])?;
    if changed == 0 {
        // Same state again: keep what it adds (an id, an account) and its next question.
        tx.prepare_cached(
            "UPDATE refunds SET refund_id = COALESCE(?2, refund_id), account = COALESCE(?3, account),
                    next_query_at = CASE WHEN state IN ('pending', 'processing', 'abnormal') THEN ?4 ELSE next_query_at END,
                    errors = 0, last_error = NULL
             WHERE id = ?1 AND state = ?5",
        )?
        .execute(params![id, refund_id, account, next_query_at, state])?;
    }
    Ok(changed == 1)
}

/// The gateway says money moved (or is moving) for a refund we had closed
/// for good, `from` (`failed`: a refused resend; `closed`, by the bill): its
/// state is the gateway's, and by that state it reserves its amount again.
/// Only from `from`, so it is applied at most once. Returns whether it changed.
pub fn correct_outcome(
    tx: &Transaction<'_>,
    id: RefundId,
    from: RefundState,
    word: &GatewayWord<'_>,
    now: Millis,
) -> Result<bool, StoreError> {
    let GatewayWord {
        state,
        refund_id,
        account,
        gateway_succeeded_at,
        next_query_at,
    } = *word;
    if from.is_open() || !state.reserves() {
        // Open rows move by `apply_outcome`; a word that nothing moved corrects nothing.
        return Ok(false);
    }
    let finished = (state == RefundState::Succeeded).then_some(now);
    let changed = tx
        .prepare_cached(
            "UPDATE refunds SET state = ?3, refund_id = COALESCE(?4, refund_id),
                    account = COALESCE(?5, account), next_query_at = ?6, finished_at = ?7,
                    updated_at = ?8, errors = 0, last_error = NULL,
                    gateway_succeeded_at = COALESCE(?9, gateway_succeeded_at)
             WHERE id = ?1 AND state = ?2",
        )?
        .execute(params![
            id,
            from,
            state,
            refund_id,
            account,
            next_query_at,
            finished,
            now,
            gateway_succeeded_at
        ])?;
    Ok(changed == 1)
}

/// A request or query that gave no answer: try again at `next`.
pub fn schedule(
    tx: &Transaction<'_>,
    id: RefundId,
    next: Millis,
    errors: i64,
    error: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE refunds SET next_query_at = ?2, errors = ?3, last_error = ?4
         WHERE id = ?1 AND state IN ('pending', 'processing', 'abnormal')",
    )?
    .execute(params![id, next, errors, error])?;
    Ok(())
}

/// One more request sent for it (counted before it goes, so a crash still counts it).
pub fn count_attempt(tx: &Transaction<'_>, id: RefundId, now: Millis) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE refunds SET attempts = attempts + 1, updated_at = ?2 WHERE id = ?1")?
        .execute(params![id, now])?;
    Ok(())
}

/// The gateway refused a pending refund: nothing moved, its reservation is freed.
pub fn set_failed(
    tx: &Transaction<'_>,
    id: RefundId,
    error: &str,
    now: Millis,
) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached(
            "UPDATE refunds SET state = 'failed', last_error = ?2, next_query_at = NULL, updated_at = ?3
             WHERE id = ?1 AND state = 'pending'",
        )?
        .execute(params![id, error, now])?
        == 1)
}

/// An admin retries a refused refund, same number: pending again.
pub fn set_retrying(
    tx: &Transaction<'_>,
    id: RefundId,
    now: Millis,
    resend_at: Millis,
) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached(
            "UPDATE refunds SET state = 'pending', next_query_at = ?3, updated_at = ?2, errors = 0
             WHERE id = ?1 AND state = 'failed'",
        )?
        .execute(params![id, now, resend_at])?
        == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::{self, Sale};
    use crate::store::payments;

    /// The state lists written out in SQL are `RefundState`'s rules: a refund
    /// of each state, of amounts 1, 2, 4, … fen, so a sum names the states.
    #[test]
    fn the_sql_state_lists_are_the_rules_of_refund_state() {
        let (_dir, store) = fixtures::store();
        let (reserved_sum, counted, due) = store
            .write_blocking(|tx| {
                let (order, _) = fixtures::sale(
                    tx,
                    Sale {
                        amount: 10_000,
                        ..Sale::default()
                    },
                );
                let order = OrderId(order);
                let payment = payments::payments_of(tx, order)?[0].id;
                let mut due_ids = Vec::new();
                for (i, state) in RefundState::ALL.iter().enumerate() {
                    let no = OutRefundNo::new(format!("R{i}")).unwrap();
                    let row = insert_refund(
                        tx,
                        &NewRefund {
                            out_refund_no: &no,
                            payment_id: payment,
                            order_id: order,
                            amount: Fen::new(1 << i),
                            user_id: None,
                            username: "admin",
                            reason: "",
                            now: Millis(10),
                            resend_at: Millis(10),
                        },
                    )?
                    .unwrap();
                    tx.execute(
                        "UPDATE refunds SET state = ?2 WHERE id = ?1",
                        params![row.id, state],
                    )?;
                    due_ids.push((row.id, *state));
                }
                let held = reserved(tx, payment, None)?;
                // Not stale (updated after `stale_before`): only the due rule picks.
                let due: Vec<RefundId> = due_refunds(tx, Millis(20), Millis(0), 100)?
                    .into_iter()
                    .map(|j| j.refund.id)
                    .collect();
                let due_states: Vec<RefundState> = due_ids
                    .iter()
                    .filter(|(id, _)| due.contains(id))
                    .map(|(_, s)| *s)
                    .collect();
                Ok((held.sum.get(), held.count, due_states))
            })
            .unwrap();
        let sum_of = |keep: fn(RefundState) -> bool| -> i64 {
            RefundState::ALL
                .iter()
                .enumerate()
                .filter(|(_, s)| keep(**s))
                .map(|(i, _)| 1 << i)
                .sum()
        };
        assert_eq!(reserved_sum, sum_of(RefundState::reserves));
        let not_failed = RefundState::ALL
            .iter()
            .filter(|s| **s != RefundState::Failed)
            .count();
        assert_eq!(counted, i64::try_from(not_failed).unwrap());
        let open: Vec<RefundState> = RefundState::ALL
            .iter()
            .copied()
            .filter(|s| s.is_open())
            .collect();
        assert_eq!(due, open);
    }
}
