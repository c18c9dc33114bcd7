-- The cashier's day figures (orders created, how many paid, for how much)
-- kept per cashier and quarter hour by triggers, so the checkout page reads
-- about a hundred rows, not every order of a busy day, whichever code path
-- creates or settles an order. Every time zone's day starts on a quarter hour,
-- so a day's range is a range of whole quarters (quarter = created_at / 900000).
CREATE TABLE cashier_quarters (
    cashier_id INTEGER NOT NULL,
    quarter    INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    paid       INTEGER NOT NULL,
    paid_fen   INTEGER NOT NULL,
    PRIMARY KEY (cashier_id, quarter)
) WITHOUT ROWID;

INSERT INTO cashier_quarters (cashier_id, quarter, created, paid, paid_fen)
SELECT cashier_id, created_at / 900000, COUNT(*),
       COUNT(CASE WHEN state = 'paid' THEN 1 END),
       COALESCE(SUM(CASE WHEN state = 'paid' THEN amount_fen END), 0)
FROM orders WHERE cashier_id IS NOT NULL GROUP BY cashier_id, created_at / 900000;

CREATE TRIGGER cashier_quarters_insert AFTER INSERT ON orders
WHEN NEW.cashier_id IS NOT NULL
BEGIN
    INSERT INTO cashier_quarters (cashier_id, quarter, created, paid, paid_fen)
    VALUES (NEW.cashier_id, NEW.created_at / 900000, 1, NEW.state = 'paid',
            CASE WHEN NEW.state = 'paid' THEN NEW.amount_fen ELSE 0 END)
    ON CONFLICT (cashier_id, quarter) DO UPDATE SET
        created = created + 1, paid = paid + excluded.paid, paid_fen = paid_fen + excluded.paid_fen;
END;

-- An update takes the old row's share out and puts the new row's in.
CREATE TRIGGER cashier_quarters_update AFTER UPDATE OF state, amount_fen, cashier_id, created_at ON orders
WHEN OLD.state IS NOT NEW.state OR OLD.amount_fen IS NOT NEW.amount_fen
  OR OLD.cashier_id IS NOT NEW.cashier_id OR OLD.created_at IS NOT NEW.created_at
BEGIN
    UPDATE cashier_quarters SET
        created = created - 1,
        paid = paid - (OLD.state = 'paid'),
        paid_fen = paid_fen - CASE WHEN OLD.state = 'paid' THEN OLD.amount_fen ELSE 0 END
    WHERE cashier_id = OLD.cashier_id AND quarter = OLD.created_at / 900000;
    INSERT INTO cashier_quarters (cashier_id, quarter, created, paid, paid_fen)
    SELECT NEW.cashier_id, NEW.created_at / 900000, 1, NEW.state = 'paid',
           CASE WHEN NEW.state = 'paid' THEN NEW.amount_fen ELSE 0 END
    WHERE NEW.cashier_id IS NOT NULL
    ON CONFLICT (cashier_id, quarter) DO UPDATE SET
        created = created + 1, paid = paid + excluded.paid, paid_fen = paid_fen + excluded.paid_fen;
END;

CREATE TRIGGER cashier_quarters_delete AFTER DELETE ON orders
WHEN OLD.cashier_id IS NOT NULL
BEGIN
    UPDATE cashier_quarters SET
        created = created - 1,
        paid = paid - (OLD.state = 'paid'),
        paid_fen = paid_fen - CASE WHEN OLD.state = 'paid' THEN OLD.amount_fen ELSE 0 END
    WHERE cashier_id = OLD.cashier_id AND quarter = OLD.created_at / 900000;
END;
