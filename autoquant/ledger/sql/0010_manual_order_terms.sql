-- Manual orders take every order type a strategy's intent takes: a stop (and stop-limit) price, a
-- trailing stop's trail (price or percent), a notional amount instead of a qty (qty '0' then), and
-- extended-hours eligibility (0 or 1). Older requests read as neither, regular hours only.
ALTER TABLE manual_orders ADD COLUMN stop_price TEXT;
ALTER TABLE manual_orders ADD COLUMN notional TEXT;
ALTER TABLE manual_orders ADD COLUMN trail_price TEXT;
ALTER TABLE manual_orders ADD COLUMN trail_percent TEXT;
ALTER TABLE manual_orders ADD COLUMN extended_hours INTEGER NOT NULL DEFAULT 0 CHECK (extended_hours IN (0, 1));
