// Package ledgertree keeps a Merkle tree over each log of the audit
// ledger, as Certificate Transparency (RFC 6962) and the Go checksum
// database do: every entry is a leaf (see AppendLeaf), node hashes are
// kept in the audit store beside the entries (sinks.TreeStore), and the
// package answers inclusion and consistency proofs from them and signs
// checkpoints (C2SP tlog-checkpoint signed notes).
//
// Leaves come in two encodings (see AppendLeaf): auditbus-leaf-v1 for
// entries without a signature result, as every entry was before the
// daemon checked signatures, and auditbus-leaf-v2, which appends the
// entry's Signature, for the others. Which one a leaf uses follows from
// the entry, so old leaves keep their hashes and one log mixes both.
//
// The store keeps bytes; this package computes. Hashing, compact ranges
// and proofs are github.com/transparency-dev/merkle's, so any RFC 6962
// verifier checks what it serves.
//
// What is stored: the hashes of the nodes at levels 0, 8, 16, ... (every
// Stride-th level), in runs appended as the tree grows. A node at any other
// level is computed from the at most 2^(Stride-1) stored hashes below it.
// So a leaf costs 32 bytes of store and about one extra SHA-256, and
// restarting reads a few dozen hashes, never the whole log.
package ledgertree
