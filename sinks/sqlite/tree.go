package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

var _ sinks.TreeStore = (*Store)(nil)

// errTreeMoved: a run does not start where its level ends (another writer
// extended it first).
var errTreeMoved = errors.New("the tree moved on")

// AppendTree stores runs of log's tree in one transaction.
func (s *Store) AppendTree(ctx context.Context, log string, runs []sinks.HashRun) error {
	if s.closed.Load() {
		return sinks.ErrClosed
	}
	if len(runs) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	conn, err := s.treeConn(ctx)
	if err != nil {
		return fmt.Errorf("%s: tree of log %q: %w", s, log, err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: tree of log %q: %w", s, log, err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, r := range runs {
		var end int64
		if err := tx.QueryRowContext(ctx, treeEndSQL, log, r.Level).Scan(&end); err != nil {
			return fmt.Errorf("%s: tree of log %q, level %d: %w", s, log, r.Level, err)
		}
		if uint64(end) != r.Start {
			return fmt.Errorf("%s: tree of log %q, level %d: a run from %d, but the level ends at %d: %w",
				s, log, r.Level, r.Start, end, errTreeMoved)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tree_hashes (log, level, start, "end", hashes) VALUES (?, ?, ?, ?, ?)`,
			log, r.Level, int64(r.Start), int64(r.End()), r.Hashes); err != nil {
			return fmt.Errorf("%s: tree of log %q, level %d from %d: %w", s, log, r.Level, r.Start, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: tree of log %q: %w", s, log, err)
	}
	return nil
}

// treeConn is the connection tree hashes and checkpoints are written on,
// opened on first use; the caller holds wmu. It commits without waiting
// for the disk (synchronous=NORMAL): the tree is computed from the
// entries, so a crash that loses its last commits loses nothing the next
// start does not compute again, and the next commit of entries, which
// syncs the log, makes them durable with it.
func (s *Store) treeConn(ctx context.Context) (*sql.Conn, error) {
	if s.tree != nil {
		return s.tree, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		_ = conn.Close()
		return nil, err
	}
	s.tree = conn
	return conn, nil
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
	conn, err := s.treeConn(ctx)
	if err != nil {
		return fmt.Errorf("%s: checkpoint of log %q: %w", s, log, err)
	}
	if _, err := conn.ExecContext(ctx, `INSERT INTO tree_checkpoints (log, size, time_ns, note) VALUES (?, ?, ?, ?)`,
		log, int64(c.Size), c.Time.UnixNano(), c.Note); err != nil {
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
