package ledgertree

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/auditbus/auditbus/sinks"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Stride is how many levels lie between two stored levels: the hashes of
// levels 0, Stride, 2×Stride, ... are stored.
const Stride = 8

var (
	hasher  = rfc6962.DefaultHasher
	factory = &compact.RangeFactory{Hash: hashChildren}
)

// Tree is one log's tree as it grows: the compact range of its leaves and
// the stored levels' hashes not yet taken for the store. It is not safe
// for concurrent use.
type Tree struct {
	rf    *compact.RangeFactory
	rng   *compact.Range
	runs  []sinks.HashRun // by level/Stride; empty runs are not taken
	arena []byte          // where new hashes are made, a chunk at a time
}

// NewTree returns an empty tree.
func NewTree() *Tree {
	t := &Tree{}
	t.rf = &compact.RangeFactory{Hash: t.hashChildren}
	t.rng = t.rf.NewEmptyRange(0)
	return t
}

// arenaChunk is how many bytes of hashes a Tree allocates at once.
const arenaChunk = 64 << 10

// alloc returns 32 bytes of the arena; chunks are never reused, so a hash
// lives as long as something refers to it.
func (t *Tree) alloc() []byte {
	if len(t.arena)+sinks.HashSize > cap(t.arena) {
		t.arena = make([]byte, 0, arenaChunk)
	}
	n := len(t.arena)
	t.arena = t.arena[:n+sinks.HashSize]
	return t.arena[n : n+sinks.HashSize : n+sinks.HashSize]
}

// hashChildren is RFC 6962's node hash into the arena.
func (t *Tree) hashChildren(left, right []byte) []byte {
	var b [1 + 2*sinks.HashSize]byte
	b[0] = rfc6962.RFC6962NodeHashPrefix
	copy(b[1:], left)
	copy(b[1+sinks.HashSize:], right)
	h := sha256.Sum256(b[:])
	out := t.alloc()
	copy(out, h[:])
	return out
}

// AppendLeafData adds a leaf given as its bytes with RFC 6962's leaf
// prefix byte (0x00) in front, as AppendLeaf(prefix, entry) encodes it.
func (t *Tree) AppendLeafData(prefixed []byte) error {
	h := sha256.Sum256(prefixed)
	out := t.alloc()
	copy(out, h[:])
	return t.rng.Append(out, t.visit)
}

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

// TileWidth is the most hashes one run that Take returns holds: runs are
// cut where a node index is a multiple of it, so that a proof reads a few
// small runs, never a long one.
const TileWidth = 1 << Stride

// Take returns the hashes of stored levels appended since the last Take,
// for sinks.TreeStore.AppendTree, in runs of at most TileWidth hashes that
// do not cross a multiple of TileWidth, and forgets them.
func (t *Tree) Take() []sinks.HashRun {
	out := cutRuns(t.runs)
	for i := range t.runs {
		// The next Take's runs are about as long: make room for them at
		// once rather than growing them a leaf at a time.
		t.runs[i].Hashes = make([]byte, 0, cap(t.runs[i].Hashes))
	}
	return out
}

// cutRuns cuts runs where a node index is a multiple of TileWidth and
// leaves out empty ones.
func cutRuns(runs []sinks.HashRun) []sinks.HashRun {
	var out []sinks.HashRun
	for _, r := range runs {
		for len(r.Hashes) > 0 {
			n := min(uint64(len(r.Hashes)/sinks.HashSize), TileWidth-r.Start%TileWidth)
			out = append(out, sinks.HashRun{Level: r.Level, Start: r.Start, Hashes: r.Hashes[:n*sinks.HashSize]})
			r.Start += n
			r.Hashes = r.Hashes[n*sinks.HashSize:]
		}
	}
	return out
}

// Resume rebuilds log's tree from the hashes ts stores: the few nodes of
// its compact range, never the leaves.
func Resume(ctx context.Context, ts sinks.TreeStore, log string) (*Tree, error) {
	size, err := ts.TreeEnd(ctx, log, 0)
	if err != nil {
		return nil, err
	}
	rng, err := rangeAt(ctx, ts, log, size)
	if err != nil {
		return nil, err
	}
	t := NewTree()
	if t.rng, err = t.rf.NewRange(0, size, rng.Hashes()); err != nil {
		return nil, err
	}
	return t, nil
}

// rangeAt is the compact range of log's first size leaves, from the
// stored hashes.
func rangeAt(ctx context.Context, ts sinks.TreeStore, log string, size uint64) (*compact.Range, error) {
	nr := newNodeReader(ts, log, size)
	ids := compact.RangeNodes(0, size, nil)
	hashes := make([][]byte, len(ids))
	for i, id := range ids {
		var err error
		if hashes[i], err = nr.hash(ctx, id); err != nil {
			return nil, err
		}
	}
	rng, err := factory.NewRange(0, size, hashes)
	if err != nil {
		return nil, fmt.Errorf("log %q: tree of size %d: %w", log, size, err)
	}
	return rng, nil
}

// NodeHash is the hash of node id of log's tree of size leaves, read from
// ts or computed from the stored level below it.
func NodeHash(ctx context.Context, ts sinks.TreeStore, log string, size uint64, id compact.NodeID) ([]byte, error) {
	return newNodeReader(ts, log, size).hash(ctx, id)
}

// nodeReader reads node hashes of one tree, a tile (TileWidth hashes of a
// stored level) at a time, and keeps the tiles it read.
type nodeReader struct {
	ts    sinks.TreeStore
	log   string
	size  uint64
	tiles map[[2]uint64][][]byte // by (stored level, tile index): the tile's hashes
}

func newNodeReader(ts sinks.TreeStore, log string, size uint64) *nodeReader {
	return &nodeReader{ts: ts, log: log, size: size, tiles: map[[2]uint64][][]byte{}}
}

func (nr *nodeReader) hash(ctx context.Context, id compact.NodeID) ([]byte, error) {
	base := id.Level - id.Level%Stride
	span := uint64(1) << (id.Level - base)
	from := id.Index * span
	k := [2]uint64{uint64(base), from / TileWidth}
	tile, ok := nr.tiles[k]
	if !ok {
		lo := k[1] * TileWidth
		hi := min(lo+TileWidth, nr.size>>base)
		if hi < from+span {
			return nil, fmt.Errorf("log %q: node %d at level %d is not in the tree of %d leaves: %w",
				nr.log, id.Index, id.Level, nr.size, sinks.ErrTreeIncomplete)
		}
		b, err := nr.ts.TreeHashes(ctx, nr.log, uint8(base), lo, hi)
		if err != nil {
			return nil, fmt.Errorf("log %q: node %d at level %d: %w", nr.log, id.Index, id.Level, err)
		}
		if len(b) != int(hi-lo)*sinks.HashSize {
			return nil, fmt.Errorf("log %q: node %d at level %d: got %d bytes of hashes, want %d: %w",
				nr.log, id.Index, id.Level, len(b), int(hi-lo)*sinks.HashSize, sinks.ErrTreeIncomplete)
		}
		tile = make([][]byte, hi-lo)
		for i := range tile {
			tile[i] = b[i*sinks.HashSize : (i+1)*sinks.HashSize]
		}
		nr.tiles[k] = tile
	}
	off := from - k[1]*TileWidth
	hs := slices.Clone(tile[off : off+span])
	for len(hs) > 1 {
		for i := 0; i < len(hs)/2; i++ {
			hs[i] = hashChildren(hs[2*i], hs[2*i+1])
		}
		hs = hs[:len(hs)/2]
	}
	return hs[0], nil
}
