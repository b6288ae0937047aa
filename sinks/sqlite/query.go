package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

const columns = `attrs, data, data IS NULL, data_base64, transport, topic, partition, "offset", route, outcome, replay, received_ns`

func scanRecord(sc interface{ Scan(...any) error }) (sinks.Record, error) {
	var (
		r     sinks.Record
		attrs []byte
		data  []byte
		none  bool
		b64   bool
		recv  int64
	)
	if err := sc.Scan(&attrs, &data, &none, &b64, &r.Transport, &r.Topic, &r.Partition, &r.Offset, &r.Route, &r.Outcome, &r.Replay, &recv); err != nil {
		return r, err
	}
	r.Event = event.New()
	if err := r.Event.UnmarshalJSON(attrs); err != nil {
		return r, fmt.Errorf("decode stored event: %w", err)
	}
	if data == nil && !none {
		data = []byte{} // the driver scans an empty blob as nil; it is data, though empty
	}
	r.Event.DataEncoded, r.Event.DataBase64 = data, b64
	if recv != 0 {
		r.Received = time.Unix(0, recv).UTC()
	}
	return r, nil
}

// where builds the filter shared by Query and Counts, with bound
// parameters only.
func where(from, to time.Time, typ string, prefix bool) ([]string, []any) {
	var conds []string
	var args []any
	if !from.IsZero() {
		conds, args = append(conds, "time_ns >= ?"), append(args, from.UnixNano())
	}
	if !to.IsZero() {
		conds, args = append(conds, "time_ns < ?"), append(args, to.UnixNano())
	}
	if typ != "" {
		if prefix {
			// The range lets the type index narrow the scan; substr decides.
			conds = append(conds, "type >= ?", "substr(type, 1, ?) = ?")
			args = append(args, typ, utf8.RuneCountInString(typ), typ)
		} else {
			conds, args = append(conds, "type = ?"), append(args, typ)
		}
	}
	return conds, args
}

// queryWhere is the filter of q's fields, without its cursor.
func queryWhere(q sinks.Query) ([]string, []any) {
	conds, args := where(q.From, q.To, q.Type, q.TypePrefix)
	for _, f := range []struct{ col, v string }{
		{"source", q.Source}, {"subject", q.Subject}, {"id", q.ID}, {"route", q.Route}, {"outcome", q.Outcome},
	} {
		if f.v != "" {
			conds, args = append(conds, f.col+" = ?"), append(args, f.v)
		}
	}
	return conds, args
}

// CountOriginals returns how many original records (Replay "") match q's
// filters; q's cursor, limit and order are ignored. Replays count with it
// what they will publish.
func (s *Store) CountOriginals(ctx context.Context, q sinks.Query) (int64, error) {
	if s.closed.Load() {
		return 0, sinks.ErrClosed
	}
	q.Cursor, q.Limit = "", 0
	if err := q.Validate(); err != nil {
		return 0, err
	}
	conds, args := queryWhere(q)
	conds = append(conds, "replay = ''")
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM events WHERE "+strings.Join(conds, " AND "), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: count: %w", s, err)
	}
	return n, nil
}

// Query returns one page of records matching q.
func (s *Store) Query(ctx context.Context, q sinks.Query) (sinks.Page, error) {
	if s.closed.Load() {
		return sinks.Page{}, sinks.ErrClosed
	}
	if err := q.Validate(); err != nil {
		return sinks.Page{}, err
	}
	conds, args := queryWhere(q)
	dir, cmp := "ASC", ">"
	if q.Desc {
		dir, cmp = "DESC", "<"
	}
	if q.Cursor != "" {
		c, _ := sinks.DecodeCursor(q.Cursor, q.Desc) // checked by Validate
		conds = append(conds, "(time_ns, source, id, replay) "+cmp+" (?, ?, ?, ?)")
		args = append(args, c.TimeNs, c.Source, c.ID, c.Replay)
	}
	stmt := "SELECT " + columns + " FROM events"
	if len(conds) > 0 {
		stmt += " WHERE " + strings.Join(conds, " AND ")
	}
	limit := q.PageSize()
	stmt += fmt.Sprintf(" ORDER BY time_ns %[1]s, source %[1]s, id %[1]s, replay %[1]s LIMIT %d", dir, limit+1)
	rows, err := s.db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return sinks.Page{}, fmt.Errorf("%s: query: %w", s, err)
	}
	defer func() { _ = rows.Close() }()
	var p sinks.Page
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return sinks.Page{}, fmt.Errorf("%s: query: %w", s, err)
		}
		p.Records = append(p.Records, r)
	}
	if err := rows.Err(); err != nil {
		return sinks.Page{}, fmt.Errorf("%s: query: %w", s, err)
	}
	if len(p.Records) > limit {
		p.Records = p.Records[:limit]
		p.Next = sinks.CursorAfter(&p.Records[limit-1], q.Desc)
	}
	return p, nil
}

// Get returns the original record (Replay "") of source and id.
func (s *Store) Get(ctx context.Context, source, id string) (sinks.Record, error) {
	if s.closed.Load() {
		return sinks.Record{}, sinks.ErrClosed
	}
	row := s.db.QueryRowContext(ctx, "SELECT "+columns+" FROM events WHERE source = ? AND id = ? AND replay = ''", source, id)
	r, err := scanRecord(row)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%s: event %q from %q: %w", s, id, source, sinks.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("%s: get event %q from %q: %w", s, id, source, err)
	}
	return r, nil
}

// Counts returns record counts per bucket and type.
func (s *Store) Counts(ctx context.Context, q sinks.CountQuery) ([]sinks.Count, error) {
	if s.closed.Load() {
		return nil, sinks.ErrClosed
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	conds, args := where(q.From, q.To, q.Type, q.TypePrefix)
	from, width := q.From.UnixNano(), int64(q.Bucket)
	stmt := `SELECT (time_ns - ?) / ? AS b, type, COUNT(*) FROM events WHERE ` +
		strings.Join(conds, " AND ") + ` GROUP BY b, type ORDER BY b, type`
	rows, err := s.db.QueryContext(ctx, stmt, append([]any{from, width}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("%s: counts: %w", s, err)
	}
	defer func() { _ = rows.Close() }()
	var out []sinks.Count
	for rows.Next() {
		var b int64
		var c sinks.Count
		if err := rows.Scan(&b, &c.Type, &c.N); err != nil {
			return nil, fmt.Errorf("%s: counts: %w", s, err)
		}
		c.Start = time.Unix(0, from+b*width).UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: counts: %w", s, err)
	}
	return out, nil
}
