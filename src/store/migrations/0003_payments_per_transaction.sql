-- Only the gateway's transaction is unique among payments. A QR may be paid
-- more than once (a second payment of an already-paid code is money received
-- and must be kept, flagged double_paid), so `qr_id` is no longer UNIQUE.
CREATE TABLE payments_new (
    id             INTEGER PRIMARY KEY,
    transaction_id TEXT NOT NULL UNIQUE,
    qr_id          INTEGER NOT NULL REFERENCES qrs (id),
    order_id       INTEGER NOT NULL REFERENCES orders (id),
    amount_fen     INTEGER NOT NULL,
    source         TEXT NOT NULL,           -- notify | poll | close
    openid         TEXT,
    time_end       TEXT,
    late           INTEGER NOT NULL,
    double_paid    INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
);
INSERT INTO payments_new (id, transaction_id, qr_id, order_id, amount_fen, source, openid,
                          time_end, late, double_paid, created_at)
    SELECT id, transaction_id, qr_id, order_id, amount_fen, source, openid,
           time_end, late, double_paid, created_at FROM payments;
DROP TABLE payments;
ALTER TABLE payments_new RENAME TO payments;
CREATE INDEX payments_order ON payments (order_id);
CREATE INDEX payments_qr ON payments (qr_id);

-- Payment facts that contradict what we recorded (a transaction id the gateway
-- reports for two different codes): kept on the order for the admin to look at.
ALTER TABLE orders ADD COLUMN anomaly INTEGER NOT NULL DEFAULT 0;
