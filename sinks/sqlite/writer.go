package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	// versionCols and entryCols are the values one row of
	// insertVersionsSQL and insertEntriesSQL binds.
	versionCols = 11
	entryCols   = 21
	// lookupIDs and lookupVersions are how many identities and versions
	// one lookup statement asks for; a short group repeats its last one.
	lookupIDs      = 32
	lookupVersions = 32
	// chunkRecs is how many records are encoded ahead as one unit.
	chunkRecs = 128
)

// versionRows and entryRows are how many rows one prepared insert
// stores. Several rows per statement save the per-statement cost of the
// driver; few, because the driver matches each parameter to its argument
// by a linear search, so binding grows with the square of the parameter
// count: of the instructions an Append runs, 8-row statements of entries
// (144 parameters) took 5% more than 4-row ones, and 3 rows saved another
// 1% only (callgrind). 4 entries are also what one record of a route with
// three destinations holds.
const versionRows, entryRows = 8, 4

// insertVersionsSQL stores n versions. Append looked them up in the same
// transaction, so a clash with a stored one is an error, not a skip: OR
// FAIL ends the statement there, and Append rolls the whole transaction
// back. (With the default, ABORT, SQLite keeps a statement journal of
// every multi-row statement to undo just that statement.)
func insertVersionsSQL(n int) string {
	return `INSERT OR FAIL INTO versions (source, id, digest, time_ns, stored_ns, type, subject, attrs, data, data_base64, conflict) VALUES ` +
		rows(n, versionCols, "")
}

// insertEntriesSQL stores n entries to log, which is a valid log name
// (sinks.ValidLogName: no quotes). A store writes one log, so the name is
// a constant of the statement rather than a parameter of every row.
func insertEntriesSQL(n int, log string) string {
	return `INSERT OR FAIL INTO entries (log, seq, key, time_ns, kind, source, id, digest, transport, topic, partition, "offset",
	request, principal, route, destination, attempts, error, replay, trace_id, span_id, signature) VALUES ` + rows(n, entryCols, "'"+log+"'")
}

// rows is n groups of cols placeholders, after first in each group if
// it is set.
func rows(n, cols int, first string) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + "),"
	if first != "" {
		row = "(" + first + "," + row[1:]
	}
	return strings.TrimSuffix(strings.Repeat(row, n), ",")
}

// versionsOfSQL reads the digests of every stored version of lookupIDs
// identities, in the order they were stored.
func versionsOfSQL() string {
	return `SELECT v.source, v.id, v.digest FROM (VALUES ` + rows(lookupIDs, 2, "") + `) p
	CROSS JOIN versions v ON v.source = p.column1 AND v.id = p.column2 ORDER BY v.vid`
}

// keysStoredSQL reads the entry keys of lookupVersions versions.
func keysStoredSQL() string {
	return `SELECT e.key FROM (VALUES ` + rows(lookupVersions, 3, "") + `) p
	CROSS JOIN entries e ON e.source = p.column1 AND e.id = p.column2 AND e.digest = p.column3`
}

// writer is the store's one writing connection with its prepared
// statements, used through the driver directly: database/sql would
// convert and copy every argument of every statement again, and the store
// already holds them as driver values.
type writer struct {
	conn *sql.Conn

	versions, entries      inserts
	versionsOf, keysStored driver.Stmt
	size, setSize          driver.Stmt
	// addVersionCounts and addEntryCounts add to the per-minute counts.
	addVersionCounts, addEntryCounts driver.Stmt
	// treeEnd and insertTree read where a level of a log's tree ends and
	// add a run to it: level 0 beside the entries (appender.storeLeaves),
	// the rest with the checkpoints (addCheckpoint, see Store.AppendTree)
	// between syncNormal and syncBack, which set the synchronous pragma
	// to NORMAL and back to the store's.
	treeEnd, insertTree, addCheckpoint driver.Stmt
	syncNormal, syncBack               driver.Stmt

	all []*driver.Stmt
}

// inserts are the prepared inserts of one table: many stores rows rows
// of cols values, one a single row.
type inserts struct {
	many, one  driver.Stmt
	rows, cols int
}

// openWriter opens the writing connection of a store appending to log
// whose synchronous pragma is sync.
func openWriter(ctx context.Context, db *sql.DB, log, sync string) (*writer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &writer{conn: conn, versions: inserts{rows: versionRows, cols: versionCols}, entries: inserts{rows: entryRows, cols: entryCols}}
	w.all = []*driver.Stmt{&w.versions.many, &w.versions.one, &w.entries.many, &w.entries.one, &w.versionsOf, &w.keysStored, &w.size, &w.setSize,
		&w.addVersionCounts, &w.addEntryCounts, &w.treeEnd, &w.insertTree, &w.addCheckpoint, &w.syncNormal, &w.syncBack}
	texts := []string{insertVersionsSQL(versionRows), insertVersionsSQL(1), insertEntriesSQL(entryRows, log), insertEntriesSQL(1, log),
		versionsOfSQL(), keysStoredSQL(), `SELECT size FROM logs WHERE name = ?`,
		// The store updates bookkeeping beside the entries only, never an
		// entry or a version: a log's size here, the per-minute counts
		// (addVersionCountsSQL, addEntryCountsSQL).
		`INSERT INTO logs (name, size) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET size = excluded.size`,
		addVersionCountsSQL, addEntryCountsSQL,
		treeEndSQL, `INSERT INTO tree_hashes (log, level, start, "end", hashes) VALUES (?, ?, ?, ?, ?)`,
		`INSERT INTO tree_checkpoints (log, size, time_ns, note) VALUES (?, ?, ?, ?)`,
		`PRAGMA synchronous = NORMAL`, `PRAGMA synchronous = ` + sync}
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return errors.New("driver cannot prepare with a context")
		}
		for i, st := range w.all {
			// Only a statement that prepared is kept: on an error the
			// driver may return a typed nil, which close would call.
			p, err := c.PrepareContext(ctx, texts[i])
			if err != nil {
				return fmt.Errorf("prepare %.40q: %w", texts[i], err)
			}
			*st = p
		}
		return nil
	})
	if err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *writer) close() {
	_ = w.conn.Raw(func(any) error {
		for _, st := range w.all {
			if *st != nil {
				_ = (*st).Close()
			}
		}
		return nil
	})
	_ = w.conn.Close()
}

// insert stores vals, rows of ins.cols values each.
func (ins *inserts) insert(ctx context.Context, vals []any) error {
	args := make([]driver.NamedValue, ins.rows*ins.cols)
	for i := 0; i < len(vals); {
		st, n := ins.many, ins.rows*ins.cols
		if len(vals)-i < n {
			st, n = ins.one, ins.cols
		}
		for j := range n {
			args[j] = driver.NamedValue{Ordinal: j + 1, Value: vals[i+j]}
		}
		if _, err := st.(driver.StmtExecContext).ExecContext(ctx, args[:n]); err != nil {
			return err
		}
		i += n
	}
	return nil
}

// query runs st and hands each row to use; the row's values are valid
// only during the call.
func (w *writer) query(ctx context.Context, st driver.Stmt, args []driver.NamedValue, use func(row []driver.Value)) error {
	rs, err := st.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		return err
	}
	defer func() { _ = rs.Close() }()
	row := make([]driver.Value, len(rs.Columns()))
	for {
		if err := rs.Next(row); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		use(row)
	}
}

// logSize is the last seq of log, 0 for a log never written.
func (w *writer) logSize(ctx context.Context, log string) (uint64, error) {
	var n int64
	err := w.query(ctx, w.size, named(log), func(row []driver.Value) { n = row[0].(int64) })
	return uint64(n), err
}
