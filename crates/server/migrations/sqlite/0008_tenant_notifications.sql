-- A customer's message is one notification for every user of the tenant (user_id NULL), read
-- per user: individually in notification_reads, all at once by a per-user watermark. Other
-- notifications still name their user (read_at). SQLite cannot drop NOT NULL in place: the
-- table is rebuilt with its ids.
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
    read_at INTEGER,
    UNIQUE (user_id, dedupe_key)
);
INSERT INTO notifications_new (id, tenant_id, user_id, kind, dedupe_key, actor, preview, link, created_at, read_at)
    SELECT id, tenant_id, user_id, kind, dedupe_key, actor, preview, link, created_at, read_at FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;
CREATE INDEX notifications_user ON notifications (user_id, id);
CREATE UNIQUE INDEX notifications_tenant_key ON notifications (tenant_id, dedupe_key) WHERE user_id IS NULL;
CREATE INDEX notifications_tenant ON notifications (tenant_id, id) WHERE user_id IS NULL;

CREATE TABLE notification_reads (
    notification_id INTEGER NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    read_at INTEGER NOT NULL,
    PRIMARY KEY (notification_id, user_id)
);

ALTER TABLE users ADD COLUMN notifications_read_through INTEGER NOT NULL DEFAULT 0;
