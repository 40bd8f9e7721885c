-- The append-only ledger. Every table refuses UPDATE and DELETE through triggers; current state is a
-- projection. Decimals are stored as TEXT (exact decimal strings); times as UTC nanoseconds.

CREATE TABLE decisions (
    seq INTEGER PRIMARY KEY,
    decision_id TEXT NOT NULL UNIQUE,
    strategy_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('buy', 'sell', 'hold')),
    reason TEXT NOT NULL,
    data_time_ns INTEGER NOT NULL,
    inputs_json TEXT NOT NULL,
    intent_json TEXT,
    local_ts_ns INTEGER NOT NULL
);
CREATE INDEX decisions_by_strategy ON decisions (strategy_id, seq);

-- The reservation: committed before any network call; the UNIQUE client order id refuses a second one.
CREATE TABLE orders (
    seq INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL UNIQUE CHECK (length(client_order_id) BETWEEN 1 AND 48),
    decision_id TEXT REFERENCES decisions (decision_id),
    strategy_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    qty TEXT NOT NULL,
    order_type TEXT NOT NULL,
    time_in_force TEXT NOT NULL,
    limit_price TEXT,
    local_ts_ns INTEGER NOT NULL
);
CREATE INDEX orders_by_decision ON orders (decision_id);

-- Every transition, with the state after it (so the current state is the latest row, one lookup).
CREATE TABLE order_events (
    seq INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL REFERENCES orders (client_order_id),
    kind TEXT NOT NULL,
    status_after TEXT NOT NULL,
    filled_qty_after TEXT NOT NULL,
    broker_order_id TEXT,
    reason TEXT,
    order_reason_after TEXT,
    broker_ts_ns INTEGER,
    local_ts_ns INTEGER NOT NULL
);
CREATE INDEX order_events_by_order ON order_events (client_order_id, seq);
CREATE INDEX order_events_by_broker_id ON order_events (broker_order_id);

-- An order that reached a terminal state (terminal states only lead to terminal states).
CREATE TABLE order_closures (
    seq INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL UNIQUE REFERENCES orders (client_order_id),
    status TEXT NOT NULL,
    local_ts_ns INTEGER NOT NULL
);

-- The set of open orders as of (orders_seq, closures_seq): start-up reads the newest one and the few
-- rows after it, so its cost grows with open orders, not with history.
CREATE TABLE open_order_checkpoints (
    seq INTEGER PRIMARY KEY,
    orders_seq INTEGER NOT NULL,
    closures_seq INTEGER NOT NULL,
    open_ids_json TEXT NOT NULL,
    local_ts_ns INTEGER NOT NULL
);

-- Executions, keyed by the broker's execution id, each with the (strategy, symbol) position after it.
CREATE TABLE fills (
    seq INTEGER PRIMARY KEY,
    execution_id TEXT NOT NULL UNIQUE,
    client_order_id TEXT NOT NULL REFERENCES orders (client_order_id),
    broker_order_id TEXT,
    strategy_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    qty TEXT NOT NULL,
    price TEXT NOT NULL,
    fee TEXT NOT NULL,
    broker_ts_ns INTEGER,
    local_ts_ns INTEGER NOT NULL,
    position_qty TEXT NOT NULL,
    position_avg_price TEXT NOT NULL,
    position_realized_pnl TEXT NOT NULL,
    position_fees TEXT NOT NULL
);
CREATE INDEX fills_by_key ON fills (strategy_id, symbol, seq);
CREATE INDEX fills_by_order ON fills (client_order_id);

CREATE TABLE position_keys (
    seq INTEGER PRIMARY KEY,
    strategy_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    UNIQUE (strategy_id, symbol)
);

CREATE TABLE controls (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('pause', 'resume', 'halt', 'reduce')),
    scope TEXT NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    local_ts_ns INTEGER NOT NULL
);

CREATE TABLE incidents (
    seq INTEGER PRIMARY KEY,
    incident_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    scope TEXT NOT NULL,
    message TEXT NOT NULL,
    action TEXT NOT NULL,
    details_json TEXT NOT NULL,
    local_ts_ns INTEGER NOT NULL
);
CREATE INDEX incidents_by_subject ON incidents (kind, subject);

CREATE TABLE incident_resolutions (
    seq INTEGER PRIMARY KEY,
    incident_id TEXT NOT NULL UNIQUE REFERENCES incidents (incident_id),
    actor TEXT NOT NULL,
    note TEXT NOT NULL,
    local_ts_ns INTEGER NOT NULL
);

CREATE TABLE risk_events (
    seq INTEGER PRIMARY KEY,
    decision_id TEXT,
    client_order_id TEXT,
    strategy_id TEXT NOT NULL,
    symbol TEXT NOT NULL,
    stage TEXT NOT NULL CHECK (stage IN ('decision', 'submit')),
    allowed INTEGER NOT NULL CHECK (allowed IN (0, 1)),
    reason TEXT,
    checks_json TEXT NOT NULL,
    local_ts_ns INTEGER NOT NULL
);
CREATE INDEX risk_events_by_decision ON risk_events (decision_id);
CREATE INDEX risk_events_by_order ON risk_events (client_order_id);

CREATE TABLE reconciliations (
    seq INTEGER PRIMARY KEY,
    trigger TEXT NOT NULL,
    clean INTEGER NOT NULL CHECK (clean IN (0, 1)),
    summary_json TEXT NOT NULL,
    started_ns INTEGER NOT NULL,
    finished_ns INTEGER NOT NULL
);

-- The broker's account as seen by reconciliation: the day's starting and peak equity come from here.
CREATE TABLE account_snapshots (
    seq INTEGER PRIMARY KEY,
    cash TEXT NOT NULL,
    equity TEXT NOT NULL,
    buying_power TEXT NOT NULL,
    local_ts_ns INTEGER NOT NULL
);
CREATE INDEX account_snapshots_by_time ON account_snapshots (local_ts_ns);

-- Append-only by construction.
CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on decisions refused'); END;
CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on decisions refused'); END;
CREATE TRIGGER orders_no_update BEFORE UPDATE ON orders
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on orders refused'); END;
CREATE TRIGGER orders_no_delete BEFORE DELETE ON orders
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on orders refused'); END;
CREATE TRIGGER order_events_no_update BEFORE UPDATE ON order_events
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on order_events refused'); END;
CREATE TRIGGER order_events_no_delete BEFORE DELETE ON order_events
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on order_events refused'); END;
CREATE TRIGGER order_closures_no_update BEFORE UPDATE ON order_closures
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on order_closures refused'); END;
CREATE TRIGGER order_closures_no_delete BEFORE DELETE ON order_closures
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on order_closures refused'); END;
CREATE TRIGGER open_order_checkpoints_no_update BEFORE UPDATE ON open_order_checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on open_order_checkpoints refused'); END;
CREATE TRIGGER open_order_checkpoints_no_delete BEFORE DELETE ON open_order_checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on open_order_checkpoints refused'); END;
CREATE TRIGGER fills_no_update BEFORE UPDATE ON fills
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on fills refused'); END;
CREATE TRIGGER fills_no_delete BEFORE DELETE ON fills
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on fills refused'); END;
CREATE TRIGGER position_keys_no_update BEFORE UPDATE ON position_keys
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on position_keys refused'); END;
CREATE TRIGGER position_keys_no_delete BEFORE DELETE ON position_keys
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on position_keys refused'); END;
CREATE TRIGGER controls_no_update BEFORE UPDATE ON controls
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on controls refused'); END;
CREATE TRIGGER controls_no_delete BEFORE DELETE ON controls
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on controls refused'); END;
CREATE TRIGGER incidents_no_update BEFORE UPDATE ON incidents
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on incidents refused'); END;
CREATE TRIGGER incidents_no_delete BEFORE DELETE ON incidents
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on incidents refused'); END;
CREATE TRIGGER incident_resolutions_no_update BEFORE UPDATE ON incident_resolutions
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on incident_resolutions refused'); END;
CREATE TRIGGER incident_resolutions_no_delete BEFORE DELETE ON incident_resolutions
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on incident_resolutions refused'); END;
CREATE TRIGGER risk_events_no_update BEFORE UPDATE ON risk_events
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on risk_events refused'); END;
CREATE TRIGGER risk_events_no_delete BEFORE DELETE ON risk_events
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on risk_events refused'); END;
CREATE TRIGGER reconciliations_no_update BEFORE UPDATE ON reconciliations
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on reconciliations refused'); END;
CREATE TRIGGER reconciliations_no_delete BEFORE DELETE ON reconciliations
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on reconciliations refused'); END;
CREATE TRIGGER account_snapshots_no_update BEFORE UPDATE ON account_snapshots
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on account_snapshots refused'); END;
CREATE TRIGGER account_snapshots_no_delete BEFORE DELETE ON account_snapshots
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on account_snapshots refused'); END;
