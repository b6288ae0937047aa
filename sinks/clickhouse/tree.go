package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

var _ sinks.TreeStore = (*Store)(nil)

// AppendTree stores runs of log's tree with one insert.
func (s *Store) AppendTree(ctx context.Context, log string, runs []sinks.HashRun) error {
	if len(runs) == 0 {
		return nil
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	logs, levels, starts, ends, hashes := make([]string, len(runs)), make([]uint8, len(runs)), make([]uint64, len(runs)),
		make([]uint64, len(runs)), make([]string, len(runs))
	for i, r := range runs {
		logs[i], levels[i], starts[i], ends[i], hashes[i] = log, r.Level, r.Start, r.End(), string(r.Hashes)
	}
	if err := insert(ctx, s.conn, s.n.treeHashes, "log, level, start, `end`, hashes",
		[]any{logs, levels, starts, ends, hashes}); err != nil {
		return fmt.Errorf("%s: tree of log %q: %w", s.name, log, err)
	}
	return nil
}

// TreeHashes reads the hashes of nodes from..to-1 of level in log's tree.
func (s *Store) TreeHashes(ctx context.Context, log string, level uint8, from, to uint64) ([]byte, error) {
	if to <= from {
		return nil, nil
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := s.conn.Query(ctx, "SELECT start, hashes FROM "+s.n.treeHashes+
		" WHERE log = ? AND level = ? AND `end` > ? AND start < ? ORDER BY `end` LIMIT ?",
		log, level, from, to, 2*(to-from))
	if err != nil {
		return nil, fmt.Errorf("%s: tree of log %q: %w", s.name, log, err)
	}
	defer func() { _ = rows.Close() }()
	var runs []sinks.HashRun
	for rows.Next() {
		var r sinks.HashRun
		var h string
		if err := rows.Scan(&r.Start, &h); err != nil {
			return nil, fmt.Errorf("%s: tree of log %q: %w", s.name, log, err)
		}
		r.Level, r.Hashes = level, []byte(h)
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: tree of log %q: %w", s.name, log, err)
	}
	return sinks.CutRuns(runs, log, level, from, to)
}

// TreeEnd is the number of hashes of level stored for log's tree.
func (s *Store) TreeEnd(ctx context.Context, log string, level uint8) (uint64, error) {
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT max(`end`) FROM "+s.n.treeHashes+" WHERE log = ? AND level = ?", log, level).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: tree of log %q, level %d: %w", s.name, log, level, err)
	}
	return n, nil
}

// AppendCheckpoint stores one checkpoint of log.
func (s *Store) AppendCheckpoint(ctx context.Context, log string, c sinks.StoredCheckpoint) error {
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := insert(ctx, s.conn, s.n.treeCheckpoints, "log, size, time_ns, note",
		[]any{[]string{log}, []uint64{c.Size}, []int64{c.Time.UnixNano()}, []string{string(c.Note)}}); err != nil {
		return fmt.Errorf("%s: checkpoint of log %q: %w", s.name, log, err)
	}
	return nil
}

// LatestCheckpoint is log's checkpoint of the largest size, the latest
// of those.
func (s *Store) LatestCheckpoint(ctx context.Context, log string) (sinks.StoredCheckpoint, error) {
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return sinks.StoredCheckpoint{}, err
	}
	defer done()
	rows, err := s.conn.Query(ctx, "SELECT size, time_ns, note FROM "+s.n.treeCheckpoints+
		" WHERE log = ? ORDER BY size DESC, time_ns DESC LIMIT 1", log)
	if err != nil {
		return sinks.StoredCheckpoint{}, fmt.Errorf("%s: checkpoint of log %q: %w", s.name, log, err)
	}
	defer func() { _ = rows.Close() }()
	var c sinks.StoredCheckpoint
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return c, fmt.Errorf("%s: checkpoint of log %q: %w", s.name, log, err)
		}
		return c, fmt.Errorf("%s: log %q: %w", s.name, log, sinks.ErrNoCheckpoint)
	}
	var at int64
	var n string
	if err := rows.Scan(&c.Size, &at, &n); err != nil {
		return c, fmt.Errorf("%s: checkpoint of log %q: %w", s.name, log, err)
	}
	c.Time, c.Note = time.Unix(0, at).UTC(), []byte(n)
	return c, nil
}
