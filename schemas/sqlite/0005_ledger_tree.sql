-- Each log's Merkle tree (sinks/ledgertree): runs of node hashes of the
-- levels it stores (0, 8, 16, ...), appended as the tree grows and never
-- changed. A run holds the nodes start .. end-1 of its level, 32 bytes
-- each; runs of one level do not overlap, so end names a run.
CREATE TABLE tree_hashes (
    log    TEXT    NOT NULL,
    level  INTEGER NOT NULL,
    start  INTEGER NOT NULL,
    "end"  INTEGER NOT NULL,
    hashes BLOB    NOT NULL,
    UNIQUE (log, level, "end")
);

-- Each log's checkpoints as made: the size they commit to, when, and the
-- note (signed, or unsigned without a key) byte for byte.
CREATE TABLE tree_checkpoints (
    log     TEXT    NOT NULL,
    size    INTEGER NOT NULL,
    time_ns INTEGER NOT NULL,
    note    BLOB    NOT NULL
);
CREATE INDEX tree_checkpoints_latest ON tree_checkpoints (log, size, time_ns);
