-- Meta's message ids are scattered (base64 of the customer's number and a random part): one
-- index by them put every inbound message at a random page, which the commit then writes.
-- Inbound messages are keyed by Meta's time first (a redelivery has the same time and id), so
-- a new one lands beside the last ones; our sends keep the index by id (statuses find them
-- by it). A customer's message is found by its id alone only within its conversation.
-- SQLite cannot drop a table's UNIQUE constraint in place: the messages are rebuilt with
-- their ids (no table refers to them by a foreign key).
CREATE TABLE messages_new (
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
    created_at INTEGER NOT NULL
);
INSERT INTO messages_new (id, tenant_id, conversation_id, direction, wamid, kind, body, payload, reply_to_wamid, outbox_id, status, status_rank, error_code, error_text, meta_at, created_at)
    SELECT id, tenant_id, conversation_id, direction, wamid, kind, body, payload, reply_to_wamid, outbox_id, status, status_rank, error_code, error_text, meta_at, created_at FROM messages;
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
CREATE INDEX messages_conversation ON messages (conversation_id, id);
CREATE INDEX messages_outbox ON messages (outbox_id) WHERE outbox_id IS NOT NULL;
CREATE UNIQUE INDEX messages_out_wamid ON messages (tenant_id, wamid) WHERE direction = 'out';
CREATE UNIQUE INDEX messages_in_key ON messages (tenant_id, meta_at, wamid) WHERE direction = 'in';
