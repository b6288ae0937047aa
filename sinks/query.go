package sinks

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultLimit and MaxLimit bound the page size of a Query.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// Query selects records. Zero fields do not filter.
type Query struct {
	// From is inclusive, To exclusive; a zero time leaves that side open.
	From, To time.Time
	// Type matches the event type exactly, or as a prefix with TypePrefix.
	Type       string
	TypePrefix bool
	Source     string
	Subject    string
	ID         string
	// Route and Outcome match the record's fields exactly.
	Route   string
	Outcome string
	// Limit is the page size: 0 means DefaultLimit; at most MaxLimit.
	Limit int
	// Desc orders newest first.
	Desc bool
	// Cursor is a Page.Next from the same query, or "" for the first page.
	Cursor string
}

// Validate reports the first bad parameter, wrapping ErrBadQuery.
func (q Query) Validate() error {
	if q.Limit < 0 || q.Limit > MaxLimit {
		return badParam("limit", fmt.Sprintf("%d is outside 0..%d", q.Limit, MaxLimit))
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.To.After(q.From) {
		return badParam("to", "must be after from")
	}
	if q.Cursor != "" {
		if _, err := DecodeCursor(q.Cursor, q.Desc); err != nil {
			return err
		}
	}
	return nil
}

// PageSize is the effective limit.
func (q Query) PageSize() int {
	if q.Limit == 0 {
		return DefaultLimit
	}
	return q.Limit
}

// Cursor is the position after the last record of a page: the sort key
// (time, source, id, replay) of that record. A key rather than an offset keeps
// paging stable while records are appended.
type Cursor struct {
	TimeNs int64
	Source string
	ID     string
	Replay string
	// Desc records the direction the cursor was made for, so it cannot be
	// replayed against the other order.
	Desc bool
}

type cursorWire struct {
	T int64  `json:"t"`
	S string `json:"s"`
	I string `json:"i"`
	R string `json:"r,omitempty"`
	D bool   `json:"d,omitempty"`
}

// Encode returns the opaque cursor string.
func (c Cursor) Encode() string {
	b, _ := json.Marshal(cursorWire{c.TimeNs, c.Source, c.ID, c.Replay, c.Desc})
	return base64.RawURLEncoding.EncodeToString(b)
}

// CursorAfter is the cursor that continues after r in the given order.
func CursorAfter(r *Record, desc bool) string {
	return Cursor{TimeNs: r.Time().UnixNano(), Source: r.Event.Source(), ID: r.Event.ID(), Replay: r.Replay, Desc: desc}.Encode()
}

// DecodeCursor parses s, which must have been made for the same order.
func DecodeCursor(s string, desc bool) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var w cursorWire
	if err == nil {
		err = json.Unmarshal(b, &w)
	}
	if err != nil {
		return Cursor{}, badParam("cursor", "not a cursor this store issued")
	}
	if w.D != desc {
		return Cursor{}, badParam("cursor", "issued for the other order")
	}
	return Cursor{TimeNs: w.T, Source: w.S, ID: w.I, Replay: w.R, Desc: w.D}, nil
}

// queryParams are the parameters ParseQuery accepts.
var queryParams = map[string]bool{
	"from": true, "to": true, "type": true, "source": true, "subject": true,
	"id": true, "route": true, "outcome": true, "limit": true, "order": true, "cursor": true,
}

// ParseQuery reads a Query from URL parameters, as the audit query endpoint
// receives them: from and to (RFC 3339), type (a trailing "*" makes it a
// prefix), source, subject, id, route, outcome, limit, order (asc or desc) and cursor. An
// unknown, repeated or malformed parameter is an error wrapping ErrBadQuery
// that names it.
func ParseQuery(v url.Values) (Query, error) {
	var q Query
	for k, vals := range v {
		if !queryParams[k] {
			return Query{}, badParam(k, "unknown parameter")
		}
		if len(vals) != 1 {
			return Query{}, badParam(k, "given more than once")
		}
	}
	var err error
	if q.From, err = parseTime(v, "from"); err != nil {
		return Query{}, err
	}
	if q.To, err = parseTime(v, "to"); err != nil {
		return Query{}, err
	}
	q.Type = v.Get("type")
	if t, ok := strings.CutSuffix(q.Type, "*"); ok {
		q.Type, q.TypePrefix = t, true
	}
	q.Source, q.Subject, q.ID = v.Get("source"), v.Get("subject"), v.Get("id")
	q.Route, q.Outcome = v.Get("route"), v.Get("outcome")
	if s := v.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil {
			return Query{}, badParam("limit", fmt.Sprintf("%q is not an integer", s))
		}
	}
	switch o := v.Get("order"); o {
	case "", "asc":
	case "desc":
		q.Desc = true
	default:
		return Query{}, badParam("order", fmt.Sprintf("%q is neither asc nor desc", o))
	}
	q.Cursor = v.Get("cursor")
	return q, q.Validate()
}

func parseTime(v url.Values, name string) (time.Time, error) {
	s := v.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badParam(name, fmt.Sprintf("%q is not an RFC 3339 time", s))
	}
	return t, nil
}

func badParam(name, why string) error {
	return fmt.Errorf("%w: parameter %q: %s", ErrBadQuery, name, why)
}
