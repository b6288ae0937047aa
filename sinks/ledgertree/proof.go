package ledgertree

import (
	"context"
	"errors"
	"fmt"

	"github.com/auditbus/auditbus/sinks"
	"github.com/transparency-dev/merkle/proof"
)

// ErrBeyondTree: a proof was asked for a size larger than the stored tree.
var ErrBeyondTree = errors.New("ledgertree: size beyond the tree")

// InclusionProof is the RFC 6962 inclusion proof of the leaf at index
// (an entry's seq minus 1) in log's tree of the given size, computed from
// the hashes ts stores. Check it with proof.VerifyInclusion.
func InclusionProof(ctx context.Context, ts sinks.TreeStore, log string, index, size uint64) ([][]byte, error) {
	if err := within(ctx, ts, log, size); err != nil {
		return nil, err
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	return fetch(ctx, ts, log, size, nodes)
}

// ConsistencyProof is the RFC 6962 consistency proof from log's tree of
// size1 to the one of size2. Check it with proof.VerifyConsistency.
func ConsistencyProof(ctx context.Context, ts sinks.TreeStore, log string, size1, size2 uint64) ([][]byte, error) {
	if err := within(ctx, ts, log, size2); err != nil {
		return nil, err
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	return fetch(ctx, ts, log, size2, nodes)
}

// RootAt is the root hash of log's tree when it had size leaves.
func RootAt(ctx context.Context, ts sinks.TreeStore, log string, size uint64) ([]byte, error) {
	if err := within(ctx, ts, log, size); err != nil {
		return nil, err
	}
	if size == 0 {
		return hasher.EmptyRoot(), nil
	}
	rng, err := rangeAt(ctx, ts, log, size)
	if err != nil {
		return nil, err
	}
	return rng.GetRootHash(nil)
}

func within(ctx context.Context, ts sinks.TreeStore, log string, size uint64) error {
	have, err := ts.TreeEnd(ctx, log, 0)
	if err != nil {
		return err
	}
	if size > have {
		return fmt.Errorf("%w: log %q has a tree of %d leaves, not %d", ErrBeyondTree, log, have, size)
	}
	return nil
}

func fetch(ctx context.Context, ts sinks.TreeStore, log string, size uint64, nodes proof.Nodes) ([][]byte, error) {
	nr := newNodeReader(ts, log, size)
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		var err error
		if hashes[i], err = nr.hash(ctx, id); err != nil {
			return nil, err
		}
	}
	return nodes.Rehash(hashes, hashChildren)
}
