//! The counts `/metrics` exports: orders per state, payments, notifications.

use rusqlite::Connection;

use super::StoreError;
use crate::values::order::OrderState;

/// How many rows of each kind, as of one read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Orders per state, in the database's order; states without an order are absent.
    pub orders: Vec<(OrderState, i64)>,
    pub payments: i64,
    pub notifications: i64,
}

pub fn counts(conn: &Connection) -> Result<Counts, StoreError> {
    // One snapshot, so the three numbers describe the same moment.
    let tx = conn.unchecked_transaction()?;
    let mut st = tx.prepare_cached("SELECT state, COUNT(*) FROM orders GROUP BY state")?;
    let orders: Vec<(OrderState, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    drop(st);
    Ok(Counts {
        orders,
        payments: tx.query_row("SELECT COUNT(*) FROM payments", [], |r| r.get(0))?,
        notifications: tx.query_row("SELECT COUNT(*) FROM notifications", [], |r| r.get(0))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::fixtures::{Sale, sale, store};

    #[test]
    fn counts_orders_by_state_and_every_payment() {
        let (_dir, store) = store();
        assert_eq!(store.read_blocking(counts).unwrap(), Counts::default());
        store
            .write_blocking(|tx| {
                sale(tx, Sale::default());
                sale(tx, Sale::default());
                sale(
                    tx,
                    Sale {
                        paid_at: None,
                        ..Sale::default()
                    },
                );
                Ok(())
            })
            .unwrap();
        let mut c = store.read_blocking(counts).unwrap();
        c.orders.sort_by_key(|(s, _)| s.as_str());
        assert_eq!(
            c,
            Counts {
                orders: vec![(OrderState::Open, 1), (OrderState::Paid, 2)],
                payments: 2,
                notifications: 0,
            }
        );
    }
}
