-- The poller asks for due work four times a second. Without these two, one of
-- its questions read every open order (due_refreshes) and another every QR ever
-- issued (stale_creations) each time: with 10,000 open orders that was most of
-- its CPU, and with 100,000 past orders 5 % of a core while nothing was open.

-- QRs whose screen life may be over, walked by display_until.
CREATE INDEX qrs_display ON qrs (display_until) WHERE state IN ('open', 'failed');

-- QRs still waiting for their unifiedorder answer (few, and briefly).
CREATE INDEX qrs_creating ON qrs (created_at) WHERE state = 'creating';
