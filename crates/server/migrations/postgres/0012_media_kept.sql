-- Customer media are kept as they arrive (Meta's media ids from webhooks expire after 7 days):
-- a row per inbound file, `pending` until a fetcher has it, then `stored` (bytes here, or a
-- file under the media directory named by `path`), or `failed` when Meta no longer has it.
ALTER TABLE media ADD COLUMN state TEXT NOT NULL DEFAULT 'stored';
ALTER TABLE media ADD COLUMN message_id BIGINT;
ALTER TABLE media ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE media ADD COLUMN next_attempt_at BIGINT;
ALTER TABLE media ADD COLUMN error_code BIGINT;
ALTER TABLE media ADD COLUMN path TEXT;
-- The direct download URL a newer webhook carries (valid minutes; tried first, once).
ALTER TABLE media ADD COLUMN url TEXT;
CREATE INDEX media_due ON media (next_attempt_at) WHERE state = 'pending';
CREATE INDEX media_message ON media (message_id) WHERE message_id IS NOT NULL;
