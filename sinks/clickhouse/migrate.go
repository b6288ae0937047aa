package clickhouse

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/auditbus/auditbus/sinks"
)

// serverVersion is a parsed SELECT version(), such as "18.16.1".
type serverVersion struct{ major, minor int }

func parseVersion(s string) (serverVersion, error) {
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return serverVersion{}, fmt.Errorf("server version %q: want major.minor[.patch]", s)
	}
	maj, err1 := strconv.Atoi(parts[0])
	min, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return serverVersion{}, fmt.Errorf("server version %q: want major.minor[.patch]", s)
	}
	return serverVersion{maj, min}, nil
}

func (v serverVersion) atLeast(major, minor int) bool {
	return v.major > major || v.major == major && v.minor >= minor
}

func (v serverVersion) String() string { return fmt.Sprintf("%d.%d", v.major, v.minor) }

// features are what the server's version allows beyond 18.16's baseline.
type features struct {
	legacyWire     bool // inserts need LegacyDialer (before 19.1)
	lowCardinality bool // LowCardinality without the experimental setting (19.1)
	ttl            bool // table TTL (19.6)
	dateTime64     bool // DateTime64 and fromUnixTimestamp64Nano (20.5)
}

func featuresOf(v serverVersion) features {
	return features{
		legacyWire:     !v.atLeast(19, 1),
		lowCardinality: v.atLeast(19, 1),
		ttl:            v.atLeast(19, 6),
		dateTime64:     v.atLeast(20, 5),
	}
}

// names are the store's quoted, qualified object names.
type names struct {
	db, table, ids, idsView, versions string
	next, prev                        string // the events table's rebuild and its predecessor during 0002
	preLedger                         string // the events table once 0003 moved its rows into the ledger
	migrating                         string // 0003's scratch table
	// The ledger's tables and the views feeding them.
	vers, idents, identsView                                    string
	entries, trails, trailsView, keys, keysView, logs, logsView string
	treeHashes, treeCheckpoints                                 string
	vcounts, vcountsView, ecounts, ecountsView                  string
	cluster                                                     string // raw cluster name, "" for none
	dbRaw, tableRaw                                             string
}

func namesOf(c Config) names {
	q := func(s string) string { return "`" + c.Database + "`.`" + s + "`" }
	t := func(suffix string) string { return q(c.Table + "_" + suffix) }
	return names{
		db: "`" + c.Database + "`", table: q(c.Table), ids: t("ids"),
		idsView: t("ids_mv"), versions: t("schema_version"),
		next: t("v2"), prev: t("v1"), preLedger: t("pre_ledger"), migrating: t("migrating"),
		vers: t("versions"), idents: t("identities"), identsView: t("identities_mv"),
		entries: t("entries"), trails: t("trails"), trailsView: t("trails_mv"),
		keys: t("keys"), keysView: t("keys_mv"), logs: t("logs"), logsView: t("logs_mv"),
		treeHashes: t("tree_hashes"), treeCheckpoints: t("tree_checkpoints"),
		vcounts: t("version_counts"), vcountsView: t("version_counts_mv"), ecounts: t("entry_counts"), ecountsView: t("entry_counts_mv"),
		cluster: c.Cluster, dbRaw: c.Database, tableRaw: c.Table,
	}
}

func (n names) onCluster() string {
	if n.cluster == "" {
		return ""
	}
	return " ON CLUSTER `" + n.cluster + "`"
}

// engine is the engine clause of the table whose suffix is given ("events"
// for the events table, "ids" for the identity table) in schemas 1 and 2.
func (n names) engine(which string) string {
	if which == "events" {
		return n.mergeTree("", "Replacing", "version")
	}
	return n.mergeTree(which, "Replacing", "version")
}

// mergeTree is the engine clause of the table with the given suffix ("" for
// the events table itself): kind "" for MergeTree, "Replacing" with its
// version column for ReplacingMergeTree, Replicated on a cluster.
func (n names) mergeTree(suffix, kind, version string) string {
	if n.cluster == "" {
		if version == "" {
			return kind + "MergeTree"
		}
		return kind + "MergeTree(" + version + ")"
	}
	t := n.tableRaw
	if suffix != "" {
		t += "_" + suffix
	}
	args := fmt.Sprintf("'/clickhouse/tables/{shard}/%s.%s', '{replica}'", n.dbRaw, t)
	if version != "" {
		args += ", " + version
	}
	return "Replicated" + kind + "MergeTree(" + args + ")"
}

// templateData is what migration templates see; see schemas/clickhouse.
type templateData struct {
	DB, Table, IDs, IDsView, OnCluster                          string
	Next, Prev                                                  string
	Versions, Identities, IdentitiesView                        string
	Entries, Trails, TrailsView, Keys, KeysView, Logs, LogsView string
	TreeHashes, TreeCheckpoints                                 string
	VersionCounts, VersionCountsView                            string
	EntryCounts, EntryCountsView                                string
	VersionCountsSelect, EntryCountsSelect                      string
	LowCardinality                                              string
	DateTime64                                                  bool
	n                                                           names
}

// Engine is the engine clause for the table named by which, in schemas 1
// and 2.
func (d templateData) Engine(which string) string { return d.n.engine(which) }

// Replacing is the ReplacingMergeTree engine clause for the ledger's table
// with the suffix which, versioned by the column version.
func (d templateData) Replacing(which, version string) string {
	return d.n.mergeTree(which, "Replacing", version)
}

// Summing is the SummingMergeTree engine clause for the table with the
// suffix which.
func (d templateData) Summing(which string) string { return d.n.mergeTree(which, "Summing", "") }

// Plain is the MergeTree engine clause for the ledger's table with the
// suffix which.
func (d templateData) Plain(which string) string { return d.n.mergeTree(which, "", "") }

// migration is one numbered schema step, rendered into statements.
type migration struct {
	version int
	name    string
	stmts   []string
}

// loadMigrations renders the NNNN_name.sql templates in fsys for the
// server's features, in version order, insisting the numbers run 1, 2, 3...
func loadMigrations(fsys fs.FS, n names, f features) ([]migration, error) {
	files, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	data := templateData{
		DB: n.db, Table: n.table, IDs: n.ids, IDsView: n.idsView, OnCluster: n.onCluster(), Next: n.next, Prev: n.prev,
		Versions: n.vers, Identities: n.idents, IdentitiesView: n.identsView,
		Entries: n.entries, Trails: n.trails, TrailsView: n.trailsView, Keys: n.keys, KeysView: n.keysView,
		Logs: n.logs, LogsView: n.logsView, TreeHashes: n.treeHashes, TreeCheckpoints: n.treeCheckpoints,
		VersionCounts: n.vcounts, VersionCountsView: n.vcountsView, EntryCounts: n.ecounts, EntryCountsView: n.ecountsView,
		VersionCountsSelect: versionCountsSelect(n.vers), EntryCountsSelect: entryCountsSelect(n.entries),
		LowCardinality: "String", DateTime64: f.dateTime64, n: n,
	}
	if f.lowCardinality {
		data.LowCardinality = "LowCardinality(String)"
	}
	var ms []migration
	for _, file := range files {
		num, _, ok := strings.Cut(file, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("clickhouse: migration %q: name must be NNNN_name.sql", file)
		}
		src, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, err
		}
		tmpl, err := template.New(file).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("clickhouse: migration %s: %w", file, err)
		}
		var out bytes.Buffer
		if err := tmpl.Execute(&out, data); err != nil {
			return nil, fmt.Errorf("clickhouse: migration %s: %w", file, err)
		}
		m := migration{version: v, name: file}
		for _, st := range strings.Split(out.String(), "\n;\n") {
			if st = strings.TrimSpace(stripComments(st)); st != "" {
				m.stmts = append(m.stmts, st)
			}
		}
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("clickhouse: migration %q: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// stripComments drops whole-line "--" comments, which old servers reject
// in front of some statements.
func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// migrate creates the database and version table if needed, refuses a
// schema newer than ms know, and applies the pending migrations, recording
// each after all its statements ran.
func migrate(ctx context.Context, conn driver.Conn, n names, ms []migration, where string) error {
	for _, st := range []string{
		"CREATE DATABASE IF NOT EXISTS " + n.db + n.onCluster(),
		"CREATE TABLE IF NOT EXISTS " + n.versions + n.onCluster() +
			" (version UInt32, name String, applied DateTime('UTC')) ENGINE = MergeTree ORDER BY version",
	} {
		if err := conn.Exec(ctx, st); err != nil {
			return fmt.Errorf("%s: create schema version table %s: %w", where, n.versions, err)
		}
	}
	var have uint32
	if err := conn.QueryRow(ctx, "SELECT toUInt32(max(version)) FROM "+n.versions).Scan(&have); err != nil {
		return fmt.Errorf("%s: read schema version from %s: %w", where, n.versions, err)
	}
	if int(have) > len(ms) {
		return fmt.Errorf("%w: %s table %s has schema version %d, this build knows up to %d; upgrade auditbus",
			sinks.ErrSchemaTooNew, where, n.table, have, len(ms))
	}
	for _, m := range ms[have:] {
		for _, st := range m.stmts {
			if step := dataSteps[strings.SplitN(st, " ", 2)[0]]; step != nil {
				if err := step(ctx, conn, n); err != nil {
					return fmt.Errorf("%s: migration %s: %w", where, m.name, err)
				}
				continue
			}
			if err := conn.Exec(ctx, st); err != nil {
				return fmt.Errorf("%s: migration %s: %w", where, m.name, err)
			}
		}
		if err := conn.Exec(ctx, "INSERT INTO "+n.versions+" (version, name, applied) SELECT ?, ?, now()", m.version, m.name); err != nil {
			return fmt.Errorf("%s: record migration %s: %w", where, m.name, err)
		}
	}
	return nil
}

// dataSteps run the statements of migrations that are not SQL, by their
// first word: "SWAP <table> WITH <next>" rebuilds the events table (0002),
// "LEDGER <table>" moves its rows into the ledger (0003), "TRACECOLUMNS"
// adds the entries' trace columns where missing (0005), "SIGNATURECOLUMN"
// their signature column (0006), "COUNTS" fills the per-minute counts
// (0007).
var dataSteps = map[string]func(ctx context.Context, conn driver.Conn, n names) error{
	"SWAP":            swapEvents,
	"LEDGER":          moveToLedger,
	"TRACECOLUMNS":    addTraceColumns,
	"SIGNATURECOLUMN": addSignatureColumn,
	"COUNTS":          fillCounts,
}

// swapEvents copies the events table's rows into its rebuild n.next and
// renames the rebuild into its place, dropping the old table. Each step
// can fail or be cut short and the whole run again, as migrations are:
//
//   - while the events table exists and n.prev does not, the copy is not
//     known to be complete: n.next is emptied, filled from the events
//     table, and the events table renamed to n.prev;
//   - while the events table is missing, n.next holds the complete copy
//     and is renamed into its place;
//   - then n.prev, and an n.next the migration re-created after an
//     earlier run had already swapped, are dropped.
func swapEvents(ctx context.Context, conn driver.Conn, n names) error {
	exists := func(quoted string) (bool, error) { return tableExists(ctx, conn, n, quoted) }
	exec := func(st string) error {
		if err := conn.Exec(ctx, st); err != nil {
			return fmt.Errorf("rebuild %s: %w", n.table, err)
		}
		return nil
	}
	table, err := exists(n.table)
	if err != nil {
		return err
	}
	prev, err := exists(n.prev)
	if err != nil {
		return err
	}
	if table && !prev {
		for _, st := range []string{
			"TRUNCATE TABLE " + n.next + n.onCluster(),
			"INSERT INTO " + n.next + " SELECT * FROM " + n.table,
			"RENAME TABLE " + n.table + " TO " + n.prev + n.onCluster(),
		} {
			if err := exec(st); err != nil {
				return err
			}
		}
		table = false
	}
	if !table {
		next, err := exists(n.next)
		if err != nil {
			return err
		}
		if !next {
			return fmt.Errorf("rebuild %s: neither it nor its rebuild %s exists; its rows are in %s", n.table, n.next, n.prev)
		}
		if err := exec("RENAME TABLE " + n.next + " TO " + n.table + n.onCluster()); err != nil {
			return err
		}
	}
	for _, t := range []string{n.prev, n.next} {
		if err := exec("DROP TABLE IF EXISTS " + t + n.onCluster()); err != nil {
			return err
		}
	}
	return nil
}

// tableExists reports whether the table quoted (`db`.`name`) exists.
func tableExists(ctx context.Context, conn driver.Conn, n names, quoted string) (bool, error) {
	var c uint64
	err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", n.dbRaw, tableName(quoted)).Scan(&c)
	if err != nil {
		return false, fmt.Errorf("look up table %s: %w", quoted, err)
	}
	return c > 0, nil
}
