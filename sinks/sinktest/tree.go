package sinktest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/ledgertree"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// treeStore is the case's store as a sinks.TreeStore, or a skip.
func (e *env) treeStore(t *testing.T) interface {
	sinks.Store
	sinks.TreeStore
} {
	t.Helper()
	ts, ok := e.s.(interface {
		sinks.Store
		sinks.TreeStore
	})
	if !ok {
		t.Skip("store does not keep Merkle trees (sinks.TreeStore)")
	}
	return ts
}

// hashes is n distinct 32-byte hashes starting from seed.
func hashes(seed byte, n int) []byte {
	b := make([]byte, 0, n*sinks.HashSize)
	for i := range n {
		h := bytes.Repeat([]byte{seed + byte(i)}, sinks.HashSize)
		b = append(b, h...)
	}
	return b
}

// testTreeHashes: runs of hashes and checkpoints come back as stored,
// across runs, per log, and after a reopen; what is not stored is
// ErrTreeIncomplete, a log without checkpoints ErrNoCheckpoint.
func testTreeHashes(t *testing.T, e *env) {
	ts := e.treeStore(t)
	lv0 := hashes(1, 10)
	runs := []sinks.HashRun{{Level: 0, Start: 0, Hashes: lv0[:3*32]}, {Level: 8, Start: 0, Hashes: hashes(100, 1)}}
	if err := ts.AppendTree(e.ctx, "tree-a", runs); err != nil {
		t.Fatal(err)
	}
	if err := ts.AppendTree(e.ctx, "tree-a", []sinks.HashRun{{Level: 0, Start: 3, Hashes: lv0[3*32:]}}); err != nil {
		t.Fatal(err)
	}
	if err := ts.AppendTree(e.ctx, "tree-b", []sinks.HashRun{{Level: 0, Start: 0, Hashes: hashes(200, 2)}}); err != nil {
		t.Fatal(err)
	}
	cp := func(size uint64, at time.Duration, note string) sinks.StoredCheckpoint {
		return sinks.StoredCheckpoint{Size: size, Time: base.Add(at), Note: []byte(note)}
	}
	if _, err := ts.LatestCheckpoint(e.ctx, "tree-a"); !errors.Is(err, sinks.ErrNoCheckpoint) {
		t.Fatalf("LatestCheckpoint before any: %v, want ErrNoCheckpoint", err)
	}
	for _, c := range []sinks.StoredCheckpoint{cp(5, 0, "five"), cp(10, time.Second, "ten"), cp(10, 2*time.Second, "ten again\n\x00"), cp(3, 3*time.Second, "three")} {
		if err := ts.AppendCheckpoint(e.ctx, "tree-a", c); err != nil {
			t.Fatal(err)
		}
	}
	check := func(ts sinks.TreeStore) {
		t.Helper()
		got, err := ts.TreeHashes(e.ctx, "tree-a", 0, 2, 7)
		if err != nil || !bytes.Equal(got, lv0[2*32:7*32]) {
			t.Errorf("TreeHashes(level 0, 2..7): %x, %v; want %x", got, err, lv0[2*32:7*32])
		}
		if got, err := ts.TreeHashes(e.ctx, "tree-a", 8, 0, 1); err != nil || !bytes.Equal(got, hashes(100, 1)) {
			t.Errorf("TreeHashes(level 8, 0..1): %x, %v", got, err)
		}
		if n, err := ts.TreeEnd(e.ctx, "tree-a", 8); err != nil || n != 1 {
			t.Errorf("TreeEnd(level 8) = %d, %v; want 1", n, err)
		}
		if _, err := ts.TreeHashes(e.ctx, "tree-a", 0, 8, 11); !errors.Is(err, sinks.ErrTreeIncomplete) {
			t.Errorf("TreeHashes beyond the tree: %v, want ErrTreeIncomplete", err)
		}
		for log, want := range map[string]uint64{"tree-a": 10, "tree-b": 2, "tree-none": 0} {
			if n, err := ts.TreeEnd(e.ctx, log, 0); err != nil || n != want {
				t.Errorf("TreeEnd(%q, 0) = %d, %v; want %d", log, n, err, want)
			}
		}
		c, err := ts.LatestCheckpoint(e.ctx, "tree-a")
		if err != nil || c.Size != 10 || string(c.Note) != "ten again\n\x00" || !c.Time.Equal(base.Add(2*time.Second)) {
			t.Errorf("LatestCheckpoint = %d %s %q, %v; want the later one of size 10", c.Size, c.Time, c.Note, err)
		}
	}
	check(ts)
	if e.f.Reopen != nil {
		e.s = e.f.Reopen(t, e.s)
		check(e.treeStore(t))
	}
}

// testTreeBuild: a Builder extends the log's tree as entries are appended,
// resumes it after a restart from the stored hashes, and the proofs it
// answers check with transparency-dev/merkle's verifiers against the root
// recomputed from the entries.
func testTreeBuild(t *testing.T, e *env) {
	ts := e.treeStore(t)
	e.append(t, many("urn:tree", 300, "t"))
	start := func() *ledgertree.Builder {
		t.Helper()
		b, err := ledgertree.StartBuilder(e.ctx, ledgertree.BuilderOptions{Store: e.treeStore(t), Log: e.log, Batch: 97, Poll: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := start()
	if err := b.Close(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.checkTree(t, ts)
	if e.f.Reopen != nil {
		e.s = e.f.Reopen(t, e.s)
	}
	e.append(t, many("urn:tree2", 40, "t"))
	b = start()
	if err := b.Close(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.checkTree(t, e.treeStore(t))
}

// checkTree recomputes the log's tree from its entries and checks the
// stored tree, the latest checkpoint and proofs against it.
func (e *env) checkTree(t *testing.T, ts sinks.TreeStore) {
	t.Helper()
	ens := e.entries(t, e.s, e.log, 1000)
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	roots := make([][]byte, len(ens)+1)
	leaves := make([][]byte, len(ens))
	for i := range ens {
		leaves[i] = ledgertree.LeafHash(&ens[i])
		if err := r.Append(leaves[i], nil); err != nil {
			t.Fatal(err)
		}
		roots[i+1], _ = r.GetRootHash(nil)
	}
	size := uint64(len(ens))
	if n, err := ts.TreeEnd(e.ctx, e.log, 0); err != nil || n != size {
		t.Fatalf("TreeEnd(0) = %d, %v; want %d", n, err, size)
	}
	c, err := ts.LatestCheckpoint(e.ctx, e.log)
	if err != nil {
		t.Fatal(err)
	}
	body, err := ledgertree.ParseBody(c.Note)
	if err != nil || body.Size != size || body.Origin != e.log || !bytes.Equal(body.Hash, roots[size]) {
		t.Fatalf("latest checkpoint %q, %v; want size %d and the recomputed root", c.Note, err, size)
	}
	for _, i := range []uint64{0, 1, 7, 8, 255, 256, 257, size / 2, size - 1} {
		for _, at := range []uint64{i + 1, size} {
			p, err := ledgertree.InclusionProof(e.ctx, ts, e.log, i, at)
			if err == nil {
				err = proof.VerifyInclusion(rfc6962.DefaultHasher, i, at, leaves[i], p, roots[at])
			}
			if err != nil {
				t.Errorf("inclusion of %d in %d: %v", i, at, err)
			}
		}
	}
	for _, from := range []uint64{1, 2, 3, 100, 256, 299, size} {
		p, err := ledgertree.ConsistencyProof(e.ctx, ts, e.log, from, size)
		if err == nil {
			err = proof.VerifyConsistency(rfc6962.DefaultHasher, from, size, p, roots[from], roots[size])
		}
		if err != nil {
			t.Errorf("consistency %d to %d: %v", from, size, err)
		}
	}
	if _, err := ledgertree.InclusionProof(e.ctx, ts, e.log, 0, size+1); !errors.Is(err, ledgertree.ErrBeyondTree) {
		t.Errorf("a proof beyond the tree: %v, want ErrBeyondTree", err)
	}
}
