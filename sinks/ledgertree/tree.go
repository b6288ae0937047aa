package ledgertree

import (
	"context"
	"fmt"

	"github.com/auditbus/auditbus/sinks"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Stride is how many levels lie between two stored levels: the hashes of
// levels 0, Stride, 2×Stride, ... are stored.
const Stride = 8

var (
	hasher  = rfc6962.DefaultHasher
	factory = &compact.RangeFactory{Hash: hasher.HashChildren}
)

// Tree is one log's tree as it grows: the compact range of its leaves and
// the stored levels' hashes not yet taken for the store. It is not safe
// for concurrent use.
type Tree struct {
	rng  *compact.Range
	runs []sinks.HashRun // by level/Stride; empty runs are not taken
}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{rng: factory.NewEmptyRange(0)} }

// Size is the number of leaves.
func (t *Tree) Size() uint64 { return t.rng.End() }

// Append adds a leaf hash (see LeafHash).
func (t *Tree) Append(leafHash []byte) error {
	return t.rng.Append(leafHash, t.visit)
}

func (t *Tree) visit(id compact.NodeID, hash []byte) {
	if id.Level%Stride != 0 {
		return
	}
	i := int(id.Level / Stride)
	for len(t.runs) <= i {
		t.runs = append(t.runs, sinks.HashRun{Level: uint8(len(t.runs) * Stride)})
	}
	r := &t.runs[i]
	if len(r.Hashes) == 0 {
		r.Start = id.Index
	}
	r.Hashes = append(r.Hashes, hash...)
}

// Root is the tree's root hash (RFC 6962's hash of the empty string for
// an empty tree).
func (t *Tree) Root() []byte {
	if t.rng.End() == 0 {
		return hasher.EmptyRoot()
	}
	root, _ := t.rng.GetRootHash(nil) // begins at 0, so it cannot fail
	return root
}

// Take returns the hashes of stored levels appended since the last Take,
// for sinks.TreeStore.AppendTree, and forgets them. Untake puts them back
// when the store failed.
func (t *Tree) Take() []sinks.HashRun {
	var out []sinks.HashRun
	for i := range t.runs {
		if len(t.runs[i].Hashes) > 0 {
			out = append(out, t.runs[i])
			t.runs[i].Hashes = nil
		}
	}
	return out
}

// Resume rebuilds log's tree from the hashes ts stores: the few nodes of
// its compact range, never the leaves.
func Resume(ctx context.Context, ts sinks.TreeStore, log string) (*Tree, error) {
	size, err := ts.TreeSize(ctx, log)
	if err != nil {
		return nil, err
	}
	rng, err := rangeAt(ctx, ts, log, size)
	if err != nil {
		return nil, err
	}
	return &Tree{rng: rng}, nil
}

// rangeAt is the compact range of log's first size leaves, from the
// stored hashes.
func rangeAt(ctx context.Context, ts sinks.TreeStore, log string, size uint64) (*compact.Range, error) {
	ids := compact.RangeNodes(0, size, nil)
	hashes := make([][]byte, len(ids))
	for i, id := range ids {
		var err error
		if hashes[i], err = NodeHash(ctx, ts, log, id); err != nil {
			return nil, err
		}
	}
	rng, err := factory.NewRange(0, size, hashes)
	if err != nil {
		return nil, fmt.Errorf("log %q: tree of size %d: %w", log, size, err)
	}
	return rng, nil
}

// NodeHash is the hash of node id of log's tree, read from ts or computed
// from the stored level below it.
func NodeHash(ctx context.Context, ts sinks.TreeStore, log string, id compact.NodeID) ([]byte, error) {
	base := id.Level - id.Level%Stride
	span := uint64(1) << (id.Level - base)
	from := id.Index * span
	b, err := ts.TreeHashes(ctx, log, uint8(base), from, from+span)
	if err != nil {
		return nil, fmt.Errorf("log %q: node %d at level %d: %w", log, id.Index, id.Level, err)
	}
	if len(b) != int(span)*sinks.HashSize {
		return nil, fmt.Errorf("log %q: node %d at level %d: got %d bytes of hashes, want %d: %w",
			log, id.Index, id.Level, len(b), int(span)*sinks.HashSize, sinks.ErrTreeIncomplete)
	}
	hs := make([][]byte, span)
	for i := range hs {
		hs[i] = b[i*sinks.HashSize : (i+1)*sinks.HashSize]
	}
	for len(hs) > 1 {
		for i := 0; i < len(hs)/2; i++ {
			hs[i] = hasher.HashChildren(hs[2*i], hs[2*i+1])
		}
		hs = hs[:len(hs)/2]
	}
	return hs[0], nil
}
