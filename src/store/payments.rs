//! Payments (one row per gateway transaction) and the notification log.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::StoreError;
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::order::{OrderId, OrderState, PaymentId, PaymentSource, QrId};
use crate::values::trade::{OutTradeNo, TransactionId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRow {
    pub id: PaymentId,
    pub transaction_id: TransactionId,
    pub qr_id: QrId,
    pub order_id: OrderId,
    pub amount: Fen,
    pub source: PaymentSource,
    pub openid: Option<String>,
    /// The gateway's own text of when it was paid, on rows recorded before
    /// migration 0011 (new rows have `gateway_paid_at` only).
    pub time_end: Option<String>,
    /// When the gateway says it was paid.
    pub gateway_paid_at: Option<Millis>,
    pub late: bool,
    pub double_paid: bool,
    pub created_at: Millis,
}

fn payment_row(r: &Row<'_>) -> rusqlite::Result<PaymentRow> {
    Ok(PaymentRow {
        id: r.get(0)?,
        transaction_id: r.get(1)?,
        qr_id: r.get(2)?,
        order_id: r.get(3)?,
        amount: Fen::new(r.get(4)?),
        source: r.get(5)?,
        openid: r.get(6)?,
        time_end: r.get(7)?,
        late: r.get(8)?,
        double_paid: r.get(9)?,
        created_at: r.get(10)?,
        gateway_paid_at: r.get(11)?,
    })
}

const PAYMENT_COLS: &str = "id, transaction_id, qr_id, order_id, amount_fen, source, openid, time_end, late, double_paid, created_at, gateway_paid_at";

pub struct NewPayment<'a> {
    pub transaction_id: &'a TransactionId,
    pub qr_id: QrId,
    pub order_id: OrderId,
    pub amount: Fen,
    pub source: PaymentSource,
    pub openid: Option<&'a str>,
    /// When the gateway says it was paid.
    pub gateway_paid_at: Option<Millis>,
    pub late: bool,
    pub double_paid: bool,
    pub now: Millis,
}

/// Records a payment unless this transaction is already recorded: the UNIQUE
/// key decides, so it happens at most once.
pub fn insert_payment(tx: &Transaction<'_>, p: &NewPayment<'_>) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "INSERT INTO payments (transaction_id, qr_id, order_id, amount_fen, source, openid, gateway_paid_at,
                                   late, double_paid, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            p.transaction_id,
            p.qr_id,
            p.order_id,
            p.amount.get(),
            p.source,
            p.openid,
            p.gateway_paid_at,
            p.late,
            p.double_paid,
            p.now
        ])?;
    Ok(n == 1)
}

/// The order's first payment: it becomes paid.
pub fn mark_order_paid(
    tx: &Transaction<'_>,
    order_id: OrderId,
    qr_id: QrId,
    transaction_id: &TransactionId,
    now: Millis,
    late: bool,
) -> Result<bool, StoreError> {
    Ok(tx.prepare_cached("UPDATE orders SET state = ?6, paid_at = ?2, paid_qr_id = ?3, transaction_id = ?4, late = ?5
         WHERE id = ?1 AND state != ?6")?
        .execute(params![order_id, now, qr_id, transaction_id, late, OrderState::Paid])? == 1)
}

/// A further payment of a paid order: it needs a refund.
pub fn flag_double_paid(tx: &Transaction<'_>, order_id: OrderId) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE orders SET double_paid = 1 WHERE id = ?1")?
        .execute(params![order_id])?;
    Ok(())
}

/// The payment recorded for a gateway transaction, if any.
pub fn payment_by_transaction(
    conn: &Connection,
    transaction_id: &TransactionId,
) -> Result<Option<PaymentRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {PAYMENT_COLS} FROM payments WHERE transaction_id = ?1"
        ))?
        .query_row([transaction_id], payment_row)
        .optional()?)
}

/// Payment facts that contradict our records: the order is flagged for the admin.
pub fn flag_anomaly(tx: &Transaction<'_>, order_id: OrderId) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE orders SET anomaly = 1 WHERE id = ?1")?
        .execute(params![order_id])?;
    Ok(())
}

/// What an order's payments add up to (a double payment counts twice: the
/// money was taken twice).
pub fn paid_of_order(conn: &Connection, order_id: OrderId) -> Result<Fen, StoreError> {
    let fen: i64 = conn
        .prepare_cached("SELECT COALESCE(SUM(amount_fen), 0) FROM payments WHERE order_id = ?1")?
        .query_row([order_id], |r| r.get(0))?;
    Ok(Fen::new(fen))
}

/// What one payment was.
pub fn payment_amount(conn: &Connection, id: PaymentId) -> Result<Fen, StoreError> {
    let fen: i64 = conn
        .prepare_cached("SELECT amount_fen FROM payments WHERE id = ?1")?
        .query_row([id], |r| r.get(0))?;
    Ok(Fen::new(fen))
}

pub fn payments_of(conn: &Connection, order_id: OrderId) -> Result<Vec<PaymentRow>, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {PAYMENT_COLS} FROM payments WHERE order_id = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([order_id], payment_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRow {
    pub received_at: Millis,
    pub remote_addr: Option<String>,
    pub out_trade_no: Option<OutTradeNo>,
    pub transaction_id: Option<TransactionId>,
    pub verified: bool,
    pub outcome: String,
    pub body: String,
}

pub fn log_notification(conn: &Connection, n: &NotificationRow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO notifications (received_at, remote_addr, out_trade_no, transaction_id, verified, outcome, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        n.received_at,
        n.remote_addr,
        n.out_trade_no,
        n.transaction_id,
        n.verified,
        n.outcome,
        n.body
    ])?;
    Ok(())
}

/// Records the id of a verified notification with its body's digest, unless
/// known: whether the id's first body is this one (a retry), or not (a replay).
pub fn claim_notification_id(
    tx: &Transaction<'_>,
    id: &str,
    body_sha256: &[u8; 32],
    at: Millis,
) -> Result<bool, StoreError> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO notification_ids (id, body_sha256, received_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![id, &body_sha256[..], at])?;
    let first: Vec<u8> = tx
        .prepare_cached("SELECT body_sha256 FROM notification_ids WHERE id = ?1")?
        .query_row([id], |r| r.get(0))?;
    Ok(first == body_sha256[..])
}

/// Deletes verified notifications received before `verified_before`, and the
/// refused ones beyond the newest `refused_kept`; returns how many went.
pub fn prune_notifications(
    tx: &Transaction<'_>,
    verified_before: Millis,
    refused_kept: u64,
) -> Result<usize, StoreError> {
    let old = tx
        .prepare_cached("DELETE FROM notifications WHERE verified = 1 AND received_at < ?1")?
        .execute(params![verified_before])?;
    let kept = i64::try_from(refused_kept).unwrap_or(i64::MAX);
    let junk = tx
        .prepare_cached(
            "DELETE FROM notifications WHERE verified = 0 AND id NOT IN
               (SELECT id FROM notifications WHERE verified = 0 ORDER BY id DESC LIMIT ?1)",
        )?
        .execute(params![kept])?;
    // Ids are kept as long as verified notifications (a replay is refused as
    // stale by its timestamp long before).
    tx.prepare_cached("DELETE FROM notification_ids WHERE received_at < ?1")?
        .execute(params![verified_before])?;
    Ok(old + junk)
}

/// Notifications that named one of an order's QRs, oldest first.
pub fn notifications_of_order(
    conn: &Connection,
    order_id: OrderId,
) -> Result<Vec<NotificationRow>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT received_at, remote_addr, out_trade_no, transaction_id, verified, outcome, body
         FROM notifications WHERE out_trade_no IN (SELECT out_trade_no FROM qrs WHERE order_id = ?1)
         ORDER BY id",
    )?;
    let rows = st.query_map([order_id], |r| {
        Ok(NotificationRow {
            received_at: r.get(0)?,
            remote_addr: r.get(1)?,
            out_trade_no: r.get(2)?,
            transaction_id: r.get(3)?,
            verified: r.get(4)?,
            outcome: r.get(5)?,
            body: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_notification_id_keeps_its_first_body_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let claim = |store: &crate::store::Store, id: &'static str, digest: [u8; 32]| {
            let store = store.clone();
            async move {
                store
                    .write(move |tx| claim_notification_id(tx, id, &digest, Millis(1)))
                    .await
                    .unwrap()
            }
        };
        let store = crate::store::Store::open(dir.path()).unwrap();
        assert!(claim(&store, "EV-1", [1; 32]).await, "first seen");
        assert!(
            claim(&store, "EV-1", [1; 32]).await,
            "the same body: a retry"
        );
        assert!(
            !claim(&store, "EV-1", [2; 32]).await,
            "another body: a replay"
        );
        drop(store);
        let store = crate::store::Store::open(dir.path()).unwrap();
        assert!(
            !claim(&store, "EV-1", [2; 32]).await,
            "still after a restart"
        );
        assert!(claim(&store, "EV-2", [2; 32]).await);
    }
}
