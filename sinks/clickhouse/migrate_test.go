package clickhouse_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/clickhouse"
	"github.com/auditbus/auditbus/sinks/sinktest"
	"github.com/cloudevents/sdk-go/v2/event"
)

// oldRow is a row of the events table of schemas 1 and 2, as the store
// before the ledger wrote it for one record.
type oldRow struct {
	ev                     event.Event
	replay, route, outcome string
	transport, topic       string
	partition, offset      int64
	received               time.Time
	seq                    uint64 // the append that wrote it; its complement is the row's version
}

// writeOldRows inserts rows into the events table of cfg's database the
// way the store of schema 2 did: the event's attributes as the SDK's JSON
// without data, the data apart, the indexed time the event's or else the
// received time.
func writeOldRows(t *testing.T, cfg clickhouse.Config, rows []oldRow) {
	t.Helper()
	ctx := context.Background()
	opts := &ch.Options{Addr: []string{addr}}
	d := &net.Dialer{Timeout: 5 * time.Second}
	opts.DialContext = clickhouse.LegacyDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) })
	conn, err := ch.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b, err := conn.PrepareBatch(ctx, "INSERT INTO `"+cfg.Database+"`.events (hour, type, time_ns, source, id, replay, received_ns, version, "+
		"subject, route, outcome, transport, topic, `partition`, `offset`, attrs, data, data_flags)")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		e := r.ev
		e.DataEncoded, e.DataBase64 = nil, false
		attrs, err := e.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var flags uint8
		if r.ev.DataEncoded != nil {
			flags |= 1
		}
		if r.ev.DataBase64 {
			flags |= 2
		}
		at := r.ev.Time()
		if at.IsZero() {
			at = r.received
		}
		if err := b.Append(uint32(at.UnixNano()/int64(time.Hour)), e.Type(), at.UnixNano(), e.Source(), e.ID(), r.replay, r.received.UnixNano(),
			^r.seq, e.Subject(), r.route, r.outcome, r.transport, r.topic, r.partition, r.offset, string(attrs), string(r.ev.DataEncoded), flags); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// oldEvent is an event of the old store's tests.
func oldEvent(source, id, typ string, at time.Time, data string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource(source)
	e.SetType(typ)
	if !at.IsZero() {
		e.SetTime(at)
	}
	e.SetDataContentType("application/json")
	e.DataEncoded = []byte(data)
	return e
}

// oldRows are rows of every kind the store of schema 2 wrote, received
// from t0 on.
func oldRows(t0 time.Time) []oldRow {
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	a := oldEvent("urn:o", "a", "com.a", at(0), `{"a":1}`)
	noTime := oldEvent("urn:o", "b", "com.b", time.Time{}, `{"b":1}`)
	orig := oldEvent("urn:o", "c", "com.c", at(2), `{"c":1}`)
	lone := oldEvent("urn:o", "d", "com.d", at(3), `{"d":1}`)
	moved1 := oldEvent("urn:o", "e", "com.e1", at(4), `{"e":1}`)
	moved2 := oldEvent("urn:o", "e", "com.e2", at(70), `{"e":2}`)
	ext := oldEvent("urn:o", "f", "com.f", at(5), "")
	ext.SetExtension("tenant", "acme")
	ext.SetExtension("partitionkey", "k1")
	ext.DataEncoded = []byte{} // empty, not none
	none := oldEvent("urn:o", "g", "com.g", at(6), "")
	none.DataEncoded = nil
	b64 := oldEvent("urn:o", "h", "com.h", at(7), "\x00\x01binary")
	b64.DataBase64 = true
	return []oldRow{
		{ev: a, outcome: "accepted", transport: "kafka", topic: "in", partition: 2, offset: 7, received: at(1), seq: 1},
		{ev: a, outcome: "delivered", route: "r", transport: "kafka", topic: "in", partition: 2, offset: 7, received: at(2), seq: 2},
		{ev: noTime, transport: "mem", topic: "t", received: at(1), seq: 1},
		{ev: orig, outcome: "accepted", transport: "http", received: at(2), seq: 1},
		{ev: orig, replay: "job-1", outcome: "delivered", route: "r", received: at(30), seq: 3},
		{ev: lone, replay: "job-2", outcome: "delivered", route: "r", received: at(31), seq: 3},
		{ev: moved1, outcome: "accepted", transport: "kafka", topic: "in", offset: 9, received: at(4), seq: 1},
		{ev: moved2, outcome: "accepted", transport: "kafka", topic: "in", offset: 10, received: at(71), seq: 4},
		{ev: ext, outcome: "deadlettered", route: "r", received: at(5), seq: 1},
		{ev: ext, outcome: "deadlettered", route: "r", received: at(5), seq: 1}, // an append retried, not merged yet
		{ev: none, outcome: "poison", route: "r", received: at(6), seq: 1},
		{ev: b64, outcome: "filtered", route: "audit", received: at(7), seq: 1},
	}
}

// TestMigrationMovesEventsIntoLedger writes rows with schema 2, as the
// store before the ledger did, opens the database with this build, and
// finds every record as a version with the entries of its outcomes in the
// log "legacy"; then runs the data step again over the same rows, as a
// migration cut short would, and finds the same.
// A database with versions and entries but no per-minute counts (before
// migration 0007) gets them when the store opens, equal to what it holds.
func TestMigrationFillsCounts(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	old, err := clickhouse.OpenAt(ctx, cfg, 6)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	sinktest.CountsData(t, ctx, old, at)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s := open(t, cfg)
	defer s.Close()
	sinktest.CheckCounts(t, ctx, s, at)
	// The step run again, as after a migration cut short, counts nothing
	// twice.
	if err := s.FillCounts(ctx); err != nil {
		t.Fatal(err)
	}
	sinktest.CheckCounts(t, ctx, s, at)
}

func TestMigrationMovesEventsIntoLedger(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	if err := clickhouse.MigrateTo(ctx, cfg, 2); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rows := oldRows(t0)
	writeOldRows(t, cfg, rows)

	s := open(t, cfg)
	checkMigrated(t, s, rows, t0)
	db := "`" + cfg.Database + "`."
	var left uint64
	err := s.Conn().QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name IN ('events', 'events_ids', 'events_ids_mv', 'events_migrating')",
		cfg.Database).Scan(&left)
	if err != nil || left != 0 {
		t.Errorf("tables of the events schema left after the migration: %d, %v", left, err)
	}
	s.Close()

	// A migration cut short before it was recorded runs again from the
	// start: put the events table back and forget schema 3.
	conn := open(t, cfg)
	for _, st := range []string{
		"RENAME TABLE " + db + "events_pre_ledger TO " + db + "events",
		"CREATE TABLE " + db + "sv AS " + db + "events_schema_version",
		"INSERT INTO " + db + "sv SELECT * FROM " + db + "events_schema_version WHERE version < 3",
		"DROP TABLE " + db + "events_schema_version",
		"RENAME TABLE " + db + "sv TO " + db + "events_schema_version",
	} {
		if err := conn.Conn().Exec(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	s = open(t, cfg)
	defer s.Close()
	checkMigrated(t, s, rows, t0)

	// The store appends to its own log beside the legacy one.
	r := record("urn:o", "new", "com.n", t0.Add(time.Hour), []byte("n"))
	if res, err := s.Append(ctx, []sinks.Record{r}); err != nil || res.Entries != 1 {
		t.Fatalf("Append after the migration: %+v, %v", res, err)
	}
	ls, err := s.Logs(ctx)
	if err != nil || len(ls) != 2 || ls[0] != (sinks.LogInfo{Name: "legacy", Size: 11}) || ls[1] != (sinks.LogInfo{Name: cfg.Log, Size: 1}) {
		t.Errorf("Logs: %+v, %v", ls, err)
	}
}

// checkMigrated checks s holds what the migration makes of oldRows(t0).
func checkMigrated(t *testing.T, s *clickhouse.Store, rows []oldRow, t0 time.Time) {
	t.Helper()
	ctx := context.Background()
	digest := func(e event.Event) sinks.Digest {
		d, err := sinks.DigestEvent(&e)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// Each identity's versions, each with its entries' kinds, in trail order.
	want := map[string][]string{
		"a": {"received delivered"},
		"b": {"received"},
		"c": {"received replayed"},
		"d": {"replayed"},
		"e": {"received", "received"},
		"f": {"deadlettered"},
		"g": {"poison"},
		"h": {"filtered"},
	}
	byID := map[string][]oldRow{}
	for _, r := range rows {
		byID[r.ev.ID()] = append(byID[r.ev.ID()], r)
	}
	for id, kinds := range want {
		its, err := s.Get(ctx, "urn:o", id)
		if err != nil || len(its) != len(kinds) {
			t.Fatalf("Get %s: %d versions, %v; want %d", id, len(its), err, len(kinds))
		}
		for i, it := range its {
			var got []string
			for _, en := range it.Trail {
				got = append(got, en.Kind)
				if en.Log != "legacy" {
					t.Errorf("%s: entry in log %q", id, en.Log)
				}
			}
			if strings.Join(got, " ") != kinds[i] {
				t.Errorf("%s version %d: trail %v, want %s", id, i, got, kinds[i])
			}
			if it.Conflict != (i > 0) {
				t.Errorf("%s version %d: conflict %v", id, i, it.Conflict)
			}
		}
		// The first row's event, bit-exact, is the first version.
		first := byID[id][0].ev
		if its[0].Digest != digest(first) || !slices.Equal(its[0].Event.DataEncoded, first.DataEncoded) ||
			(its[0].Event.DataEncoded == nil) != (first.DataEncoded == nil) || its[0].Event.DataBase64 != first.DataBase64 {
			t.Errorf("%s: first version %s data %q, want the first row's event (%s, %q)", id, its[0].Digest, its[0].Event.DataEncoded,
				digest(first), first.DataEncoded)
		}
	}
	// Details: the received entry of an accepted row keeps its position,
	// the replayed one its job and route; a version without time is
	// indexed at its row's received time.
	a, _ := s.Get(ctx, "urn:o", "a")
	if en := a[0].Trail[0]; en.Transport != "kafka" || en.Topic != "in" || en.Partition != 2 || en.Offset != 7 || !en.Time.Equal(t0.Add(time.Minute)) {
		t.Errorf("a's received entry: %+v", en)
	}
	if en := a[0].Trail[1]; en.Route != "r" || en.Transport != "" {
		t.Errorf("a's delivered entry: %+v", en)
	}
	c, _ := s.Get(ctx, "urn:o", "c")
	if en := c[0].Trail[1]; en.Replay != "job-1" || en.Route != "r" {
		t.Errorf("c's replayed entry: %+v", en)
	}
	if b, _ := s.Get(ctx, "urn:o", "b"); !b[0].Time.Equal(t0.Add(time.Minute)) {
		t.Errorf("b, without a time, is indexed at %v", b[0].Time)
	}
	if f, _ := s.Get(ctx, "urn:o", "f"); f[0].Event.Extensions()["tenant"] != "acme" {
		t.Errorf("f's extensions: %v", f[0].Event.Extensions())
	}
	// The legacy log: seqs 1..11 in (received, source, id, replay) order.
	ens, err := s.Entries(ctx, "legacy", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for i, en := range ens {
		if en.Seq != uint64(i+1) {
			t.Errorf("legacy entry %d has seq %d", i, en.Seq)
		}
		order = append(order, fmt.Sprintf("%s:%s", en.ID, en.Kind))
	}
	if got, want := strings.Join(order, " "), "a:received b:received a:delivered c:received e:received f:deadlettered g:poison h:filtered "+
		"c:replayed d:replayed e:received"; got != want {
		t.Errorf("legacy log:\n got %s\nwant %s", got, want)
	}
	// Query and Scan see the versions in time order.
	p, err := s.Query(ctx, sinks.Query{Source: "urn:o", Limit: 100})
	if err != nil || len(p.Items) != 9 {
		t.Fatalf("Query: %d items, %v; want 9", len(p.Items), err)
	}
	if n, err := s.CountVersions(ctx, sinks.Query{Source: "urn:o", Kind: sinks.KindReplayed}); err != nil || n != 2 {
		t.Errorf("CountVersions of replayed: %d, %v; want 2", n, err)
	}
}
