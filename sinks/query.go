package sinks

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	cliptext "github.com/auditbus/auditbus/bus/clip"
)

// DefaultLimit and MaxLimit bound the page size of a Query.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// Query selects event versions. Zero fields do not filter.
type Query struct {
	// From is inclusive, To exclusive, on the version's indexed time (the
	// event's time attribute, or when it was first recorded); a zero time
	// leaves that side open.
	From, To time.Time
	// Type matches the event type exactly, or as a prefix with TypePrefix.
	Type       string
	TypePrefix bool
	Source     string
	Subject    string
	ID         string
	// Route, Destination, Kind, ReceivedFrom and ReceivedTo select the
	// versions that have at least one entry matching all of those that
	// are set: Route, Destination and Kind exactly, the entry's Time in
	// [ReceivedFrom, ReceivedTo).
	Route        string
	Destination  string
	Kind         string
	ReceivedFrom time.Time
	ReceivedTo   time.Time
	// Redrivable (with Kind KindDeadLettered) keeps only the dead-letter
	// entries that no delivered entry of the same route and destination
	// follows: the versions a redrive still has to deliver.
	Redrivable bool
	// Within narrows the selection to what the reader may see; it is set
	// by the server from the reader's permissions, not from parameters.
	Within Within
	// NoTrail leaves Item.Trail empty, for callers that need the events
	// only.
	NoTrail bool
	// Limit is the page size: 0 means DefaultLimit; at most MaxLimit.
	Limit int
	// Desc orders newest first.
	Desc bool
	// Cursor is a Page.Next from the same query, or "" for the first page.
	Cursor string
}

// Validate reports the first bad parameter, wrapping ErrBadQuery.
func (q Query) Validate() error {
	if q.Kind != "" && !ValidKind(q.Kind) {
		return badParam("outcome", fmt.Sprintf("%q is not one of %s", clip(q.Kind), strings.Join(Kinds, ", ")))
	}
	if q.Redrivable && q.Kind != KindDeadLettered {
		return badParam("outcome", "a redrive selects "+KindDeadLettered+" entries")
	}
	if !q.ReceivedFrom.IsZero() && !q.ReceivedTo.IsZero() && !q.ReceivedTo.After(q.ReceivedFrom) {
		return badParam("received_to", "must be after received_from")
	}
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

// Cursor is the position after the last item of a page: the sort key
// (time, source, id, digest) of that item. A key rather than an offset keeps
// paging stable while versions are appended.
type Cursor struct {
	TimeNs int64
	Source string
	ID     string
	Digest Digest
	// Desc records the direction the cursor was made for, so it cannot be
	// replayed against the other order.
	Desc bool
}

type cursorWire struct {
	T int64  `json:"t"`
	S string `json:"s"`
	I string `json:"i"`
	H string `json:"h,omitempty"`
	D bool   `json:"d,omitempty"`
}

// Encode returns the opaque cursor string.
func (c Cursor) Encode() string {
	var h string
	if !c.Digest.IsZero() {
		h = c.Digest.String()
	}
	b, _ := json.Marshal(cursorWire{c.TimeNs, c.Source, c.ID, h, c.Desc})
	return base64.RawURLEncoding.EncodeToString(b)
}

// CursorAfter is the cursor that continues after it in the given order.
func CursorAfter(it *Item, desc bool) string {
	return Cursor{TimeNs: it.Time.UnixNano(), Source: it.Event.Source(), ID: it.Event.ID(), Digest: it.Digest, Desc: desc}.Encode()
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
	c := Cursor{TimeNs: w.T, Source: w.S, ID: w.I, Desc: w.D}
	if w.H != "" {
		if c.Digest, err = ParseDigest(w.H); err != nil {
			return Cursor{}, badParam("cursor", "not a cursor this store issued")
		}
	}
	return c, nil
}

// queryParams are the parameters ParseQuery accepts.
var queryParams = map[string]bool{
	"from": true, "to": true, "type": true, "source": true, "subject": true,
	"id": true, "route": true, "destination": true, "outcome": true, "received_from": true,
	"received_to": true, "limit": true, "order": true, "cursor": true, "trail": true,
}

// ParseQuery reads a Query from URL parameters, as the audit query endpoint
// receives them: from and to (RFC 3339, the event's time), type (a
// trailing "*" makes it a prefix), source, subject, id, route, destination,
// outcome (an entry kind), received_from and received_to (RFC 3339, the
// entries' recorded time), limit, order (asc or desc), cursor and trail
// (false leaves the trails out: Query.NoTrail). An
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
	q.Route, q.Destination, q.Kind = v.Get("route"), v.Get("destination"), v.Get("outcome")
	if q.ReceivedFrom, err = parseTime(v, "received_from"); err != nil {
		return Query{}, err
	}
	if q.ReceivedTo, err = parseTime(v, "received_to"); err != nil {
		return Query{}, err
	}
	if s := v.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil {
			return Query{}, badParam("limit", fmt.Sprintf("%q is not an integer", clip(s)))
		}
	}
	switch t := v.Get("trail"); t {
	case "", "true":
	case "false":
		q.NoTrail = true
	default:
		return Query{}, badParam("trail", fmt.Sprintf("%q is neither true nor false", t))
	}
	switch o := v.Get("order"); o {
	case "", "asc":
	case "desc":
		q.Desc = true
	default:
		return Query{}, badParam("order", fmt.Sprintf("%q is neither asc nor desc", clip(o)))
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
		return time.Time{}, badParam(name, fmt.Sprintf("%q is not an RFC 3339 time", clip(s)))
	}
	return t, nil
}

// badParam is an ErrBadQuery naming the parameter, which may be the
// client's own (an unknown one): it is clipped like every value echoed.
func badParam(name, why string) error {
	return fmt.Errorf("%w: parameter %q: %s", ErrBadQuery, clip(name), why)
}

// clip shortens what a client sent before an error echoes it.
func clip(s string) string { return cliptext.Text(s, 100) }
