package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/auditbus/auditbus/pkg/apierror"
	"github.com/auditbus/auditbus/sinks"
)

// What GET /v1/counts and GET /v1/totals accept, for messages.
const (
	countsEndpoint = "GET /v1/counts accepts from, to, bucket, type and by"
	totalsEndpoint = "GET /v1/totals accepts from, to and type"
)

// Bounds of GET /v1/counts.
const (
	// MaxCountBuckets bounds (to - from) / bucket.
	MaxCountBuckets = 10000
	// MaxCountRows bounds the buckets and types of one answer together.
	MaxCountRows = 100000
)

// countsParams are GET /v1/counts's parameters, and GET /v1/totals's but
// bucket.
var countsParams = map[string]bool{"from": true, "to": true, "bucket": true, "type": true, "by": true}

// parseCounts reads GET /v1/counts's parameters: from and to (RFC 3339,
// both required), bucket (a duration of at least 1s, default 1m), type
// (a trailing * matches a prefix). Errors name the parameter; endpoint
// names the endpoint in them.
func parseCounts(rawQuery, endpoint string) (sinks.CountQuery, error) {
	var q sinks.CountQuery
	v, err := url.ParseQuery(rawQuery)
	if err != nil {
		return q, fmt.Errorf("the query string is malformed: %w", err)
	}
	for k, vals := range v {
		switch {
		case !countsParams[k] || ((k == "bucket" || k == "by") && endpoint == totalsEndpoint):
			return q, fmt.Errorf("parameter %q: unknown; %s", clip(k), endpoint)
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
	if n := q.To.Sub(q.From) / q.Bucket; n >= MaxCountBuckets && endpoint == countsEndpoint {
		return q, fmt.Errorf("parameter \"bucket\": %s makes %d buckets from %s to %s, more than %d; choose a wider bucket", q.Bucket, n, v.Get("from"), v.Get("to"), MaxCountBuckets)
	}
	q.Type = v.Get("type")
	q.Type, q.TypePrefix = strings.CutSuffix(q.Type, "*")
	return q, nil
}

// countsAnswer is GET /v1/counts's body.
type countsAnswer struct {
	From   time.Time  `json:"from"`
	To     time.Time  `json:"to"`
	Bucket string     `json:"bucket"`
	By     string     `json:"by"`
	Counts []countRow `json:"counts"`
	// Narrowed says the counts cover only what the reader may see.
	Narrowed json.RawMessage `json:"narrowed,omitempty"`
}

// countRow is one count: of the versions of a type, or (by=outcome) of
// the entries of a kind.
type countRow struct {
	Start   time.Time `json:"start"`
	Type    string    `json:"type,omitempty"`
	Outcome string    `json:"outcome,omitempty"`
	N       int64     `json:"n"`
}

// counts is GET /v1/counts: event versions per bucket and type in [from,
// to), or with by=outcome the entries with a route per bucket and kind.
func (s *Server) counts(w http.ResponseWriter, r *http.Request) {
	q, err := parseCounts(r.URL.RawQuery, countsEndpoint)
	if err != nil {
		badQuery(w, err)
		return
	}
	count := s.o.Store.Counts
	switch by := r.URL.Query().Get("by"); by {
	case "", "type":
	case "outcome":
		if refuseWhole(w, r, "GET /v1/counts?by=outcome") {
			return
		}
		oc, ok := s.o.Store.(sinks.OutcomeCounter)
		switch {
		case q.Type != "":
			badQuery(w, errors.New(`parameter "type": does not apply with by=outcome, which counts what routes did with every type`))
			return
		case !ok:
			badQuery(w, errors.New(`parameter "by": this daemon's audit store cannot count by outcome; use by=type`))
			return
		}
		count = oc.CountOutcomes
	default:
		badQuery(w, fmt.Errorf("parameter \"by\": %q is neither type nor outcome", clip(by)))
		return
	}
	q.Within = readerWithin(w, r)
	counts, err := count(r.Context(), q)
	if err != nil {
		s.storeFailed(w, r, "counts", err)
		return
	}
	if len(counts) > MaxCountRows {
		badQuery(w, fmt.Errorf("parameter \"bucket\": the range has %d buckets and types to count, more than %d; choose a wider bucket or a type", len(counts), MaxCountRows))
		return
	}
	out := countsAnswer{From: q.From.UTC(), To: q.To.UTC(), Bucket: q.Bucket.String(), Counts: make([]countRow, len(counts)), Narrowed: narrowedJSON(q.Within)}
	out.By = "type"
	if r.URL.Query().Get("by") == "outcome" {
		out.By = "outcome"
	}
	for i, c := range counts {
		out.Counts[i] = countRow{Start: c.Start, Type: c.Type, N: c.N}
		if out.By == "outcome" {
			out.Counts[i] = countRow{Start: c.Start, Outcome: c.Type, N: c.N}
		}
	}
	writeValue(w, http.StatusOK, out)
}

// totals is GET /v1/totals: how many event versions of [from, to) there
// are and how many of them conflict, and how many entries of each kind
// were recorded in it (of the versions of type, when given). Every kind
// is in the answer, 0 when it has none. A store without
// sinks.TotalCounter answers 404.
func (s *Server) totals(w http.ResponseWriter, r *http.Request) {
	q, err := parseCounts(r.URL.RawQuery, totalsEndpoint)
	if err != nil {
		badQuery(w, err)
		return
	}
	tc, ok := s.o.Store.(sinks.TotalCounter)
	if !ok {
		apierror.Write(w, http.StatusNotFound, CodeNotFound, "this daemon's audit store cannot count totals; GET /v1/counts has the counts per type")
		return
	}
	q.Within = readerWithin(w, r)
	t, err := tc.CountTotals(r.Context(), q)
	if err != nil {
		s.storeFailed(w, r, "totals", err)
		return
	}
	out := struct {
		From     time.Time        `json:"from"`
		To       time.Time        `json:"to"`
		Totals   map[string]int64 `json:"totals"`
		Narrowed json.RawMessage  `json:"narrowed,omitempty"`
	}{From: q.From.UTC(), To: q.To.UTC(), Totals: map[string]int64{"versions": t.Versions, "conflicts": t.Conflicts},
		Narrowed: narrowedJSON(q.Within)}
	for _, kind := range sinks.Kinds {
		out.Totals[kind] = 0
	}
	for kind, n := range t.Entries {
		out.Totals[kind] = n
	}
	writeValue(w, http.StatusOK, out)
}
