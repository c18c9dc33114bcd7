-- When the gateway says a payment was made, as a moment (UTC milliseconds, like
-- every other time column), read from the protocol's own format by its adapter.
-- `time_end` keeps the text the gateway wrote for the rows recorded before
-- this (v2 `yyyyMMddHHmmss` Beijing time, v3 RFC 3339); they get their moment
-- here, once. A text that is neither keeps no moment (nor did it before: its
-- day is the day it was recorded). No row is dropped or rewritten otherwise.
ALTER TABLE payments ADD COLUMN gateway_paid_at INTEGER;
-- v2: exactly 14 digits that make a real moment (SQLite would roll 30 February
-- or hour 24 forward, so the text must come back the same; the adapter's
-- parser refuses those too).
UPDATE payments
   SET gateway_paid_at = (unixepoch(substr(time_end, 1, 4) || '-' || substr(time_end, 5, 2) || '-' ||
                                    substr(time_end, 7, 2) || ' ' || substr(time_end, 9, 2) || ':' ||
                                    substr(time_end, 11, 2) || ':' || substr(time_end, 13, 2))
                          - 8 * 3600) * 1000
 WHERE time_end GLOB '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]'
   AND strftime('%Y%m%d%H%M%S',
                substr(time_end, 1, 4) || '-' || substr(time_end, 5, 2) || '-' ||
                substr(time_end, 7, 2) || ' ' || substr(time_end, 9, 2) || ':' ||
                substr(time_end, 11, 2) || ':' || substr(time_end, 13, 2)) = time_end;
-- v3: RFC 3339 with its offset (`Z` or ±HH:MM; without one SQLite would read
-- UTC, the adapter reads nothing), on a real date and time of day.
UPDATE payments
   SET gateway_paid_at = unixepoch(time_end) * 1000
 WHERE gateway_paid_at IS NULL
   AND time_end GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]*'
   AND (time_end GLOB '*Z' OR time_end GLOB '*[+-][0-9][0-9]:[0-9][0-9]')
   AND date(substr(time_end, 1, 10)) = substr(time_end, 1, 10)
   AND time(substr(time_end, 12, 8)) = substr(time_end, 12, 8)
   AND unixepoch(time_end) IS NOT NULL;
