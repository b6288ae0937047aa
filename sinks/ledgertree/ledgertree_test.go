package ledgertree_test

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/ledgertree"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/cloudevents/sdk-go/v2/event"
)

// The leaf encoding is a format verifiers outside auditbus rely on: it
// changes only with a new LeafVersion.
func TestLeafEncodingIsStable(t *testing.T) {
	en := sinks.Entry{Log: "l", Seq: 7, Time: time.Unix(0, 1767225600123456789), Kind: sinks.KindDelivered,
		Source: "s", ID: "i", Digest: sinks.Digest{1, 2}, Transport: "kafka", Topic: "t", Partition: -1, Offset: 300,
		Request: "r", Principal: "p", Route: "ro", Destination: "d", Attempts: 2, Error: "e", Replay: "re"}
	got := hex.EncodeToString(ledgertree.LeafHash(&en))
	const want = "9572c2f43d0c52524435a1ed77b649d77fba5893927999797ca9d1c01d80add3" // computed by hand from the documented encoding
	if got != want {
		t.Errorf("leaf hash %s, want %s", got, want)
	}
	// Every field counts.
	seen := map[string]bool{got: true}
	for name, change := range map[string]func(*sinks.Entry){
		"log": func(e *sinks.Entry) { e.Log = "m" }, "seq": func(e *sinks.Entry) { e.Seq++ },
		"time": func(e *sinks.Entry) { e.Time = e.Time.Add(1) }, "kind": func(e *sinks.Entry) { e.Kind = sinks.KindReplayed },
		"source": func(e *sinks.Entry) { e.Source = "t" }, "id": func(e *sinks.Entry) { e.ID = "j" },
		"digest": func(e *sinks.Entry) { e.Digest[31] = 1 }, "transport": func(e *sinks.Entry) { e.Transport = "amqp" },
		"topic": func(e *sinks.Entry) { e.Topic = "u" }, "partition": func(e *sinks.Entry) { e.Partition = 1 },
		"offset": func(e *sinks.Entry) { e.Offset = 301 }, "request": func(e *sinks.Entry) { e.Request = "q" },
		"principal": func(e *sinks.Entry) { e.Principal = "q" }, "route": func(e *sinks.Entry) { e.Route = "q" },
		"destination": func(e *sinks.Entry) { e.Destination = "q" }, "attempts": func(e *sinks.Entry) { e.Attempts = 3 },
		"error": func(e *sinks.Entry) { e.Error = "q" }, "replay": func(e *sinks.Entry) { e.Replay = "q" },
		"signature": func(e *sinks.Entry) { e.Signature = "unsigned" },
	} {
		c := en
		change(&c)
		h := hex.EncodeToString(ledgertree.LeafHash(&c))
		if seen[h] {
			t.Errorf("changing %s leaves the leaf hash as it was", name)
		}
		seen[h] = true
	}
}

// An entry with a signature result is an auditbus-leaf-v2 leaf: v1's
// fields after the v2 name, then the result; v1 leaves keep their hashes.
func TestLeafV2EncodingIsStable(t *testing.T) {
	en := sinks.Entry{Log: "l", Seq: 7, Time: time.Unix(0, 1767225600123456789), Kind: sinks.KindDelivered,
		Source: "s", ID: "i", Digest: sinks.Digest{1, 2}, Transport: "kafka", Topic: "t", Partition: -1, Offset: 300,
		Request: "r", Principal: "p", Route: "ro", Destination: "d", Attempts: 2, Error: "e", Replay: "re",
		Signature: "verified: shop-1"}
	leaf := ledgertree.AppendLeaf(nil, &en)
	if !strings.HasPrefix(string(leaf), ledgertree.LeafVersion2) || !strings.HasSuffix(string(leaf), "\x10verified: shop-1") {
		t.Errorf("leaf %q: want %s first and field(signature) last", leaf, ledgertree.LeafVersion2)
	}
	got := hex.EncodeToString(ledgertree.LeafHash(&en))
	const want = "16c7b25942c107b9230329ff30e286cc42836fbaede731c109d6df5556e37d40" // computed by hand from the documented encoding
	if got != want {
		t.Errorf("leaf hash %s, want %s", got, want)
	}
}

// A store whose entries were changed after the tree was built stops the
// builder at start, naming the log and the seq.
func TestStartRefusesCorruptTree(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, dir, sqlite.Options{Log: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var recs []sinks.Record
	for i := range 50 {
		e := event.New()
		e.SetID(strings.Repeat("x", i+1))
		e.SetSource("urn:t")
		e.SetType("t")
		recs = append(recs, sinks.Record{Event: e, Entries: []sinks.Entry{{Kind: sinks.KindReceived, Transport: "http", Request: e.ID()}}})
	}
	if _, err := s.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	b, err := ledgertree.StartBuilder(ctx, ledgertree.BuilderOptions{Store: s, Log: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `UPDATE entries SET destination = 'elsewhere' WHERE log = 'node-1' AND seq = 37`); err != nil {
		t.Fatal(err)
	}
	_, err = ledgertree.StartBuilder(ctx, ledgertree.BuilderOptions{Store: s, Log: "node-1"})
	var ce *ledgertree.CorruptError
	if !errors.As(err, &ce) || ce.Log != "node-1" || ce.Seq != 37 || !strings.Contains(err.Error(), `log "node-1"`) {
		t.Fatalf("StartBuilder on a changed entry: %v; want a CorruptError at node-1 seq 37", err)
	}
}
