package clickhouse_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/clickhouse"
)

// TestMigrationRebuildsEventsTable stores records under schema 1 (the
// events table with 8,192-row granules), then opens the database with
// this build: migration 0002 rebuilds the table in place with 256-row
// granules, every winner reads as before, and the identity table is fed
// again.
func TestMigrationRebuildsEventsTable(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	old, err := clickhouse.OpenAtSchema(ctx, cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, batch := range winnerBatches(at) {
		if err := old.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	checkWinners(t, old, at, "schema 1")
	old.Close()

	s := open(t, cfg)
	defer s.Close()
	checkWinners(t, s, at, "after migration")
	var ddl string
	if err := s.Conn().QueryRow(ctx, "SHOW CREATE TABLE `"+cfg.Database+"`.events").Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PRIMARY KEY (hour, type, time_ns)", "index_granularity = 256"} {
		if !strings.Contains(ddl, want) {
			t.Errorf("events table after migration lacks %q: %s", want, ddl)
		}
	}
	var left uint64
	err = s.Conn().QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name IN ('events_v1', 'events_v2')", cfg.Database).Scan(&left)
	if err != nil || left != 0 {
		t.Errorf("tables left over from the rebuild: %d, %v", left, err)
	}
	// The view feeds the identity table from the new table: a later record
	// of "retried" with another time and type wins.
	moved := record("urn:m", "retried", "com.c", at.Add(time.Hour), []byte("r2"))
	moved.Received = at.Add(time.Hour)
	if err := s.Append(ctx, []sinks.Record{moved}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "urn:m", "retried")
	if err != nil || string(got.Event.Data()) != "r2" {
		t.Errorf("Get after an append past the migration: %q, %v; want r2", got.Event.Data(), err)
	}
	p, err := s.Query(ctx, sinks.Query{Type: "com.a", Source: "urn:m"})
	if err != nil || len(p.Records) != 1 || p.Records[0].Event.ID() != "tie" {
		t.Errorf("Query type com.a after the move: %d records, %v; want only tie", len(p.Records), err)
	}
	s.Close()
	open(t, cfg).Close() // a second start finds nothing to do
}
