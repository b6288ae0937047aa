package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

var _ sinks.TreeStore = (*Store)(nil)

// errTreeMoved: a run does not start where its level ends (another writer
// extended it first).
var errTreeMoved = errors.New("the tree moved on")

// AppendTree stores runs of log's tree in one transaction, through
// statements prepared once on the store's tree connection.
func (s *Store) AppendTree(ctx context.Context, log string, runs []sinks.HashRun) error {
	if s.closed.Load() {
		return sinks.ErrClosed
	}
	if len(runs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: tree of log %q: %w", s, log, err)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err := s.onTree(ctx, func(w *writer, run context.Context) error {
		// Where each level ends is read once; the runs of a level follow
		// each other.
		var ends [256]int64
		var read [256]bool
		for _, r := range runs {
			if !read[r.Level] {
				var err error
				if ends[r.Level], err = w.levelEnd(run, log, r.Level); err != nil {
					return fmt.Errorf("level %d: %w", r.Level, err)
				}
				read[r.Level] = true
			}
			if uint64(ends[r.Level]) != r.Start {
				return fmt.Errorf("level %d: a run from %d, but the level ends at %d: %w", r.Level, r.Start, ends[r.Level], errTreeMoved)
			}
			if _, err := w.insertTree.(driver.StmtExecContext).ExecContext(run,
				named(log, int64(r.Level), int64(r.Start), int64(r.End()), r.Hashes)); err != nil {
				return fmt.Errorf("level %d from %d: %w", r.Level, r.Start, err)
			}
			ends[r.Level] = int64(r.End())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: tree of log %q: %w", s, log, err)
	}
	return nil
}

// onTree runs f in a transaction on the store's writing connection, the
// one the entries are appended on, so that the tree's writes do not make
// it drop its page cache as another connection's commits would (SQLite
// cannot tell which pages those changed). The caller holds wmu. The
// transaction commits without waiting for the disk (synchronous=NORMAL):
// the tree is computed from the entries, so a crash that loses its last
// commits loses nothing the next start does not compute again, and the
// next commit of entries, which syncs the log, makes them durable with
// it. f's statements run on run, ctx without its cancellation (see
// Append).
func (s *Store) onTree(ctx context.Context, f func(w *writer, run context.Context) error) error {
	if err := s.writer(ctx); err != nil {
		return err
	}
	w := s.w
	err := w.conn.Raw(func(dc any) error {
		c, ok := dc.(driver.ConnBeginTx)
		if !ok {
			return errors.New("driver cannot begin with a context")
		}
		run := context.WithoutCancel(ctx)
		if _, err := w.syncNormal.(driver.StmtExecContext).ExecContext(run, nil); err != nil {
			return err
		}
		err := func() error {
			tx, err := c.BeginTx(run, driver.TxOptions{})
			if err != nil {
				return err
			}
			if err := f(w, run); err != nil {
				_ = tx.Rollback()
				return err
			}
			return tx.Commit()
		}()
		if _, e := w.syncBack.(driver.StmtExecContext).ExecContext(run, nil); e != nil && err == nil {
			err = e
		}
		return err
	})
	s.broke(err)
	return err
}

// levelEnd is where level of log's tree ends.
func (w *writer) levelEnd(ctx context.Context, log string, level uint8) (int64, error) {
	var n int64
	err := w.query(ctx, w.treeEnd, named(log, int64(level)), func(row []driver.Value) { n, _ = row[0].(int64) })
	return n, err
}

// TreeHashes reads the hashes of nodes from..to-1 of level in log's tree.
func (s *Store) TreeHashes(ctx context.Context, log string, level uint8, from, to uint64) ([]byte, error) {
	if s.closed.Load() {
		return nil, sinks.ErrClosed
	}
	if to <= from {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT start, hashes FROM tree_hashes
		WHERE log = ? AND level = ? AND "end" > ? AND start < ? ORDER BY "end" LIMIT ?`,
		log, level, int64(from), int64(to), int64(to-from))
	if err != nil {
		return nil, fmt.Errorf("%s: tree of log %q: %w", s, log, err)
	}
	defer func() { _ = rows.Close() }()
	var runs []sinks.HashRun
	for rows.Next() {
		var r sinks.HashRun
		var start int64
		if err := rows.Scan(&start, &r.Hashes); err != nil {
			return nil, fmt.Errorf("%s: tree of log %q: %w", s, log, err)
		}
		r.Level, r.Start = level, uint64(start)
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: tree of log %q: %w", s, log, err)
	}
	return sinks.CutRuns(runs, log, level, from, to)
}

// TreeEnd is the number of hashes of level stored for log's tree.
func (s *Store) TreeEnd(ctx context.Context, log string, level uint8) (uint64, error) {
	if s.closed.Load() {
		return 0, sinks.ErrClosed
	}
	var n int64
	if err := s.db.QueryRowContext(ctx, treeEndSQL, log, level).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: tree of log %q, level %d: %w", s, log, level, err)
	}
	return uint64(n), nil
}

// treeEndSQL reads where a level of a log's tree ends.
const treeEndSQL = `SELECT coalesce(max("end"), 0) FROM tree_hashes WHERE log = ? AND level = ?`

// AppendCheckpoint stores one checkpoint of log.
func (s *Store) AppendCheckpoint(ctx context.Context, log string, c sinks.StoredCheckpoint) error {
	if s.closed.Load() {
		return sinks.ErrClosed
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err := s.onTree(ctx, func(w *writer, run context.Context) error {
		_, err := w.addCheckpoint.(driver.StmtExecContext).ExecContext(run, named(log, int64(c.Size), c.Time.UnixNano(), c.Note))
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: checkpoint of log %q: %w", s, log, err)
	}
	return nil
}

// LatestCheckpoint is log's checkpoint of the largest size, the latest
// of those.
func (s *Store) LatestCheckpoint(ctx context.Context, log string) (sinks.StoredCheckpoint, error) {
	if s.closed.Load() {
		return sinks.StoredCheckpoint{}, sinks.ErrClosed
	}
	var c sinks.StoredCheckpoint
	var size, at int64
	err := s.db.QueryRowContext(ctx, `SELECT size, time_ns, note FROM tree_checkpoints WHERE log = ?
		ORDER BY size DESC, time_ns DESC LIMIT 1`, log).Scan(&size, &at, &c.Note)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("%s: log %q: %w", s, log, sinks.ErrNoCheckpoint)
	}
	if err != nil {
		return c, fmt.Errorf("%s: checkpoint of log %q: %w", s, log, err)
	}
	c.Size, c.Time = uint64(size), time.Unix(0, at).UTC()
	return c, nil
}
