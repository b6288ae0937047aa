-- Each log's Merkle tree (sinks/ledgertree): runs of node hashes of the
-- levels it stores (0, 8, 16, ...), appended as the tree grows and never
-- changed. A run holds the nodes start .. end-1 of its level, 32 bytes
-- each; runs of one level do not overlap, so (log, level, end) names a
-- run, and a run written twice (a retried insert) merges into one. Not
-- partitioned: retention keeps the tree, 32 bytes a leaf.
CREATE TABLE IF NOT EXISTS {{.TreeHashes}}{{.OnCluster}} (
    log         String,
    level       UInt8,
    start       UInt64,
    `end`       UInt64,
    hashes      String
) ENGINE = {{.Replacing "tree_hashes" ""}}
ORDER BY (log, level, `end`)
;
-- Each log's checkpoints as made: the size they commit to, when, and the
-- note (signed, or unsigned without a key) byte for byte.
CREATE TABLE IF NOT EXISTS {{.TreeCheckpoints}}{{.OnCluster}} (
    log         String,
    size        UInt64,
    time_ns     Int64,
    note        String
) ENGINE = {{.Plain "tree_checkpoints"}}
ORDER BY (log, size, time_ns)
