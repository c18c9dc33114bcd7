-- Indexes for the questions asked most often.

-- The poller asks for due work four times a second. Without these two, one of
-- its questions read every open order (due_refreshes) and another every QR ever
-- issued (stale_creations) each time: with 10,000 open orders that was most of
-- its CPU, and with 100,000 past orders 5 % of a core while nothing was open.
CREATE INDEX qrs_display ON qrs (display_until) WHERE state IN ('open', 'failed');
CREATE INDEX qrs_creating ON qrs (created_at) WHERE state = 'creating';

-- A partial index `WHERE col IS NOT NULL` makes SQLite (built with STAT4, as
-- the bundled one is) re-plan every statement on qrs that compares a column
-- with a bound parameter, each time it is run with new values: a quarter of the
-- time of applying a payment went to re-preparing `qrs WHERE order_id = ?`.
-- Full indexes answer the same range scans (NULLs sort first and are skipped).
DROP INDEX qrs_poll;
CREATE INDEX qrs_poll ON qrs (next_poll_at);
DROP INDEX qrs_close;
CREATE INDEX qrs_close ON qrs (next_close_at);
