-- What checking each received or refused entry's signature against the
-- signer registry found (sinks.Entry.Signature: "verified: KEYID",
-- "unsigned", "invalid: REASON"); '' for entries written before, and where
-- nothing was checked. It is part of the entry's ledger leaf.
ALTER TABLE entries ADD COLUMN signature TEXT NOT NULL DEFAULT '';
