-- Every signed webhook body, kept before it is acknowledged; processed_at NULL = pending.
CREATE TABLE webhook_journal (
    id INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    body BLOB NOT NULL,
    processed_at INTEGER
);
CREATE INDEX webhook_journal_pending ON webhook_journal (id) WHERE processed_at IS NULL;

-- Changes nobody could apply (unknown number or WABA, no subscriber, not JSON): kept for support.
CREATE TABLE webhook_unhandled (
    id INTEGER PRIMARY KEY,
    journal_id INTEGER NOT NULL REFERENCES webhook_journal (id),
    change_index INTEGER NOT NULL,
    field TEXT,
    reason TEXT NOT NULL,
    tenant_id INTEGER,
    raw TEXT NOT NULL,
    at INTEGER NOT NULL,
    UNIQUE (journal_id, change_index, reason)
);

-- A handler that failed on a change is retried on its own, with backoff.
CREATE TABLE handler_retries (
    journal_id INTEGER NOT NULL REFERENCES webhook_journal (id),
    change_index INTEGER NOT NULL,
    handler TEXT NOT NULL,
    tenant_id INTEGER,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    PRIMARY KEY (journal_id, change_index, handler)
);
CREATE INDEX handler_retries_due ON handler_retries (next_attempt_at);

-- Live events per tenant (user_id NULL: every user), replayed to reconnecting browsers.
CREATE TABLE live_events (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL,
    user_id INTEGER,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX live_events_tenant ON live_events (tenant_id, id);

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    actor TEXT NOT NULL,
    preview TEXT NOT NULL,
    link TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    read_at INTEGER,
    UNIQUE (user_id, dedupe_key)
);
CREATE INDEX notifications_user ON notifications (user_id, id);
