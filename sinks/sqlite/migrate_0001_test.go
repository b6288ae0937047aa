package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	schema "github.com/auditbus/auditbus/schemas/sqlite"
	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// v1Records are records as a version-1 store held them: no outcome, no
// replay, binary and JSON data, extensions.
func v1Records() []sinks.Record {
	t0 := time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)
	var recs []sinks.Record
	for i := range 5 {
		e := event.New()
		e.SetID(fmt.Sprintf("old-%d", i))
		e.SetSource("urn:v1")
		e.SetType("com.example.v1")
		e.SetTime(t0.Add(time.Duration(i) * time.Second))
		if i%2 == 0 {
			e.SetDataContentType("application/octet-stream")
			e.DataEncoded = []byte{0, byte(i), 0xff, '\n'}
		} else {
			e.SetDataContentType(event.ApplicationJSON)
			e.DataEncoded = []byte(fmt.Sprintf(`{ "n" : %d }`, i))
			e.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
			e.SetSubject("s")
		}
		recs = append(recs, sinks.Record{Event: e, Transport: "kafka", Topic: "orders", Partition: i, Offset: int64(100 + i),
			Route: "r1", Received: t0.Add(time.Duration(i)*time.Second + time.Millisecond)})
	}
	return recs
}

// writeV1 creates a database at schema version 1 holding recs, written the
// way the version-1 store wrote them.
func writeV1(t *testing.T, path string, recs []sinks.Record) {
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
	if err := migrate(ctx, db, path, ms[:1]); err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		r := &recs[i]
		e := r.Event
		e.DataEncoded, e.DataBase64 = nil, false
		attrs, err := e.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT OR IGNORE INTO events (source, id, time_ns, type, subject, attrs, data, data_base64,
			transport, topic, partition, "offset", route, received_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			e.Source(), e.ID(), r.Time().UnixNano(), e.Type(), e.Subject(), attrs, r.Event.DataEncoded, false,
			r.Transport, r.Topic, r.Partition, r.Offset, r.Route, r.Received.UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
}

// sameV1 fails unless got holds exactly what want holds.
func sameV1(t *testing.T, want, got *sinks.Record) {
	t.Helper()
	wb, err1 := json.Marshal(want.Event)
	gb, err2 := json.Marshal(got.Event)
	var wm, gm map[string]any
	if err1 != nil || err2 != nil || json.Unmarshal(wb, &wm) != nil || json.Unmarshal(gb, &gm) != nil {
		t.Fatalf("marshal: %v %v", err1, err2)
	}
	if !reflect.DeepEqual(wm, gm) || !bytes.Equal(want.Event.Data(), got.Event.Data()) {
		t.Errorf("event\n got %s\nwant %s", gb, wb)
	}
	g, w := *got, *want
	g.Event, w.Event = event.Event{}, event.Event{}
	g.Received, w.Received = g.Received.UTC(), w.Received.UTC()
	if !reflect.DeepEqual(g, w) {
		t.Errorf("record fields\n got %+v\nwant %+v", g, w)
	}
}

// TestMigrateVersion1Database opens a database written at schema version 1,
// with rows, and checks that migrating it keeps every record and gives it
// the version-2 contract: outcome and replay columns, identity
// (source, id, replay), later Received winning.
func TestMigrateVersion1Database(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	recs := v1Records()
	writeV1(t, path, recs)

	s, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatalf("Open on a version-1 database: %v", err)
	}
	defer s.Close()
	var version int
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&version); err != nil || version != 2 {
		t.Fatalf("schema version %d, %v; want 2", version, err)
	}
	for i := range recs {
		got, err := s.Get(ctx, "urn:v1", recs[i].Event.ID())
		if err != nil {
			t.Fatalf("Get migrated record: %v", err)
		}
		sameV1(t, &recs[i], &got)
	}
	p, err := s.Query(ctx, sinks.Query{Source: "urn:v1", Limit: 2})
	if err != nil || len(p.Records) != 2 || p.Next == "" {
		t.Fatalf("Query migrated records: %d records, next %q, %v", len(p.Records), p.Next, err)
	}
	sameV1(t, &recs[0], &p.Records[0])

	// A replayed copy of a migrated record is stored beside it.
	replayed := recs[1]
	replayed.Event = recs[1].Event.Clone()
	replayed.Replay, replayed.Outcome, replayed.Received = "job-1", sinks.OutcomeDelivered, recs[1].Received.Add(time.Hour)
	// A later outcome supersedes a migrated record; an earlier one does not.
	later := recs[2]
	later.Event = recs[2].Event.Clone()
	later.Outcome, later.Received = sinks.OutcomeDeadLettered, recs[2].Received.Add(time.Minute)
	earlier := recs[3]
	earlier.Event = recs[3].Event.Clone()
	earlier.Outcome, earlier.Received = sinks.OutcomeFiltered, recs[3].Received.Add(-time.Minute)
	if err := s.Append(ctx, []sinks.Record{replayed, later, earlier}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		want *sinks.Record
	}{{"old-1", &recs[1]}, {"old-2", &later}, {"old-3", &recs[3]}} {
		got, err := s.Get(ctx, "urn:v1", c.id)
		if err != nil {
			t.Fatal(err)
		}
		sameV1(t, c.want, &got)
	}
	p, err = s.Query(ctx, sinks.Query{ID: "old-1"})
	if err != nil || len(p.Records) != 2 {
		t.Fatalf("Query original and replayed copy: %d records, %v", len(p.Records), err)
	}
	sameV1(t, &replayed, &p.Records[1])
	p, err = s.Query(ctx, sinks.Query{Outcome: sinks.OutcomeDeadLettered})
	if err != nil || len(p.Records) != 1 || p.Records[0].Event.ID() != "old-2" {
		t.Fatalf("Query by outcome after migration: %d records, %v", len(p.Records), err)
	}
	if _, err := s.Get(ctx, "urn:v1", "missing"); !errors.Is(err, sinks.ErrNotFound) {
		t.Errorf("Get of a missing record: %v", err)
	}
}
