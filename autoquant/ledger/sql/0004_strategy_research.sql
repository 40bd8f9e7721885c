-- Strategies as a public API: stop and stop-limit orders carry a stop price; and what a strategy saw
-- when it decided is kept, so `autoquant replay` can rerun it decision by decision.

ALTER TABLE orders ADD COLUMN stop_price TEXT;

-- Each bar the strategy worker decided on (released to strategies), once per (symbol, close time).
CREATE TABLE bars (
    seq INTEGER PRIMARY KEY,
    symbol TEXT NOT NULL,
    open_ns INTEGER NOT NULL,
    close_ns INTEGER NOT NULL,
    open TEXT NOT NULL,
    high TEXT NOT NULL,
    low TEXT NOT NULL,
    close TEXT NOT NULL,
    volume TEXT NOT NULL,
    source TEXT NOT NULL,
    UNIQUE (symbol, close_ns)
);
CREATE TRIGGER bars_no_update BEFORE UPDATE ON bars
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on bars refused'); END;
CREATE TRIGGER bars_no_delete BEFORE DELETE ON bars
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on bars refused'); END;

-- The rest of a decision's state (its positions, open orders, freshness, how many bars per symbol),
-- one row per decision, written in the decision's own transaction.
CREATE TABLE decision_states (
    seq INTEGER PRIMARY KEY,
    decision_id TEXT NOT NULL UNIQUE REFERENCES decisions (decision_id),
    state_json TEXT NOT NULL
);
CREATE TRIGGER decision_states_no_update BEFORE UPDATE ON decision_states
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on decision_states refused'); END;
CREATE TRIGGER decision_states_no_delete BEFORE DELETE ON decision_states
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on decision_states refused'); END;
