-- Money going back. One row per refund, written (with its out_refund_no) before
-- the gateway is asked, so a refund whose answer was lost is sent again with the
-- same number and the gateway refunds it once.
CREATE TABLE refunds (
    id             INTEGER PRIMARY KEY,
    out_refund_no  TEXT NOT NULL UNIQUE,
    payment_id     INTEGER NOT NULL REFERENCES payments (id),
    order_id       INTEGER NOT NULL REFERENCES orders (id),
    amount_fen     INTEGER NOT NULL CHECK (amount_fen > 0),
    state          TEXT NOT NULL CHECK (state IN ('pending', 'processing', 'succeeded', 'closed', 'abnormal', 'failed')),
    user_id        INTEGER REFERENCES users (id),
    username       TEXT NOT NULL,           -- who asked, as they were named then
    reason         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    finished_at    INTEGER,                 -- succeeded or closed at
    refund_id      TEXT,                    -- the gateway's id of it
    account        TEXT,                    -- where the money went (e.g. 支付用户零钱)
    next_query_at  INTEGER,                 -- NULL: nothing to ask the gateway
    attempts       INTEGER NOT NULL DEFAULT 0,  -- requests sent (refund and query)
    errors         INTEGER NOT NULL DEFAULT 0,  -- consecutive failures (backoff)
    last_error     TEXT
);
CREATE INDEX refunds_payment ON refunds (payment_id);
CREATE INDEX refunds_order ON refunds (order_id);
CREATE INDEX refunds_created ON refunds (created_at);
CREATE INDEX refunds_due ON refunds (next_query_at) WHERE next_query_at IS NOT NULL;
CREATE INDEX refunds_pending ON refunds (updated_at) WHERE state = 'pending';
