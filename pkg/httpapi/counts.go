package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/auditbus/auditbus/sinks"
)

// Bounds of GET /v1/counts.
const (
	// MaxCountBuckets bounds (to - from) / bucket.
	MaxCountBuckets = 10000
	// MaxCountRows bounds the buckets and types of one answer together.
	MaxCountRows = 100000
)

// countsParams are GET /v1/counts's parameters.
var countsParams = map[string]bool{"from": true, "to": true, "bucket": true, "type": true}

// parseCounts reads GET /v1/counts's parameters: from and to (RFC 3339,
// both required), bucket (a duration of at least 1s, default 1m), type
// (a trailing * matches a prefix). Errors name the parameter.
func parseCounts(rawQuery string) (sinks.CountQuery, error) {
	var q sinks.CountQuery
	v, err := url.ParseQuery(rawQuery)
	if err != nil {
		return q, fmt.Errorf("the query string is malformed: %w", err)
	}
	for k, vals := range v {
		switch {
		case !countsParams[k]:
			return q, fmt.Errorf("parameter %q: unknown; GET /v1/counts accepts from, to, bucket and type", clip(k))
		case len(vals) != 1:
			return q, fmt.Errorf("parameter %q: given %d times; give it once", k, len(vals))
		}
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		s := v.Get(p.name)
		if s == "" {
			return q, fmt.Errorf("parameter %q: required, an RFC 3339 time such as 2026-05-01T00:00:00Z", p.name)
		}
		if *p.t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return q, fmt.Errorf("parameter %q: %q is not an RFC 3339 time such as 2026-05-01T00:00:00Z", p.name, clip(s))
		}
	}
	if !q.To.After(q.From) {
		return q, errors.New(`parameter "to": must be after from`)
	}
	q.Bucket = time.Minute
	if s := v.Get("bucket"); s != "" {
		if q.Bucket, err = time.ParseDuration(s); err != nil || q.Bucket < time.Second {
			return q, fmt.Errorf("parameter \"bucket\": %q is not a duration of at least 1s (such as 30s, 1m or 1h)", clip(s))
		}
	}
	if n := q.To.Sub(q.From) / q.Bucket; n >= MaxCountBuckets {
		return q, fmt.Errorf("parameter \"bucket\": %s makes %d buckets from %s to %s, more than %d; choose a wider bucket", q.Bucket, n, v.Get("from"), v.Get("to"), MaxCountBuckets)
	}
	q.Type = v.Get("type")
	q.Type, q.TypePrefix = strings.CutSuffix(q.Type, "*")
	return q, nil
}

// countsAnswer is GET /v1/counts's body.
type countsAnswer struct {
	From   time.Time        `json:"from"`
	To     time.Time        `json:"to"`
	Bucket string           `json:"bucket"`
	Counts []countRow       `json:"counts"`
	Totals map[string]int64 `json:"totals,omitempty"`
}

type countRow struct {
	Start time.Time `json:"start"`
	Type  string    `json:"type"`
	N     int64     `json:"n"`
}

// counts is GET /v1/counts: event versions per bucket and type in [from,
// to), and the totals of the range: every version, and those with an
// entry of each kind.
func (s *Server) counts(w http.ResponseWriter, r *http.Request) {
	q, err := parseCounts(r.URL.RawQuery)
	if err != nil {
		badQuery(w, err)
		return
	}
	counts, err := s.o.Store.Counts(r.Context(), q)
	if err != nil {
		s.storeFailed(w, r, "counts", err)
		return
	}
	if len(counts) > MaxCountRows {
		badQuery(w, fmt.Errorf("parameter \"bucket\": the range has %d buckets and types to count, more than %d; choose a wider bucket or a type", len(counts), MaxCountRows))
		return
	}
	out := countsAnswer{From: q.From.UTC(), To: q.To.UTC(), Bucket: q.Bucket.String(), Counts: make([]countRow, len(counts))}
	for i, c := range counts {
		out.Counts[i] = countRow{c.Start, c.Type, c.N}
	}
	if vc, ok := s.o.Store.(sinks.VersionCounter); ok {
		out.Totals = map[string]int64{}
		base := sinks.Query{From: q.From, To: q.To, Type: q.Type, TypePrefix: q.TypePrefix}
		for _, kind := range append([]string{""}, sinks.Kinds...) {
			sel := base
			sel.Kind = kind
			n, err := vc.CountVersions(r.Context(), sel)
			if err != nil {
				s.storeFailed(w, r, "counts", err)
				return
			}
			name := kind
			if kind == "" {
				name = "versions"
			}
			out.Totals[name] = n
		}
	}
	writeValue(w, http.StatusOK, out)
}
