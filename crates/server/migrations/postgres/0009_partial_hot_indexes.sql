-- A customer's message is one notification shared by the tenant's users (user_id NULL): the
-- per-user key and list indexes only need the rows that name a user, and inbound messages have
-- no outbox entry. Partial indexes spare every inbound message three index writes, one of
-- them at a random place.
ALTER TABLE notifications DROP CONSTRAINT notifications_user_id_dedupe_key_key;
CREATE UNIQUE INDEX notifications_user_key ON notifications (user_id, dedupe_key) WHERE user_id IS NOT NULL;
DROP INDEX notifications_user;
CREATE INDEX notifications_user ON notifications (user_id, id) WHERE user_id IS NOT NULL;

DROP INDEX messages_outbox;
CREATE INDEX messages_outbox ON messages (outbox_id) WHERE outbox_id IS NOT NULL;
