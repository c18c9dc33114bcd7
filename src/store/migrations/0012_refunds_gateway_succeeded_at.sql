-- When the gateway says a refund succeeded, as a moment (UTC milliseconds).
-- The day's bill lists a refund by that time, not by when we learned of it
-- (the poller may learn minutes later, past midnight). Older rows keep none
-- and fall back to `finished_at`, as before.
ALTER TABLE refunds ADD COLUMN gateway_succeeded_at INTEGER;
