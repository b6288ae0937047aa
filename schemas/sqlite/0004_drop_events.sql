-- The events table of the store before the ledger: its rows were turned
-- into versions and entries by migration 0003.
DROP TABLE events;
