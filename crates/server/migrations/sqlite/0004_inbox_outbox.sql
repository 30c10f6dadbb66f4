-- Customers of a tenant: keyed by BSUID when known, by phone otherwise (both when both known).
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    bsuid TEXT,
    phone TEXT,
    name TEXT,
    username TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, bsuid),
    UNIQUE (tenant_id, phone)
);

-- One conversation per (tenant number, customer).
CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    phone_number_id TEXT NOT NULL,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    last_customer_message_at INTEGER,
    last_message_at INTEGER NOT NULL,
    last_preview TEXT NOT NULL,
    unread INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    UNIQUE (phone_number_id, customer_id)
);
CREATE INDEX conversations_tenant ON conversations (tenant_id, last_message_at);

-- Messages both ways. status_rank orders statuses so that they never move backwards.
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    wamid TEXT,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    payload TEXT NOT NULL,
    reply_to_wamid TEXT,
    outbox_id INTEGER,
    status TEXT NOT NULL,
    status_rank INTEGER NOT NULL,
    error_code INTEGER,
    error_text TEXT,
    meta_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, wamid)
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);
CREATE INDEX messages_outbox ON messages (outbox_id);

-- The one outbox: every send, recorded before it is attempted.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    phone_number_id TEXT NOT NULL,
    conversation_id INTEGER,
    op TEXT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'unknown', 'failed', 'done')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER,
    wamid TEXT,
    error_code INTEGER,
    error_text TEXT,
    idempotency_key TEXT,
    category TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- Pacing per business number, shared by every instance.
CREATE TABLE number_pacing (
    phone_number_id TEXT PRIMARY KEY,
    next_slot_at INTEGER NOT NULL
);

-- Media of messages, stored in the database (fetched from Meta once).
CREATE TABLE media (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    phone_number_id TEXT NOT NULL,
    meta_media_id TEXT NOT NULL,
    mime_type TEXT,
    filename TEXT,
    bytes BLOB,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, meta_media_id)
);
