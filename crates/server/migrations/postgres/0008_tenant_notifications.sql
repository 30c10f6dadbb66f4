-- A customer's message is one notification for every user of the tenant (user_id NULL), read
-- per user: individually in notification_reads, all at once by a per-user watermark. Other
-- notifications still name their user (read_at).
ALTER TABLE notifications ALTER COLUMN user_id DROP NOT NULL;
CREATE UNIQUE INDEX notifications_tenant_key ON notifications (tenant_id, dedupe_key) WHERE user_id IS NULL;
CREATE INDEX notifications_tenant ON notifications (tenant_id, id) WHERE user_id IS NULL;

CREATE TABLE notification_reads (
    notification_id BIGINT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    read_at BIGINT NOT NULL,
    PRIMARY KEY (notification_id, user_id)
);

ALTER TABLE users ADD COLUMN notifications_read_through BIGINT NOT NULL DEFAULT 0;
