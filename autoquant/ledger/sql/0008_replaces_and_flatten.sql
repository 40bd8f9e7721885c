-- Replaces and flattening (issue 13). An order that replaces another names it: `replaces` is the old
-- order's client order id. The replacement is reserved under its own client order id, on the old
-- order's decision, before the broker is asked, so a replace reaches the broker at most once.
ALTER TABLE orders ADD COLUMN replaces TEXT;

-- Operator requests the running daemon carries out at the broker: replace an order (target: its
-- client order id; params: the new qty, limit and stop prices) or flatten the account (target '*':
-- cancel every open order and close every position). Each gets one outcome; a request without one is
-- still to be done. A replace's outcome is written in the transaction that reserves its replacement.
CREATE TABLE broker_requests (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('replace', 'flatten')),
    target TEXT NOT NULL,
    params_json TEXT NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    local_ts_ns INTEGER NOT NULL
);

CREATE TABLE broker_request_outcomes (
    seq INTEGER PRIMARY KEY,
    request_seq INTEGER NOT NULL UNIQUE REFERENCES broker_requests (seq),
    ok INTEGER NOT NULL CHECK (ok IN (0, 1)),
    detail TEXT NOT NULL,
    local_ts_ns INTEGER NOT NULL
);

CREATE TRIGGER broker_requests_no_update BEFORE UPDATE ON broker_requests
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on broker_requests refused'); END;
CREATE TRIGGER broker_requests_no_delete BEFORE DELETE ON broker_requests
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on broker_requests refused'); END;
CREATE TRIGGER broker_request_outcomes_no_update BEFORE UPDATE ON broker_request_outcomes
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on broker_request_outcomes refused'); END;
CREATE TRIGGER broker_request_outcomes_no_delete BEFORE DELETE ON broker_request_outcomes
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on broker_request_outcomes refused'); END;
