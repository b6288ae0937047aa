package clickhouse

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/auditbus/auditbus/pkg/envconf"
	schema "github.com/auditbus/auditbus/schemas/clickhouse"
)

// queryPacket builds a client query packet the way the driver lays it out
// around the query text: a packet type, some fields, the length-prefixed
// text, then a data block.
func queryPacket(text string, tail []byte) []byte {
	b := []byte{clientQuery, 3, 'q', 'i', 'd', 0, 0}
	b = binary.AppendUvarint(b, uint64(len(text)))
	b = append(b, text...)
	return append(b, tail...)
}

func TestRewriteInsert(t *testing.T) {
	long := "INSERT INTO `db`.`t` (" + strings.Repeat("col, ", 40) + "x) FORMAT Native" // a two-byte length prefix
	for _, c := range []struct {
		name    string
		in      []byte
		rewrite bool
	}{
		{"insert", queryPacket("INSERT INTO t (a, b) FORMAT Native", []byte{2, 0}), true},
		{"lower case insert", queryPacket("insert into t (a) FORMAT Native", nil), true},
		{"long insert", queryPacket(long, []byte{2}), true},
		{"select", queryPacket("SELECT ' FORMAT Native'", nil), false},
		{"data packet holding the text", append([]byte{2, 0}, "INSERT INTO t FORMAT Native"...), false},
		{"text not at the end of the query", queryPacket("INSERT INTO t SELECT ' FORMAT Native' AS x", nil), false},
		{"empty", nil, false},
	} {
		out, ok := rewriteInsert(c.in)
		if ok != c.rewrite {
			t.Errorf("%s: rewritten %v, want %v", c.name, ok, c.rewrite)
			continue
		}
		if !ok {
			continue
		}
		want := bytes.Replace(c.in, []byte(" FORMAT Native"), []byte(" VALUES       "), 1)
		if !bytes.Equal(out, want) {
			t.Errorf("%s: got %q, want %q", c.name, out, want)
		}
		if bytes.Contains(c.in, []byte(" VALUES")) {
			t.Errorf("%s: the caller's buffer was changed", c.name)
		}
	}
}

func TestHourOf(t *testing.T) {
	for _, c := range []struct {
		ns   int64
		want uint32
	}{
		{0, 0}, {nsPerHour - 1, 0}, {nsPerHour, 1}, {-1, 0}, {-5 * nsPerHour, 0}, {1 << 62, 1281023},
	} {
		if got := hourOf(c.ns); got != c.want {
			t.Errorf("hourOf(%d) = %d, want %d", c.ns, got, c.want)
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"com.a.", "com.a/"}, {"a\xff", "b"}, {"\xff\xff", ""},
	} {
		got, ok := prefixEnd(c.in)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("prefixEnd(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
}

// TestMigrationsFor renders the schema for the measured old server and a
// modern one; only the old one runs in CI, so the modern DDL is checked here.
func TestMigrationsFor(t *testing.T) {
	render := func(version string, cluster string) string {
		t.Helper()
		v, err := parseVersion(version)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := loadMigrations(schema.Migrations, namesOf(Config{Database: "audit", Table: "ev", Cluster: cluster}), featuresOf(v))
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, m := range ms {
			for _, st := range m.stmts {
				if strings.Contains(st, "--") {
					t.Errorf("%s: comment left in a statement: %s", m.name, st)
				}
				b.WriteString(st + "\n;\n")
			}
		}
		return b.String()
	}
	old := render("18.16.1", "")
	for _, bad := range []string{"LowCardinality", "DateTime64", "TTL", "ON CLUSTER", "Replicated"} {
		if strings.Contains(old, bad) {
			t.Errorf("18.16 DDL uses %s:\n%s", bad, old)
		}
	}
	for _, want := range []string{
		"ENGINE = ReplacingMergeTree(version)", "`audit`.`ev_ids`", "ENGINE = ReplacingMergeTree(keep)",
		"ENGINE = MergeTree\nPARTITION BY toYYYYMMDD(toDateTime(hour * 3600, 'UTC'))\nORDER BY (log, seq)",
		"ENGINE = ReplacingMergeTree(seq)", "LEDGER `audit`.`ev`",
	} {
		if !strings.Contains(old, want) {
			t.Errorf("18.16 DDL lacks %q:\n%s", want, old)
		}
	}
	modern := render("24.8.4.13", "main")
	for _, want := range []string{
		"type        LowCardinality(String)", "DateTime64(9, 'UTC') MATERIALIZED fromUnixTimestamp64Nano(time_ns)",
		"`audit`.`ev` ON CLUSTER `main`", "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/audit.ev', '{replica}', version)",
		"ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/audit.ev_ids', '{replica}', version)",
		"CREATE TABLE IF NOT EXISTS `audit`.`ev_v2` ON CLUSTER `main` AS `audit`.`ev`",
		"ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/audit.ev_v2', '{replica}', version)",
		"SWAP `audit`.`ev` WITH `audit`.`ev_v2`",
		"ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/audit.ev_versions', '{replica}', keep)",
		"ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/audit.ev_identities', '{replica}', keep)",
		"ReplicatedMergeTree('/clickhouse/tables/{shard}/audit.ev_entries', '{replica}')",
		"ReplicatedMergeTree('/clickhouse/tables/{shard}/audit.ev_trails', '{replica}')",
		"ReplicatedMergeTree('/clickhouse/tables/{shard}/audit.ev_keys', '{replica}')",
		"ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/audit.ev_logs', '{replica}', seq)",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS `audit`.`ev_trails_mv` ON CLUSTER `main` TO `audit`.`ev_trails`",
		"log         LowCardinality(String)",
		"ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/audit.ev_version_counts', '{replica}')",
		"CREATE MATERIALIZED VIEW IF NOT EXISTS `audit`.`ev_entry_counts_mv` ON CLUSTER `main` TO `audit`.`ev_entry_counts`",
	} {
		if !strings.Contains(modern, want) {
			t.Errorf("24.8 DDL lacks %q:\n%s", want, modern)
		}
	}
	f := featuresOf(serverVersion{24, 8})
	if f.legacyWire || !f.ttl || !f.lowCardinality || !f.dateTime64 {
		t.Errorf("features of 24.8: %+v", f)
	}
	if f := featuresOf(serverVersion{18, 16}); !f.legacyWire || f.ttl || f.lowCardinality || f.dateTime64 {
		t.Errorf("features of 18.16: %+v", f)
	}
	if _, err := parseVersion("banana"); err == nil {
		t.Error("parseVersion accepted banana")
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"C_ADDRS": "ch1:9000, ch2:9440", "C_DATABASE": "audit", "C_TABLE": "ev", "C_CLUSTER": "main",
		"C_RETENTION": "720h", "C_TIMEOUT": "5s", "C_COMPAT": "LEGACY", "C_PASSWORD": "pw",
		"C_LOG": "pod-1", // not read: the daemon's AUDITBUS_LEDGER_LOG names the log
	}
	c, err := configFrom(envconf.WithLookup("C_", func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Addrs, "|") != "ch1:9000|ch2:9440" || c.Database != "audit" || c.Table != "ev" || c.Cluster != "main" ||
		c.Retention.Hours() != 720 || c.Timeout.Seconds() != 5 || c.Compat != CompatLegacy || c.Password != "pw" || c.Log != "" {
		t.Errorf("config: %+v", c)
	}
	bad := map[string]string{"C_TABLE": "ev; DROP TABLE x", "C_ADDRS": "nohost", "C_COMPAT": "maybe", "C_RETENTION": "soon"}
	_, err = configFrom(envconf.WithLookup("C_", func(k string) (string, bool) { v, ok := bad[k]; return v, ok }))
	for _, want := range []string{`C_COMPAT="maybe"`, `C_RETENTION="soon"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	delete(bad, "C_COMPAT")
	delete(bad, "C_RETENTION")
	_, err = configFrom(envconf.WithLookup("C_", func(k string) (string, bool) { v, ok := bad[k]; return v, ok }))
	for _, want := range []string{`C_TABLE="ev; DROP TABLE x"`, `C_ADDRS: "nohost"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	if _, err := (Config{Database: "1abc"}).withDefaults(); err == nil || !strings.Contains(err.Error(), "Database") {
		t.Errorf("bad database name: %v", err)
	}
}

func TestPageEnds(t *testing.T) {
	for _, c := range []struct {
		times []int64
		limit int
		want  []int
	}{
		{[]int64{1}, 3, []int{0}},
		{[]int64{1, 2, 3, 4, 5, 6, 7}, 3, []int{2, 5, 6}},
		{[]int64{1, 2, 3, 4, 5, 6}, 3, []int{2, 5}},
		{[]int64{1, 2, 2, 2, 2, 3, 4}, 2, []int{4, 6}},    // an instant is never cut
		{[]int64{5, 5, 5, 5}, 1, []int{3}},                // one instant, one page
		{[]int64{1, 2, 3, 3, 3, 3, 4, 5}, 3, []int{5, 7}}, // a page ending inside an instant runs to its end
	} {
		if got := pageEnds(c.times, c.limit); !slices.Equal(got, c.want) {
			t.Errorf("pageEnds(%v, %d) = %v, want %v", c.times, c.limit, got, c.want)
		}
	}
}
