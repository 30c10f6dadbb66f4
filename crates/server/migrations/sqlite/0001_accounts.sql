CREATE TABLE tenants (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER REFERENCES tenants (id),
    email TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'agent', 'support')),
    locale TEXT,
    created_at INTEGER NOT NULL,
    CHECK ((role = 'support') = (tenant_id IS NULL))
);
CREATE INDEX users_tenant ON users (tenant_id);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE sign_in_failures (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX sign_in_failures_email ON sign_in_failures (email, at);
CREATE INDEX sign_in_failures_ip ON sign_in_failures (client_ip, at);

CREATE TABLE support_reads (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    tenant_id INTEGER REFERENCES tenants (id),
    what TEXT NOT NULL,
    at INTEGER NOT NULL
);

CREATE TABLE whatsapp_accounts (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    waba_id TEXT NOT NULL UNIQUE,
    business_id TEXT,
    token_ciphertext BLOB,
    created_at INTEGER NOT NULL
);
CREATE INDEX whatsapp_accounts_tenant ON whatsapp_accounts (tenant_id);

CREATE TABLE phone_numbers (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    account_id INTEGER NOT NULL REFERENCES whatsapp_accounts (id),
    phone_number_id TEXT NOT NULL UNIQUE,
    display_phone_number TEXT,
    verified_name TEXT,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX phone_numbers_tenant ON phone_numbers (tenant_id);
