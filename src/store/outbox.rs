//! The owner's webhooks outbox (SPEC §10): an event is written in the same
//! transaction as what it reports, so it exists exactly when that did; the
//! delivery task (`webhooks.rs`) fans it out to one delivery per webhook URL
//! and records each attempt here.

use rusqlite::{Connection, Row, Transaction, params};

use super::StoreError;
use crate::values::clock::Millis;
use crate::values::money::Fen;
use crate::values::order::OrderNo;
use crate::values::trade::TransactionId;
use crate::values::words::text_enum;

/// What an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Payment,
    Refund,
    ReconciliationDifference,
}

text_enum!(EventKind { Payment => "payment", Refund => "refund", ReconciliationDifference => "reconciliation_difference" });

/// One event for the owner. `event_id` is the receiver's dedupe key: the same
/// fact always gets the same id (a payment's is its transaction's), and the
/// outbox keeps one row per id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub event_id: String,
    pub order_no: Option<OrderNo>,
    pub amount: Fen,
    pub at: Millis,
}

impl Event {
    /// Money received for an order (one per gateway transaction).
    pub fn payment(
        transaction_id: &TransactionId,
        order_no: &OrderNo,
        amount: Fen,
        at: Millis,
    ) -> Self {
        Event {
            kind: EventKind::Payment,
            event_id: format!("payment-{transaction_id}"),
            order_no: Some(order_no.clone()),
            amount,
            at,
        }
    }
}

impl Event {
    /// Money sent back to a customer (one per refund request number).
    pub fn refund(out_refund_no: &str, order_no: &OrderNo, amount: Fen, at: Millis) -> Self {
        Event {
            kind: EventKind::Refund,
            event_id: format!("refund-{out_refund_no}"),
            order_no: Some(order_no.clone()),
            amount,
            at,
        }
    }

    /// A difference between the gateway's daily bill and our records, named
    /// by the bill's day and the difference's own key (e.g. its transaction).
    pub fn reconciliation_difference(
        bill_day: &str,
        key: &str,
        order_no: Option<&OrderNo>,
        amount: Fen,
        at: Millis,
    ) -> Self {
        Event {
            kind: EventKind::ReconciliationDifference,
            event_id: format!("reconciliation-{bill_day}-{key}"),
            order_no: order_no.cloned(),
            amount,
            at,
        }
    }
}

/// Records `event` inside `tx` (the transaction of what it reports); `false`
/// when an event with this id was already recorded.
pub fn enqueue(tx: &Transaction<'_>, event: &Event) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "INSERT INTO outbox (event_id, event, order_no, amount_fen, at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (event_id) DO NOTHING",
        )?
        .execute(params![
            event.event_id,
            event.kind,
            event.order_no,
            event.amount.get(),
            event.at
        ])?;
    Ok(n > 0)
}

/// Gives up to `limit` new events one delivery per URL, due `now`; how many events.
pub fn fan_out(
    tx: &Transaction<'_>,
    urls: &[String],
    now: Millis,
    limit: usize,
) -> Result<usize, StoreError> {
    let ids: Vec<i64> = tx
        .prepare_cached("SELECT id FROM outbox WHERE fanned_out = 0 ORDER BY id LIMIT ?1")?
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &ids {
        for url in urls {
            tx.prepare_cached(
                "INSERT INTO outbox_deliveries (outbox_id, url, state, next_attempt_at)
                 VALUES (?1, ?2, 'pending', ?3) ON CONFLICT (outbox_id, url) DO NOTHING",
            )?
            .execute(params![id, url, now])?;
        }
        tx.prepare_cached("UPDATE outbox SET fanned_out = 1 WHERE id = ?1")?
            .execute([id])?;
    }
    Ok(ids.len())
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    GivenUp,
}

text_enum!(DeliveryState { Pending => "pending", Delivered => "delivered", GivenUp => "given_up" });

/// One event to one URL, with what became of it so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub url: String,
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_attempt_at: Option<Millis>,
    pub last_error: Option<String>,
    pub last_status: Option<i64>,
    pub delivered_at: Option<Millis>,
    pub event: Event,
}

const DELIVERY_COLS: &str = "d.id, d.url, d.state, d.attempts, d.next_attempt_at, d.last_error, \
     d.last_status, d.delivered_at, o.event, o.event_id, o.order_no, o.amount_fen, o.at";

fn delivery_row(r: &Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        id: r.get(0)?,
        url: r.get(1)?,
        state: r.get(2)?,
        attempts: r.get(3)?,
        next_attempt_at: r.get(4)?,
        last_error: r.get(5)?,
        last_status: r.get(6)?,
        delivered_at: r.get(7)?,
        event: Event {
            kind: r.get(8)?,
            event_id: r.get(9)?,
            order_no: r.get(10)?,
            amount: Fen::new(r.get(11)?),
            at: r.get(12)?,
        },
    })
}

/// Deliveries due at `now`, oldest first, at most `limit`.
pub fn due(conn: &Connection, now: Millis, limit: usize) -> Result<Vec<Delivery>, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLS} FROM outbox_deliveries d JOIN outbox o ON o.id = d.outbox_id
         WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?1
         ORDER BY d.next_attempt_at, d.id LIMIT ?2"
    ))?;
    let rows = st.query_map(
        params![now, i64::try_from(limit).unwrap_or(i64::MAX)],
        delivery_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered {
        status: u16,
    },
    /// Failed; try again at `retry_at`, or give up when `None`.
    Failed {
        status: Option<u16>,
        error: String,
        retry_at: Option<Millis>,
    },
}

/// Records one attempt of delivery `id`.
pub fn record(
    tx: &Transaction<'_>,
    id: i64,
    attempt: &Attempt,
    now: Millis,
) -> Result<(), StoreError> {
    match attempt {
        Attempt::Delivered { status } => tx
            .prepare_cached(
                "UPDATE outbox_deliveries SET state = 'delivered', attempts = attempts + 1,
                 next_attempt_at = NULL, last_status = ?2, last_error = NULL, delivered_at = ?3
                 WHERE id = ?1",
            )?
            .execute(params![id, status, now])?,
        Attempt::Failed {
            status,
            error,
            retry_at,
        } => tx
            .prepare_cached(
                "UPDATE outbox_deliveries SET attempts = attempts + 1, last_status = ?2,
                 last_error = ?3, next_attempt_at = ?4,
                 state = CASE WHEN ?4 IS NULL THEN 'given_up' ELSE 'pending' END
                 WHERE id = ?1",
            )?
            .execute(params![id, status, error, retry_at])?,
    };
    Ok(())
}

/// The newest deliveries, for the admin.
pub fn recent(conn: &Connection, limit: usize) -> Result<Vec<Delivery>, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLS} FROM outbox_deliveries d JOIN outbox o ON o.id = d.outbox_id
         ORDER BY d.id DESC LIMIT ?1"
    ))?;
    let rows = st.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], delivery_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many deliveries are pending, delivered and given up; events not yet fanned out.
pub fn counts(conn: &Connection) -> Result<(i64, i64, i64, i64), StoreError> {
    let (pending, delivered, given_up) = conn
        .prepare_cached(
            "SELECT COUNT(CASE WHEN state = 'pending' THEN 1 END),
                    COUNT(CASE WHEN state = 'delivered' THEN 1 END),
                    COUNT(CASE WHEN state = 'given_up' THEN 1 END)
             FROM outbox_deliveries",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let waiting = conn
        .prepare_cached("SELECT COUNT(*) FROM outbox WHERE fanned_out = 0")?
        .query_row([], |r| r.get(0))?;
    Ok((pending, delivered, given_up, waiting))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        migrations::apply(&mut c).unwrap();
        c
    }

    fn event(tx: &str) -> Event {
        Event::payment(
            &TransactionId::new(tx).unwrap(),
            &OrderNo::from_stored("202612010001".into()),
            Fen::new(1250),
            Millis(1_000),
        )
    }

    #[test]
    fn one_row_per_event_id_and_one_delivery_per_url() {
        let mut c = db();
        let tx = c.transaction().unwrap();
        assert!(enqueue(&tx, &event("4200001")).unwrap());
        assert!(
            !enqueue(&tx, &event("4200001")).unwrap(),
            "same id: same event"
        );
        assert!(enqueue(&tx, &event("4200002")).unwrap());
        let urls = vec!["http://a/".to_string(), "http://b/".to_string()];
        assert_eq!(fan_out(&tx, &urls, Millis(5), 10).unwrap(), 2);
        assert_eq!(fan_out(&tx, &urls, Millis(5), 10).unwrap(), 0, "once");
        let due_now = due(&tx, Millis(5), 10).unwrap();
        assert_eq!(due_now.len(), 4);
        assert_eq!(due_now[0].event.event_id, "payment-4200001");
        assert!(due(&tx, Millis(4), 10).unwrap().is_empty());

        let d = &due_now[0];
        record(
            &tx,
            d.id,
            &Attempt::Failed {
                status: Some(500),
                error: "HTTP 500".into(),
                retry_at: Some(Millis(100)),
            },
            Millis(6),
        )
        .unwrap();
        record(
            &tx,
            due_now[1].id,
            &Attempt::Delivered { status: 200 },
            Millis(6),
        )
        .unwrap();
        record(
            &tx,
            due_now[2].id,
            &Attempt::Failed {
                status: None,
                error: "down".into(),
                retry_at: None,
            },
            Millis(6),
        )
        .unwrap();
        assert_eq!(
            due(&tx, Millis(99), 10).unwrap().len(),
            1,
            "only the untried one"
        );
        assert_eq!(due(&tx, Millis(100), 10).unwrap().len(), 2);
        assert_eq!(counts(&tx).unwrap(), (2, 1, 1, 0));
        let shown = recent(&tx, 10).unwrap();
        assert_eq!(shown.len(), 4);
        assert!(
            shown
                .iter()
                .any(|d| d.state == DeliveryState::GivenUp && d.attempts == 1)
        );
    }

    #[test]
    fn refunds_and_reconciliation_differences_have_ids_of_their_own() {
        let mut c = db();
        let tx = c.transaction().unwrap();
        let no = OrderNo::from_stored("202612010002".into());
        let refund = Event::refund("R202612010002-1", &no, Fen::new(500), Millis(7));
        let diff =
            Event::reconciliation_difference("20261201", "4200009", None, Fen::new(-1), Millis(8));
        assert_eq!(refund.event_id, "refund-R202612010002-1");
        assert_eq!(diff.event_id, "reconciliation-20261201-4200009");
        assert!(enqueue(&tx, &refund).unwrap());
        assert!(enqueue(&tx, &diff).unwrap());
        assert!(
            enqueue(&tx, &event("4200009")).unwrap(),
            "a payment of the same transaction is another event"
        );
        fan_out(&tx, &["http://a/".to_string()], Millis(9), 10).unwrap();
        let kinds: Vec<EventKind> = due(&tx, Millis(9), 10)
            .unwrap()
            .into_iter()
            .map(|d| d.event.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                EventKind::Refund,
                EventKind::ReconciliationDifference,
                EventKind::Payment
            ]
        );
    }
}
