-- What checking each received or refused entry's signature against the
-- signer registry found (sinks.Entry.Signature: "verified: KEYID",
-- "unsigned", "invalid: REASON"); '' for entries written before, and where
-- nothing was checked. It is part of the entry's ledger leaf.
-- SIGNATURECOLUMN is not SQL but the daemon's step (sinks/clickhouse,
-- migrate_trace.go): it adds
--   signature String DEFAULT ''
-- to the trails and then the entries table, each only where missing, so
-- that the migration can run again after being cut short (18.16 has no
-- ADD COLUMN IF NOT EXISTS).
SIGNATURECOLUMN
;
