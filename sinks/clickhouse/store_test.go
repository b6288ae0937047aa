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
	"github.com/auditbus/auditbus/sinks/sinktest"
	"github.com/cloudevents/sdk-go/v2/event"
)

// record is a record of a new event at at, received a millisecond later.
func record(source, id, typ string, at time.Time, data []byte) sinks.Record {
	e := event.New()
	e.SetID(id)
	e.SetSource(source)
	e.SetType(typ)
	e.SetTime(at)
	e.SetDataContentType("application/octet-stream")
	e.DataEncoded = data
	return sinks.Record{Event: e, Entries: []sinks.Entry{{Kind: sinks.KindReceived, Time: at.Add(time.Millisecond), Transport: "mem", Topic: "t"}}}
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
	if err != nil || n != 7 || v != 7 {
		t.Fatalf("events_schema_version: %d rows, version %d, %v; want 7 rows, up to version 7", n, v, err)
	}
	var left uint64
	err = s.Conn().QueryRow(context.Background(), "SELECT count() FROM system.tables WHERE database = ? AND name IN "+
		"('events', 'events_ids', 'events_ids_mv', 'events_pre_ledger', 'events_migrating')", cfg.Database).Scan(&left)
	if err != nil || left != 0 {
		t.Errorf("tables of the events schema left in a new database: %d, %v", left, err)
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

func TestOpenRefusesBadLogName(t *testing.T) {
	_, err := clickhouse.Open(context.Background(), clickhouse.Config{Log: "a log"})
	if err == nil || !strings.Contains(err.Error(), "field Log") {
		t.Fatalf("Open with log %q: %v", "a log", err)
	}
}

// TestPayloadWithRewrittenText stores data holding exactly the query text
// LegacyDialer rewrites: data blocks must pass through untouched.
func TestPayloadWithRewrittenText(t *testing.T) {
	s := open(t, testConfig(t))
	defer s.Close()
	data := []byte("\x01INSERT INTO t (a) FORMAT Native and \x02 FORMAT Native")
	r := record("urn:payload", "1", "t", time.Now().UTC(), data)
	if _, err := s.Append(context.Background(), []sinks.Record{r}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(context.Background(), "urn:payload", "1")
	if err != nil || len(got) != 1 || string(got[0].Event.Data()) != string(data) {
		t.Fatalf("Get: %+v, %v; want one version of data %q", got, err, data)
	}
}

// TestRepeatedVersionRowsReadOnce writes the rows of a version a second
// time, as two writers racing to store it would, and checks that every
// read sees the version once, with the first row's flags, before and
// after ClickHouse's merges.
func TestRepeatedVersionRowsReadOnce(t *testing.T) {
	cfg := testConfig(t)
	s := open(t, cfg)
	defer s.Close()
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var recs []sinks.Record
	for i := range 5 {
		recs = append(recs, record("urn:rep", fmt.Sprintf("e%d", i), "com.rep", at.Add(time.Duration(i)*time.Second), []byte("x")))
	}
	if _, err := s.Append(ctx, recs); err != nil {
		t.Fatal(err)
	}
	db := "`" + cfg.Database + "`."
	// The copy is added later and says it conflicts: reads must not pick it.
	copyRows := "INSERT INTO " + db + "events_versions (hour, type, time_ns, source, id, digest, subject, attrs, data, data_flags, stored_ns, added_ns, conflict) " +
		"SELECT hour, type, time_ns, source, id, digest, subject, attrs, data, data_flags, stored_ns, added_ns + 1000, 1 FROM " + db + "events_versions"
	if err := s.Conn().Exec(ctx, copyRows); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		var ids []string
		err := sinks.PageAll(ctx, s, sinks.Query{Source: "urn:rep", Limit: 2}, func(items []sinks.Item) error {
			for _, it := range items {
				if it.Conflict || len(it.Trail) != 1 {
					t.Errorf("%s: %s conflict %v, trail %d entries; want the first row, one entry", when, it.Event.ID(), it.Conflict, len(it.Trail))
				}
				ids = append(ids, it.Event.ID())
			}
			return nil
		})
		if err != nil || strings.Join(ids, ",") != "e0,e1,e2,e3,e4" {
			t.Errorf("%s: Query: %v, %v", when, ids, err)
		}
		ids = nil
		err = s.Scan(ctx, sinks.Query{Source: "urn:rep", Limit: 2}, sinks.ScanOptions{}, func(items []sinks.Item) error {
			for _, it := range items {
				ids = append(ids, it.Event.ID())
			}
			return nil
		})
		if err != nil || strings.Join(ids, ",") != "e0,e1,e2,e3,e4" {
			t.Errorf("%s: Scan: %v, %v", when, ids, err)
		}
		if its, err := s.Get(ctx, "urn:rep", "e3"); err != nil || len(its) != 1 || its[0].Conflict {
			t.Errorf("%s: Get: %+v, %v; want one version", when, its, err)
		}
		if n, err := s.CountVersions(ctx, sinks.Query{Source: "urn:rep"}); err != nil || n != 5 {
			t.Errorf("%s: CountVersions: %d, %v; want 5", when, n, err)
		}
		// Counts of buckets inside minutes read the versions, once each.
		cs, err := s.Counts(ctx, sinks.CountQuery{From: at, To: at.Add(time.Minute), Bucket: 30 * time.Second})
		if err != nil || len(cs) != 1 || cs[0].N != 5 {
			t.Errorf("%s: Counts by 30s: %+v, %v; want 5", when, cs, err)
		}
		// Those of whole minutes read the per-minute counts, which count
		// every row a writer inserted: a version two writers raced to
		// store counts twice there (see the package's doc).
		cs, err = s.Counts(ctx, sinks.CountQuery{From: at, To: at.Add(time.Hour), Bucket: time.Hour})
		if err != nil || len(cs) != 1 || cs[0].N != 10 {
			t.Errorf("%s: Counts by the hour: %+v, %v; want 10", when, cs, err)
		}
		// A retried append finds the version stored.
		if res, err := s.Append(ctx, recs[:1]); err != nil || res.Versions != 0 || res.Duplicates != 1 {
			t.Errorf("%s: Append again: %+v, %v", when, res, err)
		}
	}
	check("before merges")
	for _, tbl := range []string{"events_versions", "events_identities"} {
		if err := s.Conn().Exec(ctx, "OPTIMIZE TABLE "+db+tbl+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	check("after OPTIMIZE FINAL")
	var rows, flagged uint64
	if err := s.Conn().QueryRow(ctx, "SELECT count(), sum(conflict) FROM "+db+"events_versions").Scan(&rows, &flagged); err != nil {
		t.Fatal(err)
	}
	if rows != 5 || flagged != 0 {
		t.Errorf("after merges: %d rows on disk, %d flagged; want 5, the first of each", rows, flagged)
	}
}

// TestRetentionDropsExpiredDays opens a store with Config.Retention over
// a ledger of several days: the days older than the retention are gone,
// the log's positions stay.
func TestRetentionDropsExpiredDays(t *testing.T) {
	cfg := testConfig(t)
	s := open(t, cfg)
	now := time.Now().UTC()
	var recs []sinks.Record
	for _, age := range []time.Duration{10 * 24 * time.Hour, 3 * 24 * time.Hour, time.Hour} {
		recs = append(recs, record("urn:ret", fmt.Sprintf("age-%v", age), "t", now.Add(-age), nil))
	}
	if _, err := s.Append(context.Background(), recs); err != nil {
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
	for _, it := range p.Items {
		ids = append(ids, it.Event.ID())
	}
	if strings.Join(ids, ",") != "age-72h0m0s,age-1h0m0s" {
		t.Errorf("after retention of 5 days: %v; want the 3-day-old and 1-hour-old versions", ids)
	}
	ens, err := s.Entries(context.Background(), cfg.Log, 0, 10)
	if err != nil || len(ens) != 2 || ens[0].Seq != 2 {
		t.Errorf("entries after retention: %+v, %v; want seqs 2 and 3", ens, err)
	}
	ls, err := s.Logs(context.Background())
	if err != nil || len(ls) != 1 || ls[0].Size != 3 {
		t.Errorf("Logs after retention: %+v, %v; want size 3", ls, err)
	}
}

// TestAppendAfterFailedInsert makes appends fail after part of them
// landed, with the server itself: a view fed by the entries table is
// replaced by one that fails, so the entries land and the view's rows do
// not; or the entries table is detached, so the versions land and the
// entries do not. The retry must find what landed, complete the views,
// store the rest, and leave the log without a hole or a repeat.
func TestAppendAfterFailedInsert(t *testing.T) {
	cfg := testConfig(t)
	s := open(t, cfg)
	defer s.Close()
	ctx := context.Background()
	db := "`" + cfg.Database + "`."
	exec := func(st string) {
		t.Helper()
		if err := s.Conn().Exec(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	// failing replaces view by one that fails on every row and returns
	// what puts it back.
	failing := func(view string) (undo func()) {
		var ddl string
		if err := s.Conn().QueryRow(ctx, "SHOW CREATE TABLE "+db+view).Scan(&ddl); err != nil {
			t.Fatal(err)
		}
		exec("DROP TABLE " + db + view)
		if strings.Contains(ddl, " GROUP BY ") {
			exec(strings.Replace(ddl, " GROUP BY ", " WHERE throwIf(seq > 0) = 0 GROUP BY ", 1))
		} else {
			exec(ddl + " WHERE throwIf(seq > 0) = 0")
		}
		return func() { exec("DROP TABLE " + db + view); exec(ddl) }
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	batch := func(name string, n int) []sinks.Record {
		recs := make([]sinks.Record, n)
		for i := range recs {
			recs[i] = record("urn:fail", fmt.Sprintf("%s-%d", name, i), "com.fail", at.Add(time.Duration(i)*time.Second), []byte(name))
			recs[i].Entries = append(recs[i].Entries, sinks.Entry{Kind: sinks.KindDelivered, Time: at.Add(time.Hour), Route: "r", Destination: "d"})
		}
		return recs
	}
	if _, err := s.Append(ctx, batch("a", 3)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		fail   func() (undo func())
		landed bool // the entries landed
	}{
		{"keys", func() func() { return failing("events_keys_mv") }, true},
		{"trails", func() func() { return failing("events_trails_mv") }, true},
		{"entry counts", func() func() { return failing("events_entry_counts_mv") }, true},
		{"entries", func() func() {
			exec("DETACH TABLE " + db + "events_entries")
			return func() { exec("ATTACH TABLE " + db + "events_entries") }
		}, false},
	} {
		recs := batch(c.name, 4)
		undo := c.fail()
		_, err := s.Append(ctx, recs)
		undo()
		if err == nil {
			t.Fatalf("%s: Append with a failing %s succeeded", c.name, c.name)
		}
		res, err := s.Append(ctx, recs)
		if err != nil {
			t.Fatalf("%s: retry: %v", c.name, err)
		}
		entries := 8
		if c.landed {
			entries = 0
		}
		if res.Versions != 0 || res.Entries != entries || res.Duplicates != 8-entries {
			t.Errorf("%s: retry: %+v; want no version, %d entries, %d duplicates", c.name, res, entries, 8-entries)
		}
	}
	ens, err := s.Entries(ctx, cfg.Log, 0, 100)
	if err != nil || len(ens) != 6+4*8 {
		t.Fatalf("log: %d entries, %v; want 38", len(ens), err)
	}
	for i, en := range ens {
		if en.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d: a hole or a repeat", i, en.Seq)
		}
	}
	var keys, trails uint64
	if err := s.Conn().QueryRow(ctx, "SELECT (SELECT count() FROM "+db+"events_keys), (SELECT count() FROM "+db+"events_trails)").Scan(&keys, &trails); err != nil {
		t.Fatal(err)
	}
	if keys != 38 || trails != 38 {
		t.Errorf("%d keys, %d trail rows; want 38 of each", keys, trails)
	}
	// The retry after the failure set the per-minute counts right.
	sinktest.CheckCounts(t, ctx, s, at)
	err = sinks.PageAll(ctx, s, sinks.Query{Source: "urn:fail"}, func(items []sinks.Item) error {
		for _, it := range items {
			if len(it.Trail) != 2 {
				t.Errorf("%s: trail of %d entries, want 2", it.Event.ID(), len(it.Trail))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
