-- Meta's message ids are scattered (base64 of the customer's number and a random part): one
-- index by them put every inbound message at a random page, which the commit then writes.
-- Inbound messages are keyed by Meta's time first (a redelivery has the same time and id), so
-- a new one lands beside the last ones; our sends keep the index by id (statuses find them
-- by it). A customer's message is found by its id alone only within its conversation.
ALTER TABLE messages DROP CONSTRAINT messages_tenant_id_wamid_key;
CREATE UNIQUE INDEX messages_out_wamid ON messages (tenant_id, wamid) WHERE direction = 'out';
CREATE UNIQUE INDEX messages_in_key ON messages (tenant_id, meta_at, wamid) WHERE direction = 'in';
