-- Live events move to their own file (<db>-live.db, created by the server; what was here is
-- moved there before this runs), written by a writer of its own after the commit each event
-- belongs to, so that a toast does not wait for the processor's transaction.
DROP TABLE live_events;
