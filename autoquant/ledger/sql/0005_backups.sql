-- Durability records: each verified backup taken of this ledger, each restore that produced this
-- ledger (written into the restored copy itself, so it says from which point it was restored), and
-- each broker order adopted after a restore (an order this account sent whose reservation the
-- restored ledger lacked; its decision is unknown). All append-only and journalled like every event.

CREATE TABLE backups (
    seq INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    last_journal_seq INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
    trigger TEXT NOT NULL,
    local_ts_ns INTEGER NOT NULL
);

CREATE TABLE restores (
    seq INTEGER PRIMARY KEY,
    source_path TEXT NOT NULL,
    source_sha256 TEXT NOT NULL CHECK (length(source_sha256) = 64),
    -- The restored point: the backup's last global sequence and the local time of its last event.
    backup_journal_seq INTEGER NOT NULL,
    backup_last_ns INTEGER NOT NULL,
    -- Where the ledger that was replaced was moved (NULL when there was none).
    moved_aside TEXT,
    actor TEXT NOT NULL,
    local_ts_ns INTEGER NOT NULL
);

CREATE TABLE restore_adoptions (
    seq INTEGER PRIMARY KEY,
    restore_seq INTEGER NOT NULL REFERENCES restores (seq),
    client_order_id TEXT NOT NULL UNIQUE REFERENCES orders (client_order_id),
    broker_order_id TEXT NOT NULL,
    local_ts_ns INTEGER NOT NULL
);

CREATE TRIGGER backups_journal AFTER INSERT ON backups
BEGIN INSERT INTO journal (kind, row_seq, local_ts_ns) VALUES ('backup', NEW.seq, NEW.local_ts_ns); END;
CREATE TRIGGER restores_journal AFTER INSERT ON restores
BEGIN INSERT INTO journal (kind, row_seq, local_ts_ns) VALUES ('restore', NEW.seq, NEW.local_ts_ns); END;
CREATE TRIGGER restore_adoptions_journal AFTER INSERT ON restore_adoptions
BEGIN INSERT INTO journal (kind, row_seq, local_ts_ns) VALUES ('order_adopted', NEW.seq, NEW.local_ts_ns); END;

CREATE TRIGGER backups_no_update BEFORE UPDATE ON backups
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on backups refused'); END;
CREATE TRIGGER backups_no_delete BEFORE DELETE ON backups
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on backups refused'); END;
CREATE TRIGGER restores_no_update BEFORE UPDATE ON restores
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on restores refused'); END;
CREATE TRIGGER restores_no_delete BEFORE DELETE ON restores
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on restores refused'); END;
CREATE TRIGGER restore_adoptions_no_update BEFORE UPDATE ON restore_adoptions
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on restore_adoptions refused'); END;
CREATE TRIGGER restore_adoptions_no_delete BEFORE DELETE ON restore_adoptions
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE on restore_adoptions refused'); END;
