package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

// The statements that keep the per-minute counts of migration 0008.
const (
	addVersionCountsSQL = `INSERT INTO count_versions (minute, type, n, conflicts) VALUES (?, ?, ?, ?)
	ON CONFLICT (minute, type) DO UPDATE SET n = n + excluded.n, conflicts = conflicts + excluded.conflicts`
	addEntryCountsSQL = `INSERT INTO count_entries (minute, kind, n, routed) VALUES (?, ?, ?, ?)
	ON CONFLICT (minute, kind) DO UPDATE SET n = n + excluded.n, routed = routed + excluded.routed`
	// minuteSQL is sinks.MinuteOf of a column of nanoseconds.
	minuteSQL = `((%[1]s - ((%[1]s %% 60000000000) + 60000000000) %% 60000000000) / 60000000000)`
)

// rollupKey names a row of the counts: a minute and a type or a kind.
type rollupKey struct {
	minute int64
	name   string
}

// tally is what one Append adds to the counts: per minute and type the
// versions it stored and how many of them conflict, per minute and kind
// the entries it appended and how many of them have a route. Append adds
// it in its transaction, after its rows.
type tally struct {
	versions, entries map[rollupKey][2]int64
}

// version counts a version stored at its indexed time at (a's now when
// the record has none, as appendVersion stores it).
func (t *tally) version(r *sinks.Record, now time.Time, conflict bool) {
	at := r.Time()
	if at.IsZero() {
		at = now
	}
	if t.versions == nil {
		t.versions = map[rollupKey][2]int64{}
	}
	k := rollupKey{sinks.MinuteOf(at.UnixNano()), r.Event.Type()}
	c := t.versions[k]
	c[0]++
	if conflict {
		c[1]++
	}
	t.versions[k] = c
}

// entry counts an appended entry, timed now when its Time is zero.
func (t *tally) entry(en *sinks.Entry, now time.Time) {
	at := en.Time
	if at.IsZero() {
		at = now
	}
	if t.entries == nil {
		t.entries = map[rollupKey][2]int64{}
	}
	k := rollupKey{sinks.MinuteOf(at.UnixNano()), en.Kind}
	c := t.entries[k]
	c[0]++
	if en.Route != "" {
		c[1]++
	}
	t.entries[k] = c
}

// store adds the tally to the counts through w's statements.
func (t *tally) store(ctx context.Context, w *writer) error {
	for _, s := range []struct {
		rows map[rollupKey][2]int64
		st   driver.Stmt
		what string
	}{{t.versions, w.addVersionCounts, "versions"}, {t.entries, w.addEntryCounts, "entries"}} {
		for k, c := range s.rows {
			if _, err := s.st.(driver.StmtExecContext).ExecContext(ctx, named(k.minute, k.name, c[0], c[1])); err != nil {
				return fmt.Errorf("count the %s of %q in minute %s: %w", s.what, k.name,
					time.Unix(0, k.minute*int64(sinks.RollupGrain)).UTC().Format(time.RFC3339), err)
			}
		}
	}
	return nil
}

// retainCounts takes from the counts, in tx, the versions stored and the
// entries recorded before the instant before, which Retain is about to
// remove, and drops the rows that fall to nothing.
func retainCounts(ctx context.Context, tx *sql.Tx, before int64) error {
	m := fmt.Sprintf(minuteSQL, "time_ns")
	for _, st := range []string{
		`INSERT INTO count_versions (minute, type, n, conflicts)
		SELECT ` + m + ` AS m, type, -COUNT(*), -SUM(conflict) FROM versions WHERE stored_ns < ? GROUP BY m, type
		ON CONFLICT (minute, type) DO UPDATE SET n = n + excluded.n, conflicts = conflicts + excluded.conflicts`,
		`INSERT INTO count_entries (minute, kind, n, routed)
		SELECT ` + m + ` AS m, kind, -COUNT(*), -SUM(route <> '') FROM entries WHERE time_ns < ? GROUP BY m, kind
		ON CONFLICT (minute, kind) DO UPDATE SET n = n + excluded.n, routed = routed + excluded.routed`,
	} {
		if _, err := tx.ExecContext(ctx, st, before); err != nil {
			return fmt.Errorf("take the removed rows from the counts: %w", err)
		}
	}
	for _, st := range []string{
		`DELETE FROM count_versions WHERE n = 0 AND conflicts = 0`,
		`DELETE FROM count_entries WHERE n = 0 AND routed = 0`,
	} {
		if _, err := tx.ExecContext(ctx, st); err != nil {
			return fmt.Errorf("drop the emptied counts: %w", err)
		}
	}
	return nil
}
