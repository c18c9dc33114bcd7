-- Each shop day's last order number, so the next one is one step, however
-- many orders the day already has (past 9999 the numbers grow a digit and no
-- longer sort in step, so MAX(order_no) cannot find it).
CREATE TABLE order_days (
    day      TEXT PRIMARY KEY,     -- YYYYMMDD, the shop's day
    last_seq INTEGER NOT NULL
);
