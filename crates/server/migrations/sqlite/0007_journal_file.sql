-- The webhook journal moves to its own file (<db>-journal.db, created by the server) so that
-- its durable commits do not wait behind the processor's. What was processed is kept here, in
-- one cursor row updated in the processor's transaction: a batch's effects and its cursor
-- commit together.
CREATE TABLE ingest_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    processed_through INTEGER NOT NULL
);
INSERT INTO ingest_cursor (id, processed_through)
SELECT 1, COALESCE(
    (SELECT MIN(id) - 1 FROM webhook_journal WHERE processed_at IS NULL),
    (SELECT MAX(id) FROM webhook_journal),
    0);

-- A foreign key cannot point into another file: the two tables naming journal entries are
-- rebuilt without it.
CREATE TABLE webhook_unhandled_new (
    id INTEGER PRIMARY KEY,
    journal_id INTEGER NOT NULL,
    change_index INTEGER NOT NULL,
    field TEXT,
    reason TEXT NOT NULL,
    tenant_id INTEGER,
    raw TEXT NOT NULL,
    at INTEGER NOT NULL,
    UNIQUE (journal_id, change_index, reason)
);
INSERT INTO webhook_unhandled_new (id, journal_id, change_index, field, reason, tenant_id, raw, at)
SELECT id, journal_id, change_index, field, reason, tenant_id, raw, at FROM webhook_unhandled;
DROP TABLE webhook_unhandled;
ALTER TABLE webhook_unhandled_new RENAME TO webhook_unhandled;

CREATE TABLE handler_retries_new (
    journal_id INTEGER NOT NULL,
    change_index INTEGER NOT NULL,
    handler TEXT NOT NULL,
    tenant_id INTEGER,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    PRIMARY KEY (journal_id, change_index, handler)
);
INSERT INTO handler_retries_new (journal_id, change_index, handler, tenant_id, attempts, next_attempt_at, last_error)
SELECT journal_id, change_index, handler, tenant_id, attempts, next_attempt_at, last_error FROM handler_retries;
DROP TABLE handler_retries;
ALTER TABLE handler_retries_new RENAME TO handler_retries;
CREATE INDEX handler_retries_due ON handler_retries (next_attempt_at);
