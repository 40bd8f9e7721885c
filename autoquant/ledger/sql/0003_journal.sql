-- One global sequence for every ledger event, whatever its table: `journal.seq` orders decisions,
-- risk checks, reservations, transitions, fills, controls, incidents, reconciliation runs and cancel
-- requests as they were committed, so readers (trace, the live event stream) follow the ledger's own
-- order instead of wall-clock time. Each event row gets its journal row in the same statement (an
-- AFTER INSERT trigger), so no writer can forget it. History written before this migration is
-- journalled once here, in time order (the best order it has).

CREATE TABLE journal (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    row_seq INTEGER NOT NULL,
    local_ts_ns INTEGER NOT NULL,
    UNIQUE (kind, row_seq)
);

INSERT INTO journal (kind, row_seq, local_ts_ns)
SELECT kind, row_seq, ts FROM (
    SELECT 'decision' AS kind, seq AS row_seq, local_ts_ns AS ts, 0 AS rank FROM decisions
    UNION ALL
    SELECT 'risk_event' AS kind, seq AS row_seq, local_ts_ns AS ts, 1 AS rank FROM risk_events
    UNION ALL
    SELECT 'order_reserved' AS kind, seq AS row_seq, local_ts_ns AS ts, 2 AS rank FROM orders
    UNION ALL
    SELECT 'order_event' AS kind, seq AS row_seq, local_ts_ns AS ts, 3 AS rank FROM order_events
    UNION ALL
    SELECT 'fill' AS kind, seq AS row_seq, local_ts_ns AS ts, 4 AS rank FROM fills
    UNION ALL
    SELECT 'control' AS kind, seq AS row_seq, local_ts_ns AS ts, 5 AS rank FROM controls
    UNION ALL
    SELECT 'incident' AS kind, seq AS row_seq, local_ts_ns AS ts, 6 AS rank FROM incidents
    UNION ALL
    SELECT 'incident_resolved' AS kind, seq AS row_seq, local_ts_ns AS ts, 7 AS rank FROM incident_resolutions
    UNION ALL
    SELECT 'reconciliation' AS kind, seq AS row_seq, finished_ns AS ts, 8 AS rank FROM reconciliations
    UNION ALL
    SELECT 'account_snapshot' AS kind, seq AS row_seq, local_ts_ns AS ts, 9 AS rank FROM account_snapshots
    UNION ALL
    SELECT 'cancel_requested' AS kind, seq AS row_seq, local_ts_ns AS ts, 10 AS rank FROM cancel_requests
    UNION ALL
    SELECT 'cancel_outcome' AS kind, seq AS row_seq, local_ts_ns AS ts, 11 AS rank FROM cancel_outcomes
) ORDER BY ts, rank, row_seq;

CREATE TRIGGER decisions_journal AFTER INSERT ON decisions
BEGIN INSERT INTO journal (kind, row_seq, local_ts_ns) VALUES ('decision', NEW.seq, NEW.local_ts_ns); END;
CREATE TRIGGER risk_events_journal AFTER INSERT ON risk_events
BEGIN INSERT INTO journal (kind, row_seq, local_ts_ns) VALUES ('risk_event', NEW.seq, NEW.local_ts_ns); END;
CREATE TRIGGER orders_journal AFTER INSERT ON orders
BEGIN INSERT INTO journal (kind, row_seq, local_ts_ns) VALUES ('order_reserved', NEW.seq, NEW.local_ts_ns); END;
CREATE TRIGGER order_events_journal AFTER INSERT ON order_events
BEGIN INSERT INTO journal (kind, row_seq, local_ts_ns) VALUES ('order_event', NEW.seq, NEW.local_ts_ns); END;
CREATE TRIGGER fills_journal AFTER INSERT ON fills
BEGIN INSERT INTO journal (kind, row_seq, local_ts_ns) VALUES ('fill', NEW.seq, NEW.local_ts_ns); END;
CREATE TRIGGER controls_journal AFTER INSERT ON controls
BEGIN INSERT INTO journal (kind, row_seq, local_ts_ns) VALUES ('control', NEW.seq, NEW.local_ts_ns); END;
CREATE TRIGGER incidents_journal AFTER INSERT ON incidents
BEGIN INSERT INTO journal (kind, row_seq, local_ts_ns) VALUES ('incident', NEW.seq, NEW.local_ts_ns); END;
CREATE TRIGGER incident_resolutions_journal AFTER INSERT ON incident_resolutions
BEGIN INSERT INTO journal (kind, row_seq, local_ts_ns) VALUES ('incident_resolved', NEW.seq, NEW.local_ts_ns); END;
CREATE TRIGGER reconciliations_journal AFTER INSERT ON reconciliations
BEGIN INSERT INTO journal (kind, row_seq, local_ts_ns) VALUES ('reconciliation', NEW.seq, NEW.finished_ns); END;
CREATE TRIGGER account_snapshots_journal AFTER INSERT ON account_snapshots
BEGIN INSERT INTO journal (kind, row_seq, local_ts_ns) VALUES ('account_snapshot', NEW.seq, NEW.local_ts_ns); END;
CREATE TRIGGER cancel_requests_journal AFTER INSERT ON cancel_requests
BEGIN INSERT INTO journal (kind, row_seq, local_ts_ns) VALUES ('cancel_requested', NEW.seq, NEW.local_ts_ns); END;
CREATE TRIGGER cancel_outcomes_journal AFTER INSERT ON cancel_outcomes
BEGIN INSERT INTO journal (kind, row_seq, local_ts_ns) VALUES ('cancel_outcome', NEW.seq, NEW.local_ts_ns); END;

-- The incident a control answers (a pause or halt opened for it), as a link rather than text in the
-- control's reason. Controls written before this migration are linked from their reason here.
CREATE TABLE control_incidents (
    seq INTEGER PRIMARY KEY,
    control_seq INTEGER NOT NULL UNIQUE REFERENCES controls (seq),
    incident_id TEXT NOT NULL REFERENCES incidents (incident_id)
);
CREATE INDEX control_incidents_by_incident ON control_incidents (incident_id);
INSERT INTO control_incidents (control_seq, incident_id)
SELECT c.seq, i.incident_id FROM controls c JOIN incidents i
    ON instr(c.reason, '(incident ' || i.incident_id || ')') > 0
ORDER BY c.seq;

-- The reconciler's cursor (tracking-table pattern): written in the same transaction as the run it
-- belongs to, so a restarted reconciler resumes from exactly what the last recorded run saw: the
-- account's cash read at cash_at_ns, and the last ledger fill (fills.seq) appended before that read.
CREATE TABLE reconciliation_cursors (
    seq INTEGER PRIMARY KEY,
    run_seq INTEGER NOT NULL UNIQUE REFERENCES reconciliations (seq),
    fills_seq INTEGER NOT NULL,
    cash TEXT NOT NULL,
    cash_at_ns INTEGER NOT NULL
);
INSERT INTO reconciliation_cursors (run_seq, fills_seq, cash, cash_at_ns)
SELECT seq, json_extract(summary_json, '$.fills_seq'), json_extract(summary_json, '$.cash'),
    json_extract(summary_json, '$.cash_at_ns')
FROM reconciliations
WHERE json_extract(summary_json, '$.fills_seq') IS NOT NULL
    AND json_extract(summary_json, '$.cash') IS NOT NULL
    AND json_extract(summary_json, '$.cash_at_ns') IS NOT NULL
ORDER BY seq;

-- What the kill switch's triggers read: submissions by time, rejections in order.
CREATE INDEX order_events_by_kind ON order_events (kind, seq);

CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on journal refused'); END;
CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on journal refused'); END;
CREATE TRIGGER control_incidents_no_update BEFORE UPDATE ON control_incidents
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on control_incidents refused'); END;
CREATE TRIGGER control_incidents_no_delete BEFORE DELETE ON control_incidents
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on control_incidents refused'); END;
CREATE TRIGGER reconciliation_cursors_no_update BEFORE UPDATE ON reconciliation_cursors
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on reconciliation_cursors refused'); END;
CREATE TRIGGER reconciliation_cursors_no_delete BEFORE DELETE ON reconciliation_cursors
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on reconciliation_cursors refused'); END;
