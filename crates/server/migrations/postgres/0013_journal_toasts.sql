-- PostgreSQL's toaster publishes the toasts of what its instance has just journaled before the
-- processors apply it: 0 = the processor that applies the entry publishes its events after its
-- commit; 1 = handed to the toaster (processors leave the entry alone for a few seconds); 2 =
-- published by the toaster (the processor stores the rows without publishing them again).
ALTER TABLE webhook_journal ADD COLUMN toast_state SMALLINT NOT NULL DEFAULT 0;
