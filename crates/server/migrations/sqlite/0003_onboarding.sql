-- Onboarding a tenant's WhatsApp number (issue 6): per-tenant state, every attempt with Meta's
-- diagnostics, the four-item checklist, the default template's review, alerts for support and
-- the e-mails that would go out.

-- One row per tenant that began onboarding: the sealed PIN, failed attempts, the lock, what the
-- Graph API last said, and when the poller looks next (NULL: nothing left to poll).
CREATE TABLE onboarding_state (
    tenant_id INTEGER PRIMARY KEY REFERENCES tenants (id),
    pin_ciphertext BLOB,
    pin_set_at INTEGER,
    payment_confirmed_at INTEGER,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_at INTEGER,
    waba_id TEXT,
    phone_number_id TEXT,
    business_verification TEXT,
    account_review TEXT,
    name_status TEXT,
    poll_next_at INTEGER,
    poll_interval_ms INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);
CREATE INDEX onboarding_state_poll ON onboarding_state (poll_next_at);

-- One run of Embedded Signup. At most one open attempt per tenant, so double clicks and
-- parallel tabs share it; the session that started it is the only one that may finish it.
CREATE TABLE onboarding_attempts (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
    nonce TEXT NOT NULL UNIQUE,
    session_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    step TEXT,
    event TEXT,
    current_step TEXT,
    error_code INTEGER,
    error_subcode INTEGER,
    error_message TEXT,
    fbtrace_id TEXT,
    business_id TEXT,
    waba_id TEXT,
    phone_number_id TEXT,
    token_ciphertext BLOB,
    counted BOOLEAN NOT NULL DEFAULT FALSE,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE UNIQUE INDEX onboarding_attempts_open ON onboarding_attempts (tenant_id) WHERE finished_at IS NULL;
CREATE INDEX onboarding_attempts_tenant ON onboarding_attempts (tenant_id, id);

-- Rule 5's checklist: business_verified, number_verified, number_registered, template_approved.
CREATE TABLE onboarding_checklist (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    item TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    detail TEXT,
    changed_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, item)
);

-- The default booking_confirmation template as submitted during onboarding, per language.
-- (The templates feature keeps its own table; this row only drives the checklist.)
CREATE TABLE onboarding_templates (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    language TEXT NOT NULL,
    waba_id TEXT NOT NULL,
    template_id TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, language)
);

-- Problems that are ours, not the tenant's (a rejected default template), for support.
CREATE TABLE support_alerts (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    detail TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    resolved_at INTEGER
);

-- E-mails the product would send (one per user and checklist change). No mail server is
-- configured yet, so they stay here, unsent, where support and tests can read them.
CREATE TABLE email_outbox (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
);

-- Onboarding requests per tenant, for the rate limit.
CREATE TABLE onboarding_requests (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX onboarding_requests_tenant ON onboarding_requests (tenant_id, at);
