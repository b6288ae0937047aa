package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	schema "github.com/auditbus/auditbus/schemas/sqlite"
	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// oldRecord is a row as the store before the ledger wrote it.
type oldRecord struct {
	event                     event.Event
	transport, topic, route   string
	partition                 int
	offset                    int64
	outcome, replay           string
	received                  time.Time
	wantKind                  string // the kind of the entry it becomes
	onOriginal, ownConflicted bool   // a replayed copy on its original; a second own version
}

var t0 = time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)

// oldEvent is an event as the old stores kept them: binary, JSON and no
// data, extensions, subjects.
func oldEvent(id string, i int) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("urn:old")
	e.SetType("com.example.old")
	e.SetTime(t0.Add(time.Duration(i) * time.Second))
	switch i % 3 {
	case 0:
		e.SetDataContentType("application/octet-stream")
		e.DataEncoded = []byte{0, byte(i), 0xff, '\n'}
	case 1:
		e.SetDataContentType(event.ApplicationJSON)
		e.DataEncoded = fmt.Appendf(nil, `{ "n" : %d }`, i)
		e.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		e.SetExtension("attempt", int32(i))
		e.SetSubject("s")
	}
	return e
}

// oldRecords covers every outcome, replayed copies with and without an
// original (one received before its original), and no data apart from
// empty data.
func oldRecords() []oldRecord {
	var recs []oldRecord
	add := func(id, outcome, replay string, at time.Duration, kind string) *oldRecord {
		i := len(recs)
		recs = append(recs, oldRecord{event: oldEvent(id, i), transport: "kafka", topic: "orders", route: "r1",
			partition: i % 2, offset: int64(100 + i), outcome: outcome, replay: replay, received: t0.Add(at), wantKind: kind})
		return &recs[len(recs)-1]
	}
	add("accepted", "accepted", "", time.Second, sinks.KindReceived)
	add("unknown", "", "", 2*time.Second, sinks.KindReceived)
	add("delivered", "delivered", "", 3*time.Second, sinks.KindDelivered)
	add("filtered", "filtered", "", 4*time.Second, sinks.KindFiltered)
	add("dead", "deadlettered", "", 5*time.Second, sinks.KindDeadLettered)
	add("poison", "poison", "", 5*time.Second, sinks.KindPoison) // same instant: ordered by id
	add("nodata", "accepted", "", 6*time.Second, sinks.KindReceived).event.DataEncoded = nil
	add("emptydata", "accepted", "", 7*time.Second, sinks.KindReceived).event.DataEncoded = []byte{}
	// The original of "early" is received after its replayed copy.
	add("early", "accepted", "", 8*time.Second, sinks.KindReceived)
	// Replayed copies carry the job in an extension, so their content is
	// not the original's; they are entries of the original's version.
	for _, c := range []struct {
		id, job string
		at      time.Duration
	}{{"dead", "job-1", time.Hour}, {"dead", "job-2", 2 * time.Hour}, {"early", "job-1", time.Millisecond}} {
		r := add(c.id, "delivered", c.job, c.at, sinks.KindReplayed)
		r.event = recs[slices.IndexFunc(recs, func(o oldRecord) bool { return o.event.ID() == c.id && o.replay == "" })].event.Clone()
		r.event.SetExtension("replay", c.job)
		r.onOriginal = true
	}
	// Copies with no original: each its own version.
	add("orphan", "delivered", "job-1", 9*time.Second, sinks.KindReplayed).event.SetExtension("replay", "job-1")
	o := add("orphan", "delivered", "job-2", 10*time.Second, sinks.KindReplayed)
	o.event.SetExtension("replay", "job-2")
	o.ownConflicted = true
	return recs
}

// writeOld creates a database at schema version `version` (1 or 2)
// holding recs, written the way that version's store wrote them.
func writeOld(t *testing.T, path string, version int, recs []oldRecord) {
	t.Helper()
	ctx := context.Background()
	ms, err := loadMigrations(schema.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := migrate(ctx, db, path, ms[:version]); err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		r := &recs[i]
		e := r.event
		e.DataEncoded, e.DataBase64 = nil, false
		attrs, err := e.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		at := r.event.Time()
		args := []any{e.Source(), e.ID(), at.UnixNano(), e.Type(), e.Subject(), attrs, r.event.DataEncoded, false,
			r.transport, r.topic, r.partition, r.offset, r.route, r.received.UnixNano()}
		stmt := `INSERT INTO events (source, id, time_ns, type, subject, attrs, data, data_base64,
			transport, topic, partition, "offset", route, received_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`
		if version >= 2 {
			stmt = `INSERT INTO events (source, id, time_ns, type, subject, attrs, data, data_base64,
			transport, topic, partition, "offset", route, received_ns, outcome, replay) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`
			args = append(args, r.outcome, r.replay)
		}
		if _, err := db.ExecContext(ctx, stmt, args...); err != nil {
			t.Fatal(err)
		}
	}
}

// wantEntry is the entry r becomes, but for its position.
func (r *oldRecord) wantEntry(t *testing.T, recs []oldRecord) sinks.Entry {
	t.Helper()
	d, err := sinks.DigestEvent(&r.event)
	if err != nil {
		t.Fatal(err)
	}
	en := sinks.Entry{Log: LegacyLog, Time: r.received, Kind: r.wantKind, Source: r.event.Source(), ID: r.event.ID(), Digest: d}
	switch r.wantKind {
	case sinks.KindReceived:
		en.Transport, en.Topic, en.Partition, en.Offset = r.transport, r.topic, r.partition, r.offset
	case sinks.KindReplayed:
		en.Route, en.Replay = r.route, r.replay
		if r.onOriginal {
			orig := recs[slices.IndexFunc(recs, func(o oldRecord) bool { return o.event.ID() == r.event.ID() && o.replay == "" })]
			en.Digest, _ = sinks.DigestEvent(&orig.event)
		}
	default:
		en.Route = r.route
	}
	return en
}

// TestMigrateToLedger opens databases written at schema versions 1 and 2,
// with rows, and checks that every row became its version and one entry
// of the log "legacy", in (received, source, id, replay) order.
func TestMigrateToLedger(t *testing.T) {
	for _, version := range []int{1, 2} {
		t.Run(fmt.Sprintf("from version %d", version), func(t *testing.T) {
			recs := oldRecords()
			if version == 1 { // no outcomes, no replayed copies
				recs = slices.DeleteFunc(recs, func(r oldRecord) bool { return r.replay != "" })
				for i := range recs {
					recs[i].outcome, recs[i].wantKind = "", sinks.KindReceived
				}
			}
			testMigrateToLedger(t, version, recs)
		})
	}
}

func testMigrateToLedger(t *testing.T, version int, recs []oldRecord) {
	ctx := context.Background()
	dir := t.TempDir()
	writeOld(t, filepath.Join(dir, FileName), version, recs)
	s, err := Open(ctx, dir, Options{Log: "after"})
	if err != nil {
		t.Fatalf("Open on a version-%d database: %v", version, err)
	}
	defer s.Close()
	ms, err := loadMigrations(schema.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	var have, events int
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&have); err != nil || have != len(ms) {
		t.Fatalf("schema version %d, %v; want %d", have, err, len(ms))
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'events'`).Scan(&events); err != nil || events != 0 {
		t.Errorf("the events table is still there (%d), %v", events, err)
	}

	// The log holds one entry per row, in the rows' order.
	order := slices.Clone(recs)
	slices.SortFunc(order, func(a, b oldRecord) int {
		if c := a.received.Compare(b.received); c != 0 {
			return c
		}
		if c := cmp.Compare(a.event.ID(), b.event.ID()); c != 0 {
			return c
		}
		return cmp.Compare(a.replay, b.replay)
	})
	got, err := s.Entries(ctx, LegacyLog, 0, 1000)
	if err != nil || len(got) != len(recs) {
		t.Fatalf("log %q: %d entries, %v; want %d", LegacyLog, len(got), err, len(recs))
	}
	for i := range order {
		want := order[i].wantEntry(t, recs)
		want.Seq = uint64(i + 1)
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i+1, got[i], want)
		}
	}
	if ls, err := s.Logs(ctx); err != nil || len(ls) != 1 || ls[0] != (sinks.LogInfo{Name: LegacyLog, Size: uint64(len(recs))}) {
		t.Errorf("Logs: %+v, %v", ls, err)
	}

	// Every row is found: its version, bit-exact, with its entry in the
	// trail.
	for i := range recs {
		r := &recs[i]
		items, err := s.Get(ctx, r.event.Source(), r.event.ID())
		if err != nil {
			t.Fatalf("Get %s: %v", r.event.ID(), err)
		}
		want := r.wantEntry(t, recs)
		at := slices.IndexFunc(items, func(it sinks.Item) bool { return it.Digest == want.Digest })
		if at < 0 {
			t.Fatalf("%s (replay %q): no version %s among %d", r.event.ID(), r.replay, want.Digest, len(items))
		}
		it := items[at]
		if !slices.ContainsFunc(it.Trail, func(en sinks.Entry) bool { return en.Kind == want.Kind && en.Replay == want.Replay }) {
			t.Errorf("%s (replay %q): trail %+v lacks its %s entry", r.event.ID(), r.replay, it.Trail, want.Kind)
		}
		if r.onOriginal {
			continue
		}
		if it.Conflict != r.ownConflicted || !it.Time.Equal(r.event.Time()) {
			t.Errorf("%s: conflict %v, time %v", r.event.ID(), it.Conflict, it.Time)
		}
		sameOldEvent(t, &r.event, &it.Event)
	}
	if _, err := s.Get(ctx, "urn:old", "missing"); !errors.Is(err, sinks.ErrNotFound) {
		t.Errorf("Get of a missing event: %v", err)
	}

	// The same events again are the same versions: their digests agree
	// with the ones computed at migration. New entries go to the store's
	// own log.
	var again []sinks.Record
	for i := range recs {
		if !recs[i].onOriginal { // a replayed copy's content was never stored
			again = append(again, sinks.Record{Event: recs[i].event, Entries: []sinks.Entry{{Kind: sinks.KindFiltered, Route: "later"}}})
		}
	}
	res, err := s.Append(ctx, again)
	if err != nil || res.Versions != 0 || len(res.Conflicts) != 0 {
		t.Errorf("the migrated events again: %+v, %v; want no new version", res, err)
	}
	p, err := s.Query(ctx, sinks.Query{Source: "urn:old", Kind: sinks.KindFiltered, Route: "later", Limit: 2})
	if err != nil || len(p.Items) != 2 || p.Next == "" {
		t.Errorf("Query after the migration: %d items, next %q, %v", len(p.Items), p.Next, err)
	}
}

// sameOldEvent fails unless got is want, data bytes and attributes.
func sameOldEvent(t *testing.T, want, got *event.Event) {
	t.Helper()
	if (want.DataEncoded == nil) != (got.DataEncoded == nil) || string(want.DataEncoded) != string(got.DataEncoded) {
		t.Errorf("%s: data %q (nil %v), want %q (nil %v)", want.ID(), got.DataEncoded, got.DataEncoded == nil,
			want.DataEncoded, want.DataEncoded == nil)
	}
	if dw, dg := mustDigest(t, want), mustDigest(t, got); dw != dg {
		t.Errorf("%s: the migrated event has digest %s, the old one %s", want.ID(), dg, dw)
	}
}

func mustDigest(t *testing.T, e *event.Event) sinks.Digest {
	t.Helper()
	d, err := sinks.DigestEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
