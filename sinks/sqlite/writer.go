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
	entryCols   = 19
	// rowsPerStmt is how many rows one prepared insert stores. Several
	// rows per statement save the per-statement cost of the driver; few,
	// because the driver matches each parameter to its argument by a
	// linear search, so binding grows with the square of the parameter
	// count.
	rowsPerStmt = 8
	// lookupIDs and lookupVersions are how many identities and versions
	// one lookup statement asks for; a short group repeats its last one.
	lookupIDs      = 32
	lookupVersions = 32
	// chunkRecs is how many records are encoded ahead as one unit.
	chunkRecs = 128
)

// insertVersionsSQL stores n versions. Append looked them up in the same
// transaction, so a clash with a stored one is an error, not a skip.
func insertVersionsSQL(n int) string {
	return `INSERT INTO versions (source, id, digest, time_ns, stored_ns, type, subject, attrs, data, data_base64, conflict) VALUES ` +
		rows(n, versionCols)
}

// insertEntriesSQL stores n entries.
func insertEntriesSQL(n int) string {
	return `INSERT INTO entries (log, seq, key, time_ns, kind, source, id, digest, transport, topic, partition, "offset",
	request, principal, route, destination, attempts, error, replay) VALUES ` + rows(n, entryCols)
}

// rows is n groups of cols placeholders.
func rows(n, cols int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + "),"
	return strings.TrimSuffix(strings.Repeat(row, n), ",")
}

// versionsOfSQL reads the digests of every stored version of lookupIDs
// identities, in the order they were stored.
func versionsOfSQL() string {
	return `SELECT v.source, v.id, v.digest FROM (VALUES ` + rows(lookupIDs, 2) + `) p
	CROSS JOIN versions v ON v.source = p.column1 AND v.id = p.column2 ORDER BY v.vid`
}

// keysStoredSQL reads the entry keys of lookupVersions versions.
func keysStoredSQL() string {
	return `SELECT e.key FROM (VALUES ` + rows(lookupVersions, 3) + `) p
	CROSS JOIN entries e ON e.source = p.column1 AND e.id = p.column2 AND e.digest = p.column3`
}

// writer is the store's one writing connection with its prepared
// statements, used through the driver directly: database/sql would
// convert and copy every argument of every statement again, and the store
// already holds them as driver values.
type writer struct {
	conn *sql.Conn

	versionsMany, versionsOne driver.Stmt // of rowsPerStmt rows and of one
	entriesMany, entriesOne   driver.Stmt
	versionsOf, keysStored    driver.Stmt
	size, setSize             driver.Stmt

	all []*driver.Stmt
}

func openWriter(ctx context.Context, db *sql.DB) (*writer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &writer{conn: conn}
	w.all = []*driver.Stmt{&w.versionsMany, &w.versionsOne, &w.entriesMany, &w.entriesOne, &w.versionsOf, &w.keysStored, &w.size, &w.setSize}
	texts := []string{insertVersionsSQL(rowsPerStmt), insertVersionsSQL(1), insertEntriesSQL(rowsPerStmt), insertEntriesSQL(1),
		versionsOfSQL(), keysStoredSQL(), `SELECT size FROM logs WHERE name = ?`,
		`INSERT INTO logs (name, size) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET size = excluded.size`}
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return errors.New("driver cannot prepare with a context")
		}
		for i, st := range w.all {
			var err error
			if *st, err = c.PrepareContext(ctx, texts[i]); err != nil {
				return fmt.Errorf("prepare %.40q: %w", texts[i], err)
			}
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

// insert runs many (of rowsPerStmt rows) and one (of one row) over vals,
// rows of cols values each.
func (w *writer) insert(ctx context.Context, many, one driver.Stmt, cols int, vals []any) error {
	args := make([]driver.NamedValue, rowsPerStmt*cols)
	for i := 0; i < len(vals); {
		st, n := many, rowsPerStmt*cols
		if len(vals)-i < n {
			st, n = one, cols
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
