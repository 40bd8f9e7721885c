-- Alerts and manual orders (issue 12). Alerts: what the daemon told the operator, and what became of each delivery. An alert is
-- recorded before it is sent; each channel's outcome (delivered, failed after its retries) is its own
-- row. `source_seq` is the journal seq of the event that raised it (NULL for a daily summary or a
-- worker's crash loop), so a restarted alert worker resumes after the last event it alerted on.

CREATE TABLE alerts (
    seq INTEGER PRIMARY KEY,
    alert_id TEXT NOT NULL UNIQUE,
    event TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    dedup_key TEXT NOT NULL,
    source_seq INTEGER,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    local_ts_ns INTEGER NOT NULL
);
CREATE INDEX alerts_by_source ON alerts (source_seq);

CREATE TABLE alert_deliveries (
    seq INTEGER PRIMARY KEY,
    alert_id TEXT NOT NULL REFERENCES alerts (alert_id),
    channel TEXT NOT NULL,  -- the URL's scheme and host only: never its secrets
    outcome TEXT NOT NULL CHECK (outcome IN ('delivered', 'failed', 'folded')),
    attempts INTEGER NOT NULL,
    detail TEXT NOT NULL,
    local_ts_ns INTEGER NOT NULL
);
CREATE INDEX alert_deliveries_by_alert ON alert_deliveries (alert_id);

-- Manual orders an operator asked for (`POST /api/v1/orders/submit`): the running daemon reserves each
-- under its client order id (the caller's idempotency key) and sends it through the execution worker,
-- the path every order takes. A request whose order is not in `orders` yet is still to be done.
CREATE TABLE manual_orders (
    seq INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL UNIQUE CHECK (length(client_order_id) BETWEEN 1 AND 48),
    strategy_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    qty TEXT NOT NULL,
    order_type TEXT NOT NULL,
    time_in_force TEXT NOT NULL,
    limit_price TEXT,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    local_ts_ns INTEGER NOT NULL
);

CREATE TRIGGER manual_orders_no_update BEFORE UPDATE ON manual_orders
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on manual_orders refused'); END;
CREATE TRIGGER manual_orders_no_delete BEFORE DELETE ON manual_orders
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on manual_orders refused'); END;
CREATE TRIGGER alerts_no_update BEFORE UPDATE ON alerts
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on alerts refused'); END;
CREATE TRIGGER alerts_no_delete BEFORE DELETE ON alerts
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on alerts refused'); END;
CREATE TRIGGER alert_deliveries_no_update BEFORE UPDATE ON alert_deliveries
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on alert_deliveries refused'); END;
CREATE TRIGGER alert_deliveries_no_delete BEFORE DELETE ON alert_deliveries
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on alert_deliveries refused'); END;
