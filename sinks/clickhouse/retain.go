package clickhouse

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

// Logs lists the ledger's logs with their sizes, by name.
func (s *Store) Logs(ctx context.Context) ([]sinks.LogInfo, error) {
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := s.conn.Query(ctx, "SELECT log, max(seq) FROM "+s.n.logs+" GROUP BY log ORDER BY log")
	if err != nil {
		return nil, fmt.Errorf("%s: logs: %w", s.name, err)
	}
	defer func() { _ = rows.Close() }()
	var out []sinks.LogInfo
	for rows.Next() {
		var l sinks.LogInfo
		if err := rows.Scan(&l.Name, &l.Size); err != nil {
			return nil, fmt.Errorf("%s: logs: %w", s.name, err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: logs: %w", s.name, err)
	}
	return out, nil
}

// Entries returns up to limit entries of log after afterSeq, in seq
// order; a limit of 0 means sinks.DefaultLimit.
func (s *Store) Entries(ctx context.Context, log string, afterSeq uint64, limit int) ([]sinks.Entry, error) {
	if limit < 0 || limit > sinks.MaxLimit {
		return nil, fmt.Errorf("%w: parameter %q: %d is outside 0..%d", sinks.ErrBadQuery, "limit", limit, sinks.MaxLimit)
	}
	if limit == 0 {
		limit = sinks.DefaultLimit
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := s.conn.Query(ctx, "SELECT "+fullEntryColumns+" FROM "+s.n.entries+" WHERE log = ? AND seq > ? ORDER BY seq LIMIT ?",
		log, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("%s: entries of log %q: %w", s.name, log, err)
	}
	ens, err := readEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("%s: entries of log %q: %w", s.name, log, err)
	}
	if len(ens) == 0 {
		var n uint64
		if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.n.logs+" WHERE log = ?", log).Scan(&n); err != nil {
			return nil, fmt.Errorf("%s: entries of log %q: %w", s.name, log, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: entries of log %q: %w", s.name, log, sinks.ErrNoLog)
		}
	}
	return ens, nil
}

// Retain drops the day partitions of the versions (by the day they were
// first stored) and of the entries (by their time) of every UTC day
// before cutoff's, and returns how many days it dropped. The logs table
// keeps each log's last seq, so the log goes on from there.
func (s *Store) Retain(ctx context.Context, cutoff time.Time) (int, error) {
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	c := cutoff.UTC()
	limit := c.Year()*10000 + int(c.Month())*100 + c.Day() // partitions below it go
	days := make(map[int]bool)
	// The per-minute counts are partitioned like what they count, so the
	// counts of what is dropped go with it.
	for _, t := range []string{s.n.entries, s.n.trails, s.n.keys, s.n.ecounts, s.n.vers, s.n.idents, s.n.vcounts} {
		rows, err := s.conn.Query(ctx, "SELECT DISTINCT partition FROM system.parts WHERE database = ? AND table = ? AND active",
			s.cfg.Database, tableName(t))
		if err != nil {
			return len(days), fmt.Errorf("%s: retain: list partitions of %s: %w", s.name, t, err)
		}
		var parts []int
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				_ = rows.Close()
				return len(days), fmt.Errorf("%s: retain: list partitions of %s: %w", s.name, t, err)
			}
			if day, err := strconv.Atoi(p); err == nil && day < limit {
				parts = append(parts, day)
			}
		}
		_ = rows.Close()
		if err := rows.Err(); err != nil {
			return len(days), fmt.Errorf("%s: retain: list partitions of %s: %w", s.name, t, err)
		}
		for _, day := range parts {
			if err := s.conn.Exec(ctx, "ALTER TABLE "+t+s.n.onCluster()+" DROP PARTITION ?", day); err != nil {
				return len(days), fmt.Errorf("%s: retain: drop partition %d of %s: %w", s.name, day, t, err)
			}
			days[day] = true
		}
	}
	return len(days), nil
}

// applyRetention sets the TTLs where the server has TTLs, else drops the
// expired days.
func (s *Store) applyRetention(ctx context.Context) error {
	if s.cfg.Retention <= 0 {
		return nil
	}
	if !s.feat.ttl {
		return s.DropExpired(ctx)
	}
	secs := int64(s.cfg.Retention / time.Second)
	stored, entered := "toDateTime(intDiv(stored_ns, 1000000000), 'UTC')", "toDateTime(hour * 3600, 'UTC')"
	for _, t := range []struct{ table, at string }{
		{s.n.vers, stored}, {s.n.idents, stored}, {s.n.entries, entered}, {s.n.trails, entered}, {s.n.keys, entered},
		// The counts expire by the hour their rows were stored or recorded
		// in, so within the hour of what they count.
		{s.n.vcounts, "toDateTime(stored_hour * 3600, 'UTC')"}, {s.n.ecounts, entered},
	} {
		st := "ALTER TABLE " + t.table + s.n.onCluster() + " MODIFY TTL " + t.at + " + toIntervalSecond(?)"
		if err := s.conn.Exec(ctx, st, secs); err != nil {
			return fmt.Errorf("%s: set retention TTL on %s: %w", s.name, t.table, err)
		}
	}
	return nil
}

// DropExpired drops the days whose whole day is older than the retention
// (see Retain), for servers without TTL (Open and an hourly pass call
// it). Without a retention it does nothing.
func (s *Store) DropExpired(ctx context.Context) error {
	if s.cfg.Retention <= 0 {
		return nil
	}
	_, err := s.Retain(ctx, time.Now().Add(-s.cfg.Retention))
	return err
}

// tableName is the bare table name of a quoted `db`.`table`.
func tableName(q string) string {
	i := len(q) - 2
	for i > 0 && q[i] != '`' {
		i--
	}
	return q[i+1 : len(q)-1]
}

func (s *Store) retentionLoop() {
	defer close(s.done)
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
			_ = s.DropExpired(ctx) // the next pass tries again
			cancel()
		}
	}
}
