package clickhouse

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// Reading a page is two queries, each bound with the driver's "?"
// placeholders (never user input in the SQL text):
//
//  1. candidates: the sort keys of matching rows from the events table, in
//     page order, one row per identity and position (the latest Received
//     there), pruned by hour and type through the primary index;
//  2. winners' rows: the full rows of those candidates that are their
//     identity's winner, which a subquery on the identity table decides
//     over all of the identity's rows. A candidate that is not (a later
//     record of the identity sits elsewhere, with another time or type, or
//     does not match the filters) is dropped, and more candidates are read
//     if the page came up short.
//
// So queries see exactly one record per identity, the winner, whatever the
// state of background merges.

// cand is one row's sort key and version, enough to find it again.
type cand struct {
	hour     uint32
	typ      string
	timeNs   int64
	id       identity
	received int64
	version  uint64
}

const candColumns = "hour, type, time_ns, source, id, replay, received_ns, version"

func scanCands(rows driver.Rows) ([]cand, error) {
	defer func() { _ = rows.Close() }()
	var out []cand
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.hour, &c.typ, &c.timeNs, &c.id.source, &c.id.id, &c.id.replay, &c.received, &c.version); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// filter accumulates WHERE conditions and their bound arguments.
type filter struct {
	conds []string
	args  []any
}

func (f *filter) add(cond string, args ...any) {
	f.conds = append(f.conds, cond)
	f.args = append(f.args, args...)
}

func (f *filter) where() string {
	if len(f.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(f.conds, " AND ")
}

// window adds the time window and type conditions shared by Query and
// Counts. Bounds on hour repeat those on time_ns for the primary index.
func (f *filter) window(from, to time.Time, typ string, prefix bool) {
	if !from.IsZero() {
		ns := from.UnixNano()
		f.add("hour >= ?", hourOf(ns))
		f.add("time_ns >= ?", ns)
	}
	if !to.IsZero() {
		ns := to.UnixNano()
		f.add("hour <= ?", hourOf(ns-1))
		f.add("time_ns < ?", ns)
	}
	switch {
	case typ == "":
	case !prefix:
		f.add("type = ?", typ)
	default:
		// Strings compare byte-wise, so the prefix's range is exact and the
		// primary index can use it.
		f.add("type >= ?", typ)
		if hi, ok := prefixEnd(typ); ok {
			f.add("type < ?", hi)
		}
	}
}

// prefixEnd is the least string greater than every string with prefix p,
// or false when there is none (p is all 0xff bytes).
func prefixEnd(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// Query returns one page of records matching q.
func (s *Store) Query(ctx context.Context, q sinks.Query) (sinks.Page, error) {
	if err := q.Validate(); err != nil {
		return sinks.Page{}, err
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return sinks.Page{}, err
	}
	defer done()
	var base filter
	base.window(q.From, q.To, q.Type, q.TypePrefix)
	for _, f := range []struct{ col, v string }{
		{"source", q.Source}, {"subject", q.Subject}, {"id", q.ID}, {"route", q.Route}, {"outcome", q.Outcome},
	} {
		if f.v != "" {
			base.add(f.col+" = ?", f.v)
		}
	}
	dir, cmp, hourCmp := "ASC", ">", ">="
	if q.Desc {
		dir, cmp, hourCmp = "DESC", "<", "<="
	}
	var after *sinks.Cursor
	if q.Cursor != "" {
		c, _ := sinks.DecodeCursor(q.Cursor, q.Desc) // checked by Validate
		after = &c
	}
	limit := q.PageSize()
	var page []found
	for len(page) <= limit {
		f := base
		f.conds, f.args = append([]string(nil), base.conds...), append([]any(nil), base.args...)
		if after != nil {
			f.add("hour "+hourCmp+" ?", hourOf(after.TimeNs))
			f.add("(time_ns, source, id, replay) "+cmp+" (?, ?, ?, ?)", after.TimeNs, after.Source, after.ID, after.Replay)
		}
		want := limit + 1 - len(page)
		st := fmt.Sprintf("SELECT %s FROM %s%s ORDER BY time_ns %[4]s, source %[4]s, id %[4]s, replay %[4]s, received_ns DESC, version DESC"+
			" LIMIT 1 BY time_ns, source, id, replay LIMIT %d", candColumns, s.n.table, f.where(), dir, want)
		rows, err := s.conn.Query(ctx, st, f.args...)
		if err != nil {
			return sinks.Page{}, fmt.Errorf("%s: query: %w", s.name, err)
		}
		cands, err := scanCands(rows)
		if err != nil {
			return sinks.Page{}, fmt.Errorf("%s: query: %w", s.name, err)
		}
		won, err := s.fetch(ctx, cands, true)
		if err != nil {
			return sinks.Page{}, err
		}
		page = append(page, won...)
		if len(cands) < want {
			break
		}
		last := cands[len(cands)-1]
		after = &sinks.Cursor{TimeNs: last.timeNs, Source: last.id.source, ID: last.id.id, Replay: last.id.replay}
	}
	var p sinks.Page
	if len(page) > limit {
		page = page[:limit]
		last := page[len(page)-1].c
		p.Next = sinks.Cursor{TimeNs: last.timeNs, Source: last.id.source, ID: last.id.id, Replay: last.id.replay, Desc: q.Desc}.Encode()
	}
	p.Records = make([]sinks.Record, len(page))
	for i := range page {
		p.Records[i] = page[i].r
	}
	return p, nil
}

// chunk bounds the keys in one query's IN list, keeping its text well
// under the server's max_query_size (256 KiB by default).
const chunk = 1000

// inChunks applies f to cs a chunk at a time and joins the results.
func inChunks[T any](cs []cand, f func([]cand) ([]T, error)) ([]T, error) {
	if len(cs) <= chunk {
		return f(cs)
	}
	var out []T
	for i := 0; i < len(cs); i += chunk {
		part, err := f(cs[i:min(i+chunk, len(cs))])
		if err != nil {
			return nil, err
		}
		out = append(out, part...)
	}
	return out, nil
}

// placeholders is n parenthesised groups of k "?" each, comma-separated.
func placeholders(n, k int) string {
	group := "(" + strings.TrimSuffix(strings.Repeat("?, ", k), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(group+", ", n), ", ")
}

const recordColumns = "source, id, replay, received_ns, version, attrs, data, data_flags, transport, topic, `partition`, `offset`, route, outcome"

// found is a candidate with its full record.
type found struct {
	c cand
	r sinks.Record
}

// fetch reads the full rows of cs, in cs's order. With winnersOnly it
// leaves out the candidates that are not their identity's winner.
func (s *Store) fetch(ctx context.Context, cs []cand, winnersOnly bool) ([]found, error) {
	return inChunks(cs, func(part []cand) ([]found, error) { return s.fetchRows(ctx, part, winnersOnly) })
}

func (s *Store) fetchRows(ctx context.Context, cs []cand, winnersOnly bool) ([]found, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	hours, types := map[uint32]bool{}, map[string]bool{}
	lo, hi := cs[0].timeNs, cs[0].timeNs
	keys := make([]any, 0, 5*len(cs))
	for _, c := range cs {
		hours[c.hour], types[c.typ] = true, true
		lo, hi = min(lo, c.timeNs), max(hi, c.timeNs)
		keys = append(keys, c.id.source, c.id.id, c.id.replay, c.received, c.version)
	}
	var f filter
	f.add("hour IN ("+placeholders(len(hours), 1)+")", setArgs(hours)...)
	f.add("type IN ("+placeholders(len(types), 1)+")", setArgs(types)...)
	f.add("time_ns >= ? AND time_ns <= ?", lo, hi)
	f.add("(source, id, replay, received_ns, version) IN ("+placeholders(len(cs), 5)+")", keys...)
	if winnersOnly {
		ids := make([]any, 0, 3*len(cs))
		for _, c := range cs {
			ids = append(ids, c.id.source, c.id.id, c.id.replay)
		}
		f.add("(source, id, replay, received_ns, version) IN (SELECT source, id, replay, received_ns, version FROM "+s.n.ids+
			" WHERE (source, id, replay) IN ("+placeholders(len(cs), 3)+")"+
			" ORDER BY received_ns DESC, version DESC LIMIT 1 BY source, id, replay)", ids...)
	}
	rows, err := s.conn.Query(ctx, "SELECT "+recordColumns+" FROM "+s.n.table+f.where(), f.args...)
	if err != nil {
		return nil, fmt.Errorf("%s: fetch %d records: %w", s.name, len(cs), err)
	}
	defer func() { _ = rows.Close() }()
	got := make(map[rowKey]sinks.Record, len(cs))
	for rows.Next() {
		k, r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: fetch %d records: %w", s.name, len(cs), err)
		}
		got[k] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: fetch %d records: %w", s.name, len(cs), err)
	}
	out := make([]found, 0, len(cs))
	for _, c := range cs {
		// A candidate that lost, or a row dropped since (retention), is
		// left out.
		if r, ok := got[rowKey{c.id, c.received, c.version}]; ok {
			out = append(out, found{c, r})
		}
	}
	return out, nil
}

func setArgs[K comparable](m map[K]bool) []any {
	out := make([]any, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// rowKey tells one row of an identity from the others.
type rowKey struct {
	id       identity
	received int64
	version  uint64
}

func scanRecord(rows driver.Rows) (rowKey, sinks.Record, error) {
	var (
		k     rowKey
		r     sinks.Record
		attrs string
		data  string
		flags uint8
		part  int64
	)
	if err := rows.Scan(&k.id.source, &k.id.id, &k.id.replay, &k.received, &k.version, &attrs, &data, &flags,
		&r.Transport, &r.Topic, &part, &r.Offset, &r.Route, &r.Outcome); err != nil {
		return k, r, err
	}
	r.Event = event.New()
	if err := r.Event.UnmarshalJSON([]byte(attrs)); err != nil {
		return k, r, fmt.Errorf("decode stored event %q from %q: %w", k.id.id, k.id.source, err)
	}
	if flags&flagHasData != 0 {
		r.Event.DataEncoded = []byte(data)
	}
	r.Event.DataBase64 = flags&flagBase64 != 0
	r.Partition, r.Replay = int(part), k.id.replay
	if k.received != 0 {
		r.Received = time.Unix(0, k.received).UTC()
	}
	return k, r, nil
}

// Get returns the original (not replayed) record with this source and id.
func (s *Store) Get(ctx context.Context, source, id string) (sinks.Record, error) {
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return sinks.Record{}, err
	}
	defer done()
	c := cand{id: identity{source, id, ""}}
	err = s.conn.QueryRow(ctx, "SELECT hour, type, time_ns, received_ns, version FROM "+s.n.ids+
		" WHERE source = ? AND id = ? AND replay = '' ORDER BY received_ns DESC, version DESC LIMIT 1", source, id).
		Scan(&c.hour, &c.typ, &c.timeNs, &c.received, &c.version)
	if err == nil {
		var fs []found
		if fs, err = s.fetch(ctx, []cand{c}, false); err == nil && len(fs) == 1 {
			return fs[0].r, nil
		}
	}
	if err == nil || isNoRows(err) {
		return sinks.Record{}, fmt.Errorf("%s: event %q from %q: %w", s.name, id, source, sinks.ErrNotFound)
	}
	return sinks.Record{}, fmt.Errorf("%s: get event %q from %q: %w", s.name, id, source, err)
}

// Counts returns the non-zero counts of winning records per bucket and type.
func (s *Store) Counts(ctx context.Context, q sinks.CountQuery) ([]sinks.Count, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var w filter
	w.window(q.From, q.To, q.Type, q.TypePrefix)
	from, width := q.From.UnixNano(), int64(q.Bucket)
	// Rows of the window that are their identity's winner, judged over all
	// of the identity's rows, in or out of the window.
	st := "SELECT intDiv(time_ns - ?, ?) AS b, type, count() FROM " + s.n.table + w.where() +
		" AND (source, id, replay, received_ns, version) IN (SELECT source, id, replay, received_ns, version FROM " + s.n.ids +
		" WHERE (source, id, replay) IN (SELECT source, id, replay FROM " + s.n.table + w.where() + ")" +
		" ORDER BY received_ns DESC, version DESC LIMIT 1 BY source, id, replay)" +
		" GROUP BY b, type ORDER BY b, type"
	args := append(append([]any{from, width}, w.args...), w.args...)
	rows, err := s.conn.Query(ctx, st, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: counts: %w", s.name, err)
	}
	defer func() { _ = rows.Close() }()
	var out []sinks.Count
	for rows.Next() {
		var b int64
		var n uint64
		var c sinks.Count
		if err := rows.Scan(&b, &c.Type, &n); err != nil {
			return nil, fmt.Errorf("%s: counts: %w", s.name, err)
		}
		c.Start, c.N = time.Unix(0, from+b*width).UTC(), int64(n)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: counts: %w", s.name, err)
	}
	return out, nil
}

// isNoRows reports the driver's "no rows" from QueryRow's Scan.
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
