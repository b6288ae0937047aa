package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// versionColumns are what versions reads of a version, aliased v.
const versionColumns = `v.vid, v.digest, v.time_ns, v.conflict, v.attrs, v.data, v.data IS NULL, v.data_base64`

// entryColumns are what an entry is read from, aliased e, but for its
// version, which the caller knows.
const entryColumns = `e.log, e.seq, e.time_ns, e.kind, e.transport, e.topic, e.partition, e."offset", e.request,
	e.principal, e.route, e.destination, e.attempts, e.error, e.replay, e.trace_id, e.span_id, e.signature`

// versions runs stmt, which selects versionColumns, and returns the
// versions with their vids.
func (s *Store) versions(ctx context.Context, stmt string, args ...any) ([]sinks.Item, []int64, error) {
	rows, err := s.db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = rows.Close() }()
	var items []sinks.Item
	var vids []int64
	for rows.Next() {
		var (
			it          sinks.Item
			vid, at     int64
			digest      []byte
			attrs, data []byte
			none, b64   bool
		)
		if err := rows.Scan(&vid, &digest, &at, &it.Conflict, &attrs, &data, &none, &b64); err != nil {
			return nil, nil, err
		}
		copy(it.Digest[:], digest)
		it.Time = time.Unix(0, at).UTC()
		it.Event = event.New()
		if err := it.Event.UnmarshalJSON(attrs); err != nil {
			return nil, nil, fmt.Errorf("decode stored event (version %d): %w", vid, err)
		}
		if data == nil && !none {
			data = []byte{} // the driver scans an empty blob as nil; it is data, though empty
		}
		it.Event.DataEncoded, it.Event.DataBase64 = data, b64
		items = append(items, it)
		vids = append(vids, vid)
	}
	return items, vids, rows.Err()
}

// trails reads the trails of items, whose vids are given, in one query.
func (s *Store) trails(ctx context.Context, items []sinks.Item, vids []int64) error {
	if len(items) == 0 {
		return nil
	}
	var list strings.Builder
	list.WriteByte('[')
	for i, vid := range vids {
		if i > 0 {
			list.WriteByte(',')
		}
		list.WriteString(strconv.FormatInt(vid, 10))
	}
	list.WriteByte(']')
	rows, err := s.db.QueryContext(ctx, `SELECT p.key, `+entryColumns+` FROM json_each(?) p
	CROSS JOIN versions v ON v.vid = p.value
	CROSS JOIN entries e ON e.source = v.source AND e.id = v.id AND e.digest = v.digest
	ORDER BY p.key, e.time_ns, e.log, e.seq`, list.String())
	if err != nil {
		return fmt.Errorf("read trails: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var i int
		var en sinks.Entry
		if err := scanEntry(rows, &en, &i); err != nil {
			return fmt.Errorf("read trails: %w", err)
		}
		it := &items[i]
		en.Source, en.ID, en.Digest = it.Event.Source(), it.Event.ID(), it.Digest
		it.Trail = append(it.Trail, en)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read trails: %w", err)
	}
	return nil
}

// scanEntry reads entryColumns into en, after the columns in first.
func scanEntry(sc interface{ Scan(...any) error }, en *sinks.Entry, first ...any) error {
	var seq, at int64
	dest := append(first, &en.Log, &seq, &at, &en.Kind, &en.Transport, &en.Topic, &en.Partition, &en.Offset, &en.Request,
		&en.Principal, &en.Route, &en.Destination, &en.Attempts, &en.Error, &en.Replay, &en.TraceID, &en.SpanID, &en.Signature)
	if err := sc.Scan(dest...); err != nil {
		return err
	}
	en.Seq, en.Time = uint64(seq), time.Unix(0, at).UTC()
	return nil
}

// Logs lists the logs with their sizes, by name.
func (s *Store) Logs(ctx context.Context) ([]sinks.LogInfo, error) {
	if s.closed.Load() {
		return nil, sinks.ErrClosed
	}
	rows, err := s.db.QueryContext(ctx, `SELECT name, size FROM logs ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("%s: logs: %w", s, err)
	}
	defer func() { _ = rows.Close() }()
	var out []sinks.LogInfo
	for rows.Next() {
		var l sinks.LogInfo
		var size int64
		if err := rows.Scan(&l.Name, &size); err != nil {
			return nil, fmt.Errorf("%s: logs: %w", s, err)
		}
		l.Size = uint64(size)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: logs: %w", s, err)
	}
	return out, nil
}

// Entries returns up to limit entries of log after afterSeq, by seq.
// A limit of 0 means sinks.DefaultLimit.
func (s *Store) Entries(ctx context.Context, log string, afterSeq uint64, limit int) ([]sinks.Entry, error) {
	if s.closed.Load() {
		return nil, sinks.ErrClosed
	}
	if limit < 0 || limit > sinks.MaxLimit {
		return nil, fmt.Errorf("%w: parameter %q: %d is outside 0..%d", sinks.ErrBadQuery, "limit", limit, sinks.MaxLimit)
	}
	if limit == 0 {
		limit = sinks.DefaultLimit
	}
	rows, err := s.db.QueryContext(ctx, `SELECT e.source, e.id, e.digest, `+entryColumns+` FROM entries e
	WHERE e.log = ? AND e.seq > ? ORDER BY e.seq LIMIT ?`, log, int64(min(afterSeq, 1<<63-1)), limit)
	if err != nil {
		return nil, fmt.Errorf("%s: entries of log %q: %w", s, log, err)
	}
	defer func() { _ = rows.Close() }()
	var out []sinks.Entry
	for rows.Next() {
		var en sinks.Entry
		var digest []byte
		if err := scanEntry(rows, &en, &en.Source, &en.ID, &digest); err != nil {
			return nil, fmt.Errorf("%s: entries of log %q: %w", s, log, err)
		}
		copy(en.Digest[:], digest)
		out = append(out, en)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: entries of log %q: %w", s, log, err)
	}
	if len(out) == 0 {
		var size int64
		err := s.db.QueryRowContext(ctx, `SELECT size FROM logs WHERE name = ?`, log).Scan(&size)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("%s: entries of log %q: %w", s, log, sinks.ErrNoLog)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: entries of log %q: %w", s, log, err)
		}
	}
	return out, nil
}

// day is the length of a retention day.
const day = 24 * time.Hour

// Retain removes the versions first stored, and the entries recorded, on
// the UTC days before cutoff's, and returns how many days it removed.
// Logs keep their sizes: later entries never take a removed position.
func (s *Store) Retain(ctx context.Context, cutoff time.Time) (int, error) {
	if s.closed.Load() {
		return 0, sinks.ErrClosed
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return 0, sinks.ErrClosed
	}
	before := cutoff.UTC().Truncate(day).UnixNano()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("%s: retain before %s: %w", s, cutoff.UTC().Format(time.DateOnly), err)
	}
	defer func() { _ = tx.Rollback() }()
	// Days are counted from 1970-01-01; floor division keeps earlier
	// instants on their own day.
	const dayOf = `CASE WHEN %[1]s >= 0 THEN %[1]s / ? ELSE (%[1]s + 1) / ? - 1 END`
	d := int64(day)
	rows, err := tx.QueryContext(ctx, `SELECT `+fmt.Sprintf(dayOf, "stored_ns")+` FROM versions WHERE stored_ns < ?
	UNION SELECT `+fmt.Sprintf(dayOf, "time_ns")+` FROM entries WHERE time_ns < ?`, d, d, before, d, d, before)
	var days int
	if err == nil {
		for rows.Next() {
			days++
		}
		err = rows.Err()
		_ = rows.Close()
	}
	if err == nil {
		err = retainCounts(ctx, tx, before)
	}
	if err == nil {
		_, err = tx.ExecContext(ctx, `DELETE FROM versions WHERE stored_ns < ?`, before)
	}
	if err == nil {
		_, err = tx.ExecContext(ctx, `DELETE FROM entries WHERE time_ns < ?`, before)
	}
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		return 0, fmt.Errorf("%s: retain before %s: %w", s, cutoff.UTC().Format(time.DateOnly), err)
	}
	return days, nil
}
