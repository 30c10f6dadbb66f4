-- Message templates of a tenant's WABA, as submitted by support (or found at Meta), kept
-- current by Meta's template webhooks and a periodic sync.
CREATE TABLE templates (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    waba_id TEXT NOT NULL,
    meta_template_id TEXT,
    name TEXT NOT NULL,
    language TEXT NOT NULL,
    category TEXT NOT NULL,
    previous_category TEXT,
    parameter_format TEXT NOT NULL,
    components TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    quality TEXT,
    category_changed_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (waba_id, name, language)
);
CREATE INDEX templates_tenant ON templates (tenant_id, name);

-- A tenant asks support for a new template.
CREATE TABLE template_requests (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    text TEXT NOT NULL,
    purpose TEXT NOT NULL,
    done_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX template_requests_tenant ON template_requests (tenant_id, id);

-- The cost of each outbound message, from the first status that carried `pricing`. Amounts in
-- millionths of the currency; NULL when no rate is known (shown as unknown, never as zero).
CREATE TABLE message_costs (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    wamid TEXT NOT NULL,
    message_id INTEGER,
    category TEXT NOT NULL,
    pricing_type TEXT NOT NULL,
    market TEXT,
    inside_window BOOLEAN NOT NULL,
    amount_micros INTEGER,
    currency TEXT NOT NULL,
    flagged BOOLEAN NOT NULL,
    day TEXT NOT NULL,
    priced_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, wamid)
);
CREATE INDEX message_costs_day ON message_costs (tenant_id, day);

-- API keys of the host application, per tenant; only the SHA-256 of the key is kept.
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    label TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

-- One-time sign-in links the operator API hands out (by the token's hash).
CREATE TABLE sign_in_links (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
);

-- Where a tenant's host application wants signed event callbacks.
CREATE TABLE callback_endpoints (
    tenant_id INTEGER PRIMARY KEY REFERENCES tenants (id),
    url TEXT NOT NULL,
    secret_ciphertext BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Every event callback and its delivery attempts.
CREATE TABLE callback_deliveries (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    event_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER,
    UNIQUE (tenant_id, event_key)
);
CREATE INDEX callback_deliveries_due ON callback_deliveries (state, next_attempt_at);
