-- The daily bill and its reconciliation (SPEC §9): one row per day checked,
-- the bill's text as downloaded, and every difference found on that day.
CREATE TABLE bills (
    day          TEXT PRIMARY KEY,              -- YYYY-MM-DD, Beijing time
    state        TEXT NOT NULL CHECK (state IN ('matched', 'differences', 'no_bill', 'pending')),
    checked_at   INTEGER NOT NULL,
    gross_fen    INTEGER NOT NULL DEFAULT 0,
    refunded_fen INTEGER NOT NULL DEFAULT 0,
    fee_millifen INTEGER NOT NULL DEFAULT 0,    -- thousandths of a fen, as the bill gives 5 decimals
    net_fen      INTEGER NOT NULL DEFAULT 0,
    payments     INTEGER NOT NULL DEFAULT 0,    -- payment rows in the bill
    refunds      INTEGER NOT NULL DEFAULT 0,
    raw_gzip     BLOB,                          -- the bill as downloaded, gzip
    last_error   TEXT
);

CREATE TABLE bill_differences (
    id             INTEGER PRIMARY KEY,
    day            TEXT NOT NULL REFERENCES bills (day),
    kind           TEXT NOT NULL CHECK (kind IN ('missing_here', 'missing_in_bill', 'amount_differs',
                                                 'refund_missing_here', 'refund_missing_in_bill')),
    out_trade_no   TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    out_refund_no  TEXT NOT NULL,
    ours_fen       INTEGER,
    theirs_fen     INTEGER,
    order_id       INTEGER REFERENCES orders (id)
);
CREATE INDEX bill_differences_day ON bill_differences (day, id);
