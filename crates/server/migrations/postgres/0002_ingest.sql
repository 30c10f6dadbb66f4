-- Every signed webhook body, kept before it is acknowledged; processed_at NULL = pending.
CREATE TABLE webhook_journal (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at BIGINT NOT NULL,
    body BYTEA NOT NULL,
    processed_at BIGINT
);
CREATE INDEX webhook_journal_pending ON webhook_journal (id) WHERE processed_at IS NULL;

-- Changes nobody could apply (unknown number or WABA, no subscriber, not JSON): kept for support.
CREATE TABLE webhook_unhandled (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    journal_id BIGINT NOT NULL REFERENCES webhook_journal (id),
    change_index BIGINT NOT NULL,
    field TEXT,
    reason TEXT NOT NULL,
    tenant_id BIGINT,
    raw TEXT NOT NULL,
    at BIGINT NOT NULL,
    UNIQUE (journal_id, change_index, reason)
);

-- A handler that failed on a change is retried on its own, with backoff.
CREATE TABLE handler_retries (
    journal_id BIGINT NOT NULL REFERENCES webhook_journal (id),
    change_index BIGINT NOT NULL,
    handler TEXT NOT NULL,
    tenant_id BIGINT,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    PRIMARY KEY (journal_id, change_index, handler)
);
CREATE INDEX handler_retries_due ON handler_retries (next_attempt_at);

-- Live events per tenant (user_id NULL: every user), replayed to reconnecting browsers.
CREATE TABLE live_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id BIGINT NOT NULL,
    user_id BIGINT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX live_events_tenant ON live_events (tenant_id, id);

CREATE TABLE notifications (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    actor TEXT NOT NULL,
    preview TEXT NOT NULL,
    link TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    read_at BIGINT,
    UNIQUE (user_id, dedupe_key)
);
CREATE INDEX notifications_user ON notifications (user_id, id);
