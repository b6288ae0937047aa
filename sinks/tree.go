package sinks

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// HashSize is the size of one node hash of a log's Merkle tree (SHA-256).
const HashSize = 32

// ErrTreeIncomplete: TreeHashes was asked for node hashes that are not
// stored (beyond the tree, or lost).
var ErrTreeIncomplete = errors.New("sinks: tree hashes not stored")

// ErrNoCheckpoint: the store holds no checkpoint of that log.
var ErrNoCheckpoint = errors.New("sinks: no checkpoint of the log")

// HashRun is a run of node hashes of one level of a log's Merkle tree:
// the nodes Start, Start+1, ... of Level, HashSize bytes each. Package
// sinks/ledgertree says which levels it stores and computes the hashes;
// a store keeps the bytes.
type HashRun struct {
	Level  uint8
	Start  uint64
	Hashes []byte
}

// End is the index after the run's last node.
func (r HashRun) End() uint64 { return r.Start + uint64(len(r.Hashes)/HashSize) }

// StoredCheckpoint is one checkpoint of a log as a store keeps it: the
// tree size it commits to, when it was made, and the note (a C2SP
// tlog-checkpoint, signed or not) byte for byte.
type StoredCheckpoint struct {
	Size uint64
	Time time.Time
	Note []byte
}

// TreeStore is a Store that keeps, beside the entries, what a Merkle tree
// over each log needs: node hashes and checkpoints. Both are appended and
// never changed, like the entries. Both stores of this module implement it.
type TreeStore interface {
	// AppendTree stores runs of log's tree in one write: either every
	// run is stored or none is. A run starts where its level ends
	// (TreeEnd), so runs never overlap; a store that can check it in the
	// same transaction refuses a run that does not.
	AppendTree(ctx context.Context, log string, runs []HashRun) error
	// TreeHashes returns the hashes of the nodes from, from+1, ... to-1
	// of level in log's tree, HashSize bytes each, or an error wrapping
	// ErrTreeIncomplete when any of them is not stored.
	TreeHashes(ctx context.Context, log string, level uint8, from, to uint64) ([]byte, error)
	// TreeEnd is the number of hashes of level stored for log: the end
	// of its last run of that level, 0 for none. Level 0's is the number
	// of leaves.
	TreeEnd(ctx context.Context, log string, level uint8) (uint64, error)
	// AppendCheckpoint stores one checkpoint of log.
	AppendCheckpoint(ctx context.Context, log string, c StoredCheckpoint) error
	// LatestCheckpoint is log's checkpoint of the largest size, the
	// latest made among those; an error wrapping ErrNoCheckpoint when
	// there is none.
	LatestCheckpoint(ctx context.Context, log string) (StoredCheckpoint, error)
}

// CutRuns returns the hashes of nodes from..to-1 out of runs of one level
// read from a store, ordered by end, as TreeHashes answers them: an error
// wrapping ErrTreeIncomplete when the runs leave any of them out. A run
// read twice (a store that keeps repeats until it merges them) counts once.
func CutRuns(runs []HashRun, log string, level uint8, from, to uint64) ([]byte, error) {
	out := make([]byte, 0, (to-from)*HashSize)
	at := from
	for _, r := range runs {
		if at >= to {
			break
		}
		if len(r.Hashes)%HashSize != 0 || r.Start > at || r.End() <= at {
			continue
		}
		lo, hi := (at-r.Start)*HashSize, (min(to, r.End())-r.Start)*HashSize
		out = append(out, r.Hashes[lo:hi]...)
		at = min(to, r.End())
	}
	if at < to {
		return nil, fmt.Errorf("log %q: level %d: node %d: %w", log, level, at, ErrTreeIncomplete)
	}
	return out, nil
}
