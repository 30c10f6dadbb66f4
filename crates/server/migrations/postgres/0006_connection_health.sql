-- Connection health of a tenant's WhatsApp Business Account (issue 6, item 7): why it stopped
-- working (owner disconnected, partner removed, token revoked or expired, account disabled),
-- and the business token's expiry as debug_token reports it, watched by the poller.
ALTER TABLE whatsapp_accounts ADD COLUMN health TEXT;
ALTER TABLE whatsapp_accounts ADD COLUMN health_at BIGINT;
ALTER TABLE whatsapp_accounts ADD COLUMN token_expires_at BIGINT;
ALTER TABLE whatsapp_accounts ADD COLUMN token_checked_at BIGINT;
ALTER TABLE whatsapp_accounts ADD COLUMN expiry_warned_at BIGINT;
CREATE INDEX whatsapp_accounts_expiry ON whatsapp_accounts (token_expires_at);
