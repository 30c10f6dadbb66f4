-- Customers of a tenant: keyed by BSUID when known, by phone otherwise (both when both known).
CREATE TABLE customers (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    bsuid TEXT,
    phone TEXT,
    name TEXT,
    username TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, bsuid),
    UNIQUE (tenant_id, phone)
);

-- One conversation per (tenant number, customer).
CREATE TABLE conversations (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    phone_number_id TEXT NOT NULL,
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    last_customer_message_at BIGINT,
    last_message_at BIGINT NOT NULL,
    last_preview TEXT NOT NULL,
    unread BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (phone_number_id, customer_id)
);
CREATE INDEX conversations_tenant ON conversations (tenant_id, last_message_at);

-- Messages both ways. status_rank orders statuses so that they never move backwards.
CREATE TABLE messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    conversation_id BIGINT NOT NULL REFERENCES conversations (id),
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    wamid TEXT,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    payload TEXT NOT NULL,
    reply_to_wamid TEXT,
    outbox_id BIGINT,
    status TEXT NOT NULL,
    status_rank BIGINT NOT NULL,
    error_code BIGINT,
    error_text TEXT,
    meta_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, wamid)
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);
CREATE INDEX messages_outbox ON messages (outbox_id);

-- The one outbox: every send, recorded before it is attempted.
CREATE TABLE outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    phone_number_id TEXT NOT NULL,
    conversation_id BIGINT,
    op TEXT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'unknown', 'failed', 'done')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    wamid TEXT,
    error_code BIGINT,
    error_text TEXT,
    idempotency_key TEXT,
    category TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

-- Pacing per business number, shared by every instance.
CREATE TABLE number_pacing (
    phone_number_id TEXT PRIMARY KEY,
    next_slot_at BIGINT NOT NULL
);

-- Media of messages, stored in the database (fetched from Meta once).
CREATE TABLE media (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    phone_number_id TEXT NOT NULL,
    meta_media_id TEXT NOT NULL,
    mime_type TEXT,
    filename TEXT,
    bytes BYTEA,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, meta_media_id)
);
