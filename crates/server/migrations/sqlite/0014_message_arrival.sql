-- Which webhook body brought an inbound message (its journal entry): what came later within
-- one second of Meta's time (two reactions to one message) is told by it, not by the row's
-- id, which several processors (PostgreSQL) assign in the order they apply, not arrival order.
ALTER TABLE messages ADD COLUMN arrival INTEGER;
-- The same for a conversation's last message, whose text the list shows.
ALTER TABLE conversations ADD COLUMN last_arrival INTEGER;
