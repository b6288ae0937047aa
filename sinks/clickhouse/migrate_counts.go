package clickhouse

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// minuteOf is sinks.MinuteOf of the Int64 column of nanoseconds col.
func minuteOf(col string) string {
	const m = "toInt64(60000000000)"
	return "intDiv(" + col + " - ((" + col + " % " + m + ") + " + m + ") % " + m + ", " + m + ")"
}

// versionCountsSelect is the SELECT of the view that counts the versions
// inserted into versions (a table, or one with FINAL) per minute and type,
// by the hour they were stored in.
func versionCountsSelect(versions string) string {
	return "SELECT " + minuteOf("time_ns") + " AS minute, type, " +
		"toUInt32(intDiv(greatest(stored_ns, toInt64(0)), toInt64(3600000000000))) AS stored_hour, " +
		"toInt64(count()) AS n, toInt64(sum(conflict)) AS conflicts FROM " + versions + " GROUP BY minute, type, stored_hour"
}

// entryCountsSelect is the SELECT of the view that counts the entries
// inserted into entries per minute, hour, log and kind.
func entryCountsSelect(entries string) string {
	return "SELECT " + minuteOf("time_ns") + " AS minute, hour, log, kind, " +
		"toInt64(count()) AS n, toInt64(sum(route != '')) AS routed FROM " + entries + " GROUP BY minute, hour, log, kind"
}

// fillCounts is migration 0007's COUNTS step: it empties the per-minute
// counts and fills them from the versions (FINAL, so that a version
// stored twice by racing writers counts once) and the entries. Run again,
// it does the same, so a migration cut short can run again.
func fillCounts(ctx context.Context, conn driver.Conn, n names) error {
	for _, st := range []string{
		"TRUNCATE TABLE " + n.vcounts + n.onCluster(),
		"TRUNCATE TABLE " + n.ecounts + n.onCluster(),
		"INSERT INTO " + n.vcounts + " (minute, type, stored_hour, n, conflicts) " + versionCountsSelect(n.vers+" FINAL"),
		"INSERT INTO " + n.ecounts + " (minute, hour, log, kind, n, routed) " + entryCountsSelect(n.entries),
	} {
		if err := conn.Exec(ctx, st); err != nil {
			return fmt.Errorf("fill the per-minute counts: %w", err)
		}
	}
	return nil
}

// recountLog sets the per-minute counts of log's entries in the hours
// [lo, hi] right: an insert of entries that landed although it failed may
// have left the view feeding them behind. It adds the difference between
// the entries and their counts, per minute, hour and kind. The caller
// holds entriesMu, and only its store writes log, so neither changes
// meanwhile.
func (s *Store) recountLog(ctx context.Context, lo, hi uint32) error {
	type key struct {
		minute int64
		hour   uint32
		kind   string
	}
	diff := map[key][2]int64{}
	for _, side := range []struct {
		st   string
		sign int64
	}{
		{"SELECT " + minuteOf("time_ns") + " AS minute, hour, toString(kind), toInt64(count()), toInt64(sum(route != '')) FROM " + s.n.entries +
			" WHERE log = ? AND hour >= ? AND hour <= ? GROUP BY minute, hour, kind", 1},
		{"SELECT minute, hour, toString(kind), sum(n), sum(routed) FROM " + s.n.ecounts +
			" WHERE log = ? AND hour >= ? AND hour <= ? GROUP BY minute, hour, kind", -1},
	} {
		rows, err := s.conn.Query(ctx, side.st, s.cfg.Log, lo, hi)
		if err != nil {
			return fmt.Errorf("recount log %q: %w", s.cfg.Log, err)
		}
		for rows.Next() {
			var k key
			var n, routed int64
			if err := rows.Scan(&k.minute, &k.hour, &k.kind, &n, &routed); err != nil {
				_ = rows.Close()
				return fmt.Errorf("recount log %q: %w", s.cfg.Log, err)
			}
			d := diff[k]
			diff[k] = [2]int64{d[0] + side.sign*n, d[1] + side.sign*routed}
		}
		_ = rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("recount log %q: %w", s.cfg.Log, err)
		}
	}
	var c struct {
		minute, n, routed []int64
		hour              []uint32
		log, kind         []string
	}
	for k, d := range diff {
		if d != [2]int64{} {
			c.minute, c.hour, c.log, c.kind = append(c.minute, k.minute), append(c.hour, k.hour), append(c.log, s.cfg.Log), append(c.kind, k.kind)
			c.n, c.routed = append(c.n, d[0]), append(c.routed, d[1])
		}
	}
	if len(c.minute) == 0 {
		return nil
	}
	if err := insert(ctx, s.conn, s.n.ecounts, "minute, hour, log, kind, n, routed", []any{c.minute, c.hour, c.log, c.kind, c.n, c.routed}); err != nil {
		return fmt.Errorf("recount log %q: %w", s.cfg.Log, err)
	}
	return nil
}
