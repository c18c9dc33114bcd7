-- The counter (SPEC §10): customer displays, the cashier's day, and the
-- owner's webhooks outbox.

-- One row per pairing. The token itself is never stored, only its SHA-256;
-- a cashier has at most one active (unrevoked) display.
CREATE TABLE displays (
    id          INTEGER PRIMARY KEY,
    cashier_id  INTEGER NOT NULL REFERENCES users (id),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE UNIQUE INDEX displays_one_active ON displays (cashier_id) WHERE revoked_at IS NULL;

-- The cashier's day and the display's current order: a cashier's orders by time.
CREATE INDEX orders_cashier ON orders (cashier_id, created_at);

-- Events for the owner, written in the transaction of what they report
-- (a payment, a refund, a reconciliation difference): durable before anyone is told.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,     -- the receiver's dedupe key
    event       TEXT NOT NULL,            -- payment | refund | reconciliation_difference
    order_no    TEXT,
    amount_fen  INTEGER NOT NULL,
    at          INTEGER NOT NULL,         -- when it happened
    fanned_out  INTEGER NOT NULL DEFAULT 0  -- its deliveries (one per webhook URL) are made
);
CREATE INDEX outbox_pending ON outbox (id) WHERE fanned_out = 0;

-- One row per event and webhook URL, retried with backoff until delivered or given up.
CREATE TABLE outbox_deliveries (
    id              INTEGER PRIMARY KEY,
    outbox_id       INTEGER NOT NULL REFERENCES outbox (id),
    url             TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'given_up')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,              -- NULL once delivered or given up
    last_error      TEXT,
    last_status     INTEGER,
    delivered_at    INTEGER,
    UNIQUE (outbox_id, url)
);
CREATE INDEX outbox_deliveries_due ON outbox_deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
