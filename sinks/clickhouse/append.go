package clickhouse

import (
	"context"
	"fmt"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

// insertColumns are the events table's columns in the order Append fills
// them.
const insertColumns = "hour, type, time_ns, source, id, replay, received_ns, version, subject, " +
	"route, outcome, transport, topic, `partition`, `offset`, attrs, data, data_flags"

// data_flags bits.
const (
	flagHasData = 1 << 0
	flagBase64  = 1 << 1
)

// columns holds one batch column-wise, the shape the driver appends
// fastest.
type columns struct {
	hour                    []uint32
	typ, source, id, replay []string
	timeNs, received        []int64
	version                 []uint64
	subject, route, outcome []string
	transport, topic        []string
	partition, offset       []int64
	attrs, data             [][]byte
	flags                   []uint8
}

func (c *columns) add(r *sinks.Record, version uint64) error {
	// The data goes in its own column so its bytes never pass through a
	// JSON re-encoding; a shallow copy keeps the caller's event intact.
	e := r.Event
	e.DataEncoded, e.DataBase64 = nil, false
	attrs, err := e.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encode event %q from %q: %w", e.ID(), e.Source(), err)
	}
	var flags uint8
	if r.Event.DataEncoded != nil {
		flags |= flagHasData
	}
	if r.Event.DataBase64 {
		flags |= flagBase64
	}
	t := r.Time().UnixNano()
	c.hour = append(c.hour, hourOf(t))
	c.typ = append(c.typ, e.Type())
	c.timeNs = append(c.timeNs, t)
	c.source = append(c.source, e.Source())
	c.id = append(c.id, e.ID())
	c.replay = append(c.replay, r.Replay)
	c.received = append(c.received, nsOf(r.Received))
	c.version = append(c.version, version)
	c.subject = append(c.subject, e.Subject())
	c.route = append(c.route, r.Route)
	c.outcome = append(c.outcome, r.Outcome)
	c.transport = append(c.transport, r.Transport)
	c.topic = append(c.topic, r.Topic)
	c.partition = append(c.partition, int64(r.Partition))
	c.offset = append(c.offset, r.Offset)
	c.attrs = append(c.attrs, attrs)
	c.data = append(c.data, r.Event.DataEncoded)
	c.flags = append(c.flags, flags)
	return nil
}

func (c *columns) all() []any {
	return []any{c.hour, c.typ, c.timeNs, c.source, c.id, c.replay, c.received, c.version, c.subject,
		c.route, c.outcome, c.transport, c.topic, c.partition, c.offset, c.attrs, c.data, c.flags}
}

type identity struct{ source, id, replay string }

func identityOf(r *sinks.Record) identity {
	return identity{r.Event.Source(), r.Event.ID(), r.Replay}
}

// winners keeps one record per identity of recs: the later Received, the
// earlier one on a tie, in first-seen order.
func winners(recs []sinks.Record) []*sinks.Record {
	out := make([]*sinks.Record, 0, len(recs))
	var seen map[identity]int
	for i := range recs {
		r := &recs[i]
		if seen == nil {
			if i == 0 {
				out = append(out, r)
				continue
			}
			// A map only once a batch has two records.
			seen = make(map[identity]int, len(recs))
			seen[identityOf(out[0])] = 0
		}
		k := identityOf(r)
		if j, ok := seen[k]; ok {
			if r.Received.After(out[j].Received) {
				out[j] = r
			}
			continue
		}
		seen[k] = len(out)
		out = append(out, r)
	}
	return out
}

// Append stores recs with one batch insert and returns once ClickHouse has
// written them. Retrying is safe: rows of an identity that lose to another
// row (an earlier Received, or the same Received stored later) are never
// returned, and merges drop exact repeats.
func (s *Store) Append(ctx context.Context, recs []sinks.Record) error {
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	if len(recs) == 0 {
		return nil
	}
	// One version per call; within a call each identity appears once.
	version := ^s.nextSeq()
	ws := winners(recs)
	var c columns
	c.grow(len(ws))
	for _, r := range ws {
		if err := c.add(r, version); err != nil {
			return fmt.Errorf("%s: append: %w", s.name, err)
		}
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.n.table+" ("+insertColumns+")")
	if err != nil {
		return fmt.Errorf("%s: append %d records: prepare: %w", s.name, len(recs), err)
	}
	defer func() { _ = batch.Close() }()
	for i, col := range c.all() {
		if err := batch.Column(i).Append(col); err != nil {
			return fmt.Errorf("%s: append %d records: column %d: %w", s.name, len(recs), i, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("%s: append %d records: %w", s.name, len(recs), err)
	}
	return nil
}

func (c *columns) grow(n int) {
	c.hour = make([]uint32, 0, n)
	c.typ, c.source, c.id, c.replay = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	c.timeNs, c.received = make([]int64, 0, n), make([]int64, 0, n)
	c.version = make([]uint64, 0, n)
	c.subject, c.route, c.outcome = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	c.transport, c.topic = make([]string, 0, n), make([]string, 0, n)
	c.partition, c.offset = make([]int64, 0, n), make([]int64, 0, n)
	c.attrs, c.data = make([][]byte, 0, n), make([][]byte, 0, n)
	c.flags = make([]uint8, 0, n)
}

// applyRetention sets the TTL where the server has TTLs, else drops the
// expired day partitions.
func (s *Store) applyRetention(ctx context.Context) error {
	if s.cfg.Retention <= 0 {
		return nil
	}
	if !s.feat.ttl {
		return s.DropExpired(ctx)
	}
	secs := int64(s.cfg.Retention / time.Second)
	for _, t := range []string{s.n.table, s.n.ids} {
		st := fmt.Sprintf("ALTER TABLE %s%s MODIFY TTL toDateTime(hour * 3600, 'UTC') + toIntervalSecond(%d)", t, s.n.onCluster(), secs)
		if err := s.conn.Exec(ctx, st); err != nil {
			return fmt.Errorf("%s: set retention TTL on %s: %w", s.name, t, err)
		}
	}
	return nil
}

// DropExpired drops the day partitions of both tables whose whole day is
// older than the retention, for servers without TTL (Open and an hourly
// pass call it). Without a retention it does nothing.
func (s *Store) DropExpired(ctx context.Context) error {
	if s.cfg.Retention <= 0 {
		return nil
	}
	// A day partition YYYYMMDD may go once its last instant is older than
	// the retention: the day before the cutoff's day and earlier.
	cutoff := time.Now().Add(-s.cfg.Retention).UTC()
	last := cutoff.Truncate(24*time.Hour).AddDate(0, 0, -1)
	limit := last.Year()*10000 + int(last.Month())*100 + last.Day()
	for _, t := range []string{s.n.table, s.n.ids} {
		rows, err := s.conn.Query(ctx, "SELECT DISTINCT partition FROM system.parts WHERE database = ? AND table = ? AND active",
			s.cfg.Database, tableName(t))
		if err != nil {
			return fmt.Errorf("%s: list partitions of %s: %w", s.name, t, err)
		}
		var parts []string
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				_ = rows.Close()
				return fmt.Errorf("%s: list partitions of %s: %w", s.name, t, err)
			}
			parts = append(parts, p)
		}
		_ = rows.Close()
		for _, p := range parts {
			var day int
			if _, err := fmt.Sscanf(p, "%d", &day); err != nil || day > limit {
				continue
			}
			if err := s.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s%s DROP PARTITION %d", t, s.n.onCluster(), day)); err != nil {
				return fmt.Errorf("%s: drop expired partition %d of %s: %w", s.name, day, t, err)
			}
		}
	}
	return nil
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
