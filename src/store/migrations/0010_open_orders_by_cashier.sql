-- The per-cashier cap counts a cashier's open orders inside every order's
-- creation (the one writer): only the open ones, not the cashier's history.
CREATE INDEX orders_open_by_cashier ON orders (cashier_id) WHERE state = 'open';
