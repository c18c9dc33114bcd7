-- The poller asks for due work four times a second. Without these, two of its
-- questions read every open order (due_refreshes) or every QR ever issued
-- (stale_creations) each time: with 10,000 open orders that was most of its CPU.

-- QRs whose screen life may be over: due_refreshes walks this by display_until.
CREATE INDEX qrs_display ON qrs (display_until) WHERE state IN ('open', 'failed');

-- QRs still waiting for their unifiedorder answer (few, and briefly).
CREATE INDEX qrs_creating ON qrs (created_at) WHERE state = 'creating';
