package clickhouse_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/clickhouse"
	"github.com/cloudevents/sdk-go/v2/event"
)

func record(source, id, typ string, at time.Time, data []byte) sinks.Record {
	e := event.New()
	e.SetID(id)
	e.SetSource(source)
	e.SetType(typ)
	e.SetTime(at)
	e.SetDataContentType("application/octet-stream")
	e.DataEncoded = data
	return sinks.Record{Event: e, Transport: "mem", Topic: "t", Received: at.Add(time.Millisecond)}
}

func TestOpenAppliesMigrationsOnce(t *testing.T) {
	cfg := testConfig(t)
	open(t, cfg).Close()
	s := open(t, cfg) // a second start finds the schema current
	defer s.Close()
	var n uint64
	var v uint32
	err := s.Conn().QueryRow(context.Background(),
		"SELECT count(), toUInt32(max(version)) FROM `"+cfg.Database+"`.events_schema_version").Scan(&n, &v)
	if err != nil || n != 2 || v != 2 {
		t.Fatalf("events_schema_version: %d rows, version %d, %v; want 2 rows, up to version 2", n, v, err)
	}
	if !s.Legacy() || s.ServerVersion() == "" {
		t.Logf("server %s, legacy wire %v", s.ServerVersion(), s.Legacy())
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	cfg := testConfig(t)
	s := open(t, cfg)
	err := s.Conn().Exec(context.Background(),
		"INSERT INTO `"+cfg.Database+"`.events_schema_version (version, name, applied) SELECT 99, '0099_future.sql', now()")
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = clickhouse.Open(context.Background(), cfg)
	if !errors.Is(err, sinks.ErrSchemaTooNew) || !strings.Contains(err.Error(), "99") || !strings.Contains(err.Error(), cfg.Database+".events") {
		t.Fatalf("Open on a newer schema: %v", err)
	}
}

func TestOpenUnreachableNamesStoreAndAddress(t *testing.T) {
	_, err := clickhouse.Open(context.Background(), clickhouse.Config{Addrs: []string{"127.0.0.1:1"}, DialTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "clickhouse 127.0.0.1:1 auditbus.events") {
		t.Fatalf("Open of a closed port: %v", err)
	}
}

// TestPayloadWithRewrittenText stores data holding exactly the query text
// LegacyDialer rewrites: data blocks must pass through untouched.
func TestPayloadWithRewrittenText(t *testing.T) {
	s := open(t, testConfig(t))
	defer s.Close()
	data := []byte("\x01INSERT INTO t (a) FORMAT Native and \x02 FORMAT Native")
	r := record("urn:payload", "1", "t", time.Now().UTC(), data)
	if err := s.Append(context.Background(), []sinks.Record{r}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(context.Background(), "urn:payload", "1")
	if err != nil || string(got.Event.Data()) != string(data) {
		t.Fatalf("Get: %q, %v; want %q", got.Event.Data(), err, data)
	}
}

// TestWinnersSurviveMerges forces ClickHouse's merges, which drop rows, and
// checks every read still sees each identity's winner: a later record with
// another time and type, a tie that must keep the stored record, and a
// retried append.
// winnerBatches are appends, in order, where the later record of one
// identity moves it to another time and type ("moved"), a tie keeps the
// stored record ("tie") and a repeated append changes nothing ("retried").
func winnerBatches(at time.Time) [][]sinks.Record {
	first := record("urn:m", "moved", "com.a", at, []byte("1"))
	later := record("urn:m", "moved", "com.b", at.Add(48*time.Hour), []byte("2"))
	later.Received = first.Received.Add(time.Second)
	stored := record("urn:m", "tie", "com.a", at, []byte("stored"))
	stored.Outcome = sinks.OutcomeAccepted
	tie := stored
	tie.Event = stored.Event.Clone()
	tie.Event.DataEncoded = []byte("tie")
	tie.Outcome = sinks.OutcomeDelivered
	retried := record("urn:m", "retried", "com.a", at, []byte("r"))
	return [][]sinks.Record{{first, stored, retried}, {retried}, {later, tie}, {retried}}
}

// checkWinners checks that Get, Query and Counts see exactly the winners
// of winnerBatches(at).
func checkWinners(t *testing.T, s *clickhouse.Store, at time.Time, when string) {
	t.Helper()
	ctx := context.Background()
	for _, c := range []struct {
		id, data string
	}{{"moved", "2"}, {"tie", "stored"}, {"retried", "r"}} {
		got, err := s.Get(ctx, "urn:m", c.id)
		if err != nil || string(got.Event.Data()) != c.data {
			t.Errorf("%s: Get %s: %q, %v; want data %q", when, c.id, got.Event.Data(), err, c.data)
		}
	}
	p, err := s.Query(ctx, sinks.Query{Source: "urn:m"})
	if err != nil || len(p.Records) != 3 {
		t.Fatalf("%s: Query: %d records, %v; want 3", when, len(p.Records), err)
	}
	if p.Records[2].Event.ID() != "moved" || p.Records[2].Event.Type() != "com.b" {
		t.Errorf("%s: last record %s of type %s; want moved of type com.b", when, p.Records[2].Event.ID(), p.Records[2].Event.Type())
	}
	cs, err := s.Counts(ctx, sinks.CountQuery{From: at.Add(-time.Hour), To: at.Add(72 * time.Hour), Bucket: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, c := range cs {
		n += c.N
	}
	if n != 3 {
		t.Errorf("%s: Counts total %d, want 3: %+v", when, n, cs)
	}
}

func TestWinnersSurviveMerges(t *testing.T) {
	cfg := testConfig(t)
	s := open(t, cfg)
	defer s.Close()
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, batch := range winnerBatches(at) {
		if err := s.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) { t.Helper(); checkWinners(t, s, at, when) }
	check("before merges")
	for _, tbl := range []string{"events", "events_ids"} {
		if err := s.Conn().Exec(ctx, "OPTIMIZE TABLE `"+cfg.Database+"`."+tbl+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	check("after OPTIMIZE FINAL")
	var rows uint64
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM `"+cfg.Database+"`.events").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	// moved (2 positions) + the tie's stored row + retried once.
	if rows != 4 {
		t.Errorf("after merges: %d rows on disk, want 4 (repeats and the losing tie merged away)", rows)
	}
}

func TestRetentionDropsExpiredDays(t *testing.T) {
	cfg := testConfig(t)
	s := open(t, cfg)
	now := time.Now().UTC()
	var recs []sinks.Record
	for _, age := range []time.Duration{10 * 24 * time.Hour, 3 * 24 * time.Hour, time.Hour} {
		recs = append(recs, record("urn:ret", fmt.Sprintf("age-%v", age), "t", now.Add(-age), nil))
	}
	if err := s.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	s.Close()
	cfg.Retention = 5 * 24 * time.Hour
	s = open(t, cfg)
	defer s.Close()
	p, err := s.Query(context.Background(), sinks.Query{Source: "urn:ret"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range p.Records {
		ids = append(ids, r.Event.ID())
	}
	if strings.Join(ids, ",") != "age-72h0m0s,age-1h0m0s" {
		t.Errorf("after retention of 5 days: %v; want the 3-day-old and 1-hour-old records", ids)
	}
}
