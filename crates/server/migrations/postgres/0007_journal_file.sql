-- Nothing to do on PostgreSQL: the journal stays in the one database (SQLite's migration 0007
-- moves it to its own file).
SELECT 1;
