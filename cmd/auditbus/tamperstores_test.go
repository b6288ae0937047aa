package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/clickhouse"
	"github.com/auditbus/auditbus/sinks/sqlite"
)

// TestTamperSQLite: every tamper case on the embedded store.
func TestTamperSQLite(t *testing.T) {
	runTamper(t, func(t *testing.T) ledgerStore { return &sqliteLedger{dir: t.TempDir()} })
}

// TestTamperClickHouse: every tamper case on ClickHouse, for real.
func TestTamperClickHouse(t *testing.T) {
	if resp, err := http.Get(chHTTP + "/ping"); err == nil {
		resp.Body.Close()
	} else if os.Getenv("CI") == "true" {
		t.Fatalf("ClickHouse is not reachable at %s (bash deploy/test-services.sh up): %v", chHTTP, err)
	} else {
		t.Skipf("ClickHouse is not reachable at %s (bash deploy/test-services.sh up): %v", chHTTP, err)
	}
	runTamper(t, func(t *testing.T) ledgerStore {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		s := &chLedger{db: "auditbus_tamper_" + hex.EncodeToString(b)}
		t.Cleanup(func() { s.run(t, "DROP DATABASE IF EXISTS "+s.db) })
		return s
	})
}

// sqliteLedger is the embedded store in dir.
type sqliteLedger struct{ dir string }

func (s *sqliteLedger) env() []string {
	return []string{"AUDITBUS_STORE=sqlite", "AUDITBUS_DATA_DIR=" + s.dir}
}

func (s *sqliteLedger) exec(t *testing.T, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(s.dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, st := range stmts {
		res, err := db.Exec(st)
		if err != nil {
			t.Fatalf("%s: %v", st, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			t.Fatalf("%s: changed nothing", st)
		}
	}
}

func (s *sqliteLedger) changeData(t *testing.T, id string) {
	s.exec(t, fmt.Sprintf(`UPDATE versions SET data = CAST(replace(CAST(data AS TEXT), ':', ' :') AS BLOB) WHERE id = '%s'`, id))
}

func (s *sqliteLedger) update(t *testing.T, set, where string) {
	s.exec(t, "UPDATE entries SET "+set+" WHERE log = 'tamper' AND "+where)
}

func (s *sqliteLedger) remove(t *testing.T, where string) {
	s.exec(t, "DELETE FROM entries WHERE log = 'tamper' AND "+where)
}

func (s *sqliteLedger) clearTree(t *testing.T) { s.exec(t, "DELETE FROM tree_hashes") }

func (s *sqliteLedger) swap(t *testing.T, a, b uint64) {
	s.exec(t, fmt.Sprintf("UPDATE entries SET seq = -1 WHERE log = 'tamper' AND seq = %d", a),
		fmt.Sprintf("UPDATE entries SET seq = %d WHERE log = 'tamper' AND seq = %d", a, b),
		fmt.Sprintf("UPDATE entries SET seq = %d WHERE log = 'tamper' AND seq = -1", b))
}

func (s *sqliteLedger) open(t *testing.T) interface {
	sinks.Store
	sinks.TreeStore
} {
	st, err := sqlite.Open(context.Background(), s.dir, sqlite.Options{Log: "attacker"})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// chHTTP is the ClickHouse server's HTTP interface, which runs the
// tampering statements.
const chHTTP = "http://127.0.0.1:8123"

// chLedger is a ClickHouse database of its own.
type chLedger struct{ db string }

func (s *chLedger) env() []string {
	return []string{"AUDITBUS_STORE=clickhouse", "AUDITBUS_CLICKHOUSE_ADDRS=127.0.0.1:9000", "AUDITBUS_CLICKHOUSE_DATABASE=" + s.db}
}

// run sends one statement to the HTTP interface and returns its answer.
func (s *chLedger) run(t *testing.T, stmt string) string {
	t.Helper()
	resp, err := http.Post(chHTTP+"/?"+url.Values{"query": {stmt}}.Encode(), "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", stmt, resp.StatusCode, b)
	}
	return strings.TrimSpace(string(b))
}

// mutate runs an ALTER ... UPDATE or DELETE and waits for the mutation.
func (s *chLedger) mutate(t *testing.T, stmt string) {
	t.Helper()
	s.run(t, stmt)
	waitFor(t, "the mutation "+stmt, 60*time.Second, func() bool {
		return s.run(t, "SELECT count() FROM system.mutations WHERE database = '"+s.db+"' AND is_done = 0") == "0"
	})
}

func (s *chLedger) table(name string) string { return s.db + ".events_" + name }

func (s *chLedger) changeData(t *testing.T, id string) {
	s.mutate(t, "ALTER TABLE "+s.table("versions")+" UPDATE data = replaceOne(data, ':', ' :') WHERE id = '"+id+"'")
}

func (s *chLedger) update(t *testing.T, set, where string) {
	s.mutate(t, "ALTER TABLE "+s.table("entries")+" UPDATE "+set+" WHERE log = 'tamper' AND "+where)
}

func (s *chLedger) remove(t *testing.T, where string) {
	s.mutate(t, "ALTER TABLE "+s.table("entries")+" DELETE WHERE log = 'tamper' AND "+where)
}

func (s *chLedger) clearTree(t *testing.T) { s.run(t, "TRUNCATE TABLE "+s.table("tree_hashes")) }

// swap copies the two entries aside, deletes them and inserts them back
// with each other's seq (seq is in the sorting key, which no mutation
// changes).
func (s *chLedger) swap(t *testing.T, a, b uint64) {
	cols := strings.Split(s.run(t, "SELECT arrayStringConcat(groupArray(name), ',') FROM system.columns WHERE database = '"+s.db+
		"' AND table = 'events_entries' AND default_kind != 'MATERIALIZED'"), ",")
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = "`" + c + "`"
		if c == "seq" {
			sel[i] = fmt.Sprintf("if(seq = %d, toUInt64(%d), toUInt64(%d)) AS seq", a, b, a)
		}
	}
	where := fmt.Sprintf("log = 'tamper' AND seq IN (%d, %d)", a, b)
	s.run(t, "CREATE TABLE "+s.table("swap")+" ENGINE = Memory AS SELECT * FROM "+s.table("entries")+" WHERE "+where)
	s.mutate(t, "ALTER TABLE "+s.table("entries")+" DELETE WHERE "+where)
	s.run(t, "INSERT INTO "+s.table("entries")+" ("+strings.Join(quote(cols), ",")+") SELECT "+strings.Join(sel, ",")+" FROM "+s.table("swap"))
}

func quote(cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = "`" + c + "`"
	}
	return out
}

func (s *chLedger) open(t *testing.T) interface {
	sinks.Store
	sinks.TreeStore
} {
	st, err := clickhouse.Open(context.Background(), clickhouse.Config{Addrs: []string{"127.0.0.1:9000"}, Database: s.db, Log: "attacker"})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
