-- Operator cancel requests (`autoquant cancel`), written by the CLI and carried out by the running
-- daemon, which records each outcome; a request without an outcome is still to be done.

CREATE TABLE cancel_requests (
    seq INTEGER PRIMARY KEY,
    target TEXT NOT NULL,  -- a client order id, or '*' for every open order
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    local_ts_ns INTEGER NOT NULL
);

CREATE TABLE cancel_outcomes (
    seq INTEGER PRIMARY KEY,
    request_seq INTEGER NOT NULL UNIQUE REFERENCES cancel_requests (seq),
    canceled INTEGER NOT NULL,
    detail TEXT NOT NULL,
    local_ts_ns INTEGER NOT NULL
);

CREATE TRIGGER cancel_requests_no_update BEFORE UPDATE ON cancel_requests
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on cancel_requests refused'); END;
CREATE TRIGGER cancel_requests_no_delete BEFORE DELETE ON cancel_requests
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on cancel_requests refused'); END;
CREATE TRIGGER cancel_outcomes_no_update BEFORE UPDATE ON cancel_outcomes
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on cancel_outcomes refused'); END;
CREATE TRIGGER cancel_outcomes_no_delete BEFORE DELETE ON cancel_outcomes
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on cancel_outcomes refused'); END;
