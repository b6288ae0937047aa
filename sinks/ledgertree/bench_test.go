package ledgertree_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/ledgertree"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/cloudevents/sdk-go/v2/event"
)

// benchLeaves is how many leaves a round of BenchmarkTreeVsSHA256 appends.
const benchLeaves = 200_000

// benchEntry is an entry as the router records a delivery.
func benchEntry(seq uint64) sinks.Entry {
	return sinks.Entry{Log: "auditbus-0", Seq: seq, Time: time.Unix(1767225600, int64(seq)), Kind: sinks.KindDelivered,
		Source: "/bench/router", ID: fmt.Sprintf("bench-%08d", seq/4), Digest: sha256.Sum256([]byte(fmt.Sprint(seq / 4))),
		Transport: "mem", Topic: "in", Partition: int(seq % 8), Offset: int64(seq), Principal: "mem:in",
		Route: "bench", Destination: "mem:d1", Attempts: 1}
}

// BenchmarkTreeVsSHA256 appends leaves to a log's tree and stores its
// hashes in a fresh SQLite store (in batches of 5,000, as the builder
// does), against raw SHA-256 of the same leaf bytes, in alternating
// rounds; then asks inclusion proofs of random leaves from the store.
// It reports leaves/s of both, their ratio (median of the rounds') and
// proofs/s.
func BenchmarkTreeVsSHA256(b *testing.B) {
	leaves := make([][]byte, benchLeaves)
	for i := range leaves {
		en := benchEntry(uint64(i + 1))
		// The tree hashes the leaf after RFC 6962's prefix byte; the
		// builder encodes it there in the first place.
		leaves[i] = ledgertree.AppendLeaf([]byte{0}, &en)
	}
	ctx := context.Background()
	var raws, trees, ratios []float64
	var last *sqlite.Store
	for range b.N {
		s, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{Log: "auditbus-0"})
		if err != nil {
			b.Fatal(err)
		}
		// Chunk by chunk, raw then tree, so that both see the same load.
		var rawTook, treeTook time.Duration
		var sink byte
		t := ledgertree.NewTree()
		for lo := 0; lo < len(leaves); lo += 5000 {
			chunk := leaves[lo:min(lo+5000, len(leaves))]
			start := time.Now()
			for _, l := range chunk {
				h := sha256.Sum256(l[1:])
				sink ^= h[0]
			}
			rawTook += time.Since(start)
			start = time.Now()
			for _, l := range chunk {
				if err := t.AppendLeafData(l); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.AppendTree(ctx, "auditbus-0", t.Take()); err != nil {
				b.Fatal(err)
			}
			treeTook += time.Since(start)
		}
		_ = sink
		raw, tree := float64(len(leaves))/rawTook.Seconds(), float64(len(leaves))/treeTook.Seconds()
		raws, trees, ratios = append(raws, raw), append(trees, tree), append(ratios, tree/raw)
		if last != nil {
			_ = last.Close()
		}
		last = s
	}
	defer last.Close()
	const proofs = 5000
	start := time.Now()
	for range proofs {
		if _, err := ledgertree.InclusionProof(ctx, last, "auditbus-0", rand.Uint64N(benchLeaves), benchLeaves); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(median(raws), "sha256-leaves/s")
	b.ReportMetric(median(trees), "tree-leaves/s")
	b.ReportMetric(slices.Min(ratios), "ratio-min")
	b.ReportMetric(slices.Max(ratios), "ratio-max")
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(proofs/time.Since(start).Seconds(), "proofs/s")
}

// BenchmarkBuilder: how many entries a second the daemon's builder reads
// back from SQLite, hashes and stores the tree of.
func BenchmarkBuilder(b *testing.B) {
	ctx := context.Background()
	const n = 100_000
	s, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{Log: "auditbus-0"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	recs := make([]sinks.Record, 0, 1000)
	for i := range n / 4 {
		e := event.New()
		e.SetID(fmt.Sprintf("bench-%08d", i))
		e.SetSource("/bench/router")
		e.SetType("t")
		en := benchEntry(uint64(i))
		recs = append(recs, sinks.Record{Event: e, Entries: []sinks.Entry{
			{Kind: sinks.KindReceived, Transport: "mem", Topic: "in", Partition: i % 8, Offset: int64(i), Principal: "mem:in", Route: "bench"},
			{Kind: en.Kind, Route: "bench", Destination: "mem:d1", Attempts: 1},
			{Kind: en.Kind, Route: "bench", Destination: "mem:d2", Attempts: 1},
			{Kind: en.Kind, Route: "bench", Destination: "mem:d3", Attempts: 1},
		}})
		if len(recs) == cap(recs) {
			if _, err := s.Append(ctx, recs); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	var rates []float64
	for i := range b.N {
		// Each round builds the tree of a log of its own over the same
		// entries: the store's log is read, the hashes stored apart.
		start := time.Now()
		bd, err := ledgertree.StartBuilder(ctx, ledgertree.BuilderOptions{Store: renamed{s, fmt.Sprint("round-", i)}, Log: "auditbus-0"})
		if err != nil {
			b.Fatal(err)
		}
		rates = append(rates, float64(bd.Size())/time.Since(start).Seconds())
		_ = bd.Close(ctx)
	}
	b.ReportMetric(median(rates), "entries/s")
}

// renamed keeps the tree of the store's log under another name, so that
// every round starts a fresh tree over the same entries.
type renamed struct {
	*sqlite.Store
	as string
}

func (r renamed) AppendTree(ctx context.Context, _ string, runs []sinks.HashRun) error {
	return r.Store.AppendTree(ctx, r.as, runs)
}

func (r renamed) TreeHashes(ctx context.Context, _ string, level uint8, from, to uint64) ([]byte, error) {
	return r.Store.TreeHashes(ctx, r.as, level, from, to)
}

func (r renamed) TreeEnd(ctx context.Context, _ string, level uint8) (uint64, error) {
	return r.Store.TreeEnd(ctx, r.as, level)
}

func (r renamed) AppendCheckpoint(ctx context.Context, _ string, c sinks.StoredCheckpoint) error {
	return r.Store.AppendCheckpoint(ctx, r.as, c)
}

func (r renamed) LatestCheckpoint(ctx context.Context, _ string) (sinks.StoredCheckpoint, error) {
	return r.Store.LatestCheckpoint(ctx, r.as)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
