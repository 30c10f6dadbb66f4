-- A customer's message is one notification shared by the tenant's users (user_id NULL): the
-- per-user key and list indexes only need the rows that name a user, and inbound messages have
-- no outbox entry. Partial indexes spare every inbound message three index writes, one of
-- them at a random place. SQLite cannot drop a table's UNIQUE constraint in place: the
-- notifications are rebuilt with their ids, and their reads with them (dropping the old table
-- with its reads still pointing at it would cascade).
CREATE TABLE notifications_new (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id),
    user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    actor TEXT NOT NULL,
    preview TEXT NOT NULL,
    link TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    read_at INTEGER
);
INSERT INTO notifications_new (id, tenant_id, user_id, kind, dedupe_key, actor, preview, link, created_at, read_at)
    SELECT id, tenant_id, user_id, kind, dedupe_key, actor, preview, link, created_at, read_at FROM notifications;
CREATE TABLE notification_reads_new (
    notification_id INTEGER NOT NULL REFERENCES notifications_new (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    read_at INTEGER NOT NULL,
    PRIMARY KEY (notification_id, user_id)
);
INSERT INTO notification_reads_new (notification_id, user_id, read_at) SELECT notification_id, user_id, read_at FROM notification_reads;
DROP TABLE notification_reads;
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;
ALTER TABLE notification_reads_new RENAME TO notification_reads;
CREATE UNIQUE INDEX notifications_user_key ON notifications (user_id, dedupe_key) WHERE user_id IS NOT NULL;
CREATE INDEX notifications_user ON notifications (user_id, id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX notifications_tenant_key ON notifications (tenant_id, dedupe_key) WHERE user_id IS NULL;
CREATE INDEX notifications_tenant ON notifications (tenant_id, id) WHERE user_id IS NULL;

DROP INDEX messages_outbox;
CREATE INDEX messages_outbox ON messages (outbox_id) WHERE outbox_id IS NOT NULL;
