-- scanpay's first schema. Times are Unix milliseconds (UTC); money is integer fen.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'cashier')),
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,            -- SHA-256 of the cookie value; the value itself is never stored
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE orders (
    id            INTEGER PRIMARY KEY,
    order_no      TEXT NOT NULL UNIQUE,
    token         TEXT NOT NULL UNIQUE,     -- the customer's unguessable link
    amount_fen    INTEGER NOT NULL CHECK (amount_fen > 0),
    description   TEXT NOT NULL,
    cashier_id    INTEGER REFERENCES users (id),
    state         TEXT NOT NULL CHECK (state IN ('open', 'paid', 'expired', 'cancelled')),
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,         -- an unpaid order expires then
    current_qr_id INTEGER,
    paid_at       INTEGER,
    paid_qr_id    INTEGER,
    transaction_id TEXT,
    late          INTEGER NOT NULL DEFAULT 0,
    double_paid   INTEGER NOT NULL DEFAULT 0,
    ended_at      INTEGER                   -- expired or cancelled at
);
CREATE INDEX orders_state ON orders (state, expires_at);
CREATE INDEX orders_paid_at ON orders (paid_at) WHERE state = 'paid';

-- One row per gateway order (out_trade_no). Written before unifiedorder is called.
CREATE TABLE qrs (
    id              INTEGER PRIMARY KEY,
    order_id        INTEGER NOT NULL REFERENCES orders (id),
    version         INTEGER NOT NULL,
    out_trade_no    TEXT NOT NULL UNIQUE,
    state           TEXT NOT NULL CHECK (state IN ('creating', 'failed', 'open', 'closing', 'closed', 'paid')),
    time_start      INTEGER NOT NULL,       -- sent to the gateway; kept so a retry sends the same
    time_expire     INTEGER NOT NULL,
    display_until   INTEGER NOT NULL,       -- the QR's life on screen (checkout.qr_ttl_secs)
    spbill_create_ip TEXT NOT NULL,
    prepay_id       TEXT,
    code_url        TEXT,
    created_at      INTEGER NOT NULL,
    next_poll_at    INTEGER,                -- NULL: nothing to ask the gateway
    polls           INTEGER NOT NULL DEFAULT 0,
    errors          INTEGER NOT NULL DEFAULT 0,  -- consecutive gateway errors (backoff)
    next_close_at   INTEGER,                -- for state 'closing'
    last_error      TEXT,
    UNIQUE (order_id, version)
);
CREATE INDEX qrs_poll ON qrs (next_poll_at) WHERE next_poll_at IS NOT NULL;
CREATE INDEX qrs_close ON qrs (next_close_at) WHERE next_close_at IS NOT NULL;
CREATE INDEX qrs_order ON qrs (order_id);

-- Money received. One row per gateway transaction, whichever path learnt of it first.
CREATE TABLE payments (
    id             INTEGER PRIMARY KEY,
    transaction_id TEXT NOT NULL UNIQUE,
    qr_id          INTEGER NOT NULL UNIQUE REFERENCES qrs (id),
    order_id       INTEGER NOT NULL REFERENCES orders (id),
    amount_fen     INTEGER NOT NULL,
    source         TEXT NOT NULL,           -- notify | poll | close
    openid         TEXT,
    time_end       TEXT,
    late           INTEGER NOT NULL,
    double_paid    INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX payments_order ON payments (order_id);

-- Every notification received, with what became of it.
CREATE TABLE notifications (
    id             INTEGER PRIMARY KEY,
    received_at    INTEGER NOT NULL,
    remote_addr    TEXT,
    out_trade_no   TEXT,
    transaction_id TEXT,
    verified       INTEGER NOT NULL,
    outcome        TEXT NOT NULL,
    body           TEXT NOT NULL            -- capped, signature removed
);
CREATE INDEX notifications_out_trade_no ON notifications (out_trade_no);

CREATE TABLE events (
    id       INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders (id),
    at       INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_order ON events (order_id, id);
