-- Every Alpaca order type from a strategy (issue 13): a notional order carries its dollar amount (its
-- qty is '0' until fills say how many shares), a trailing stop its trail (price or percent, one of
-- the two), and a limit order may be eligible for extended hours (0 or 1). Older rows read as
-- neither notional nor trailing, regular hours only.
ALTER TABLE orders ADD COLUMN notional TEXT;
ALTER TABLE orders ADD COLUMN trail_price TEXT;
ALTER TABLE orders ADD COLUMN trail_percent TEXT;
ALTER TABLE orders ADD COLUMN extended_hours INTEGER NOT NULL DEFAULT 0 CHECK (extended_hours IN (0, 1));
