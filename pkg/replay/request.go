package replay

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
)

// Extensions a replayed copy carries. Names follow the CloudEvents rules
// for extension names: lower-case a-z and 0-9, at most 20 characters.
const (
	// ExtReplay is the id of the replay job that published the copy. It is
	// router.ExtReplay, which the router reads to audit the copy beside the
	// original (Record.Replay) instead of overwriting the original's record.
	ExtReplay = router.ExtReplay
	// ExtReplayTime is when the replay job was created, as an RFC 3339
	// time in UTC: it tells a consumer when the copy was made, where the
	// event's own time says when the event happened.
	ExtReplayTime = "auditbusreplaytime"
)

// ErrBadRequest is wrapped by every error about a Request or a
// RedriveRequest; errors.As finds the *FieldError naming the field.
var ErrBadRequest = errors.New("replay: bad request")

// FieldError is a Request field with a bad value.
type FieldError struct {
	// Field is the field's name as the JSON form spells it, such as
	// "filter.to", "destination" or "rate".
	Field string
	// Reason says what is wrong and what is expected.
	Reason string
}

// Error names the field and the reason.
func (e *FieldError) Error() string {
	return fmt.Sprintf("%v: field %q: %s", ErrBadRequest, e.Field, e.Reason)
}

// Unwrap returns ErrBadRequest.
func (e *FieldError) Unwrap() error { return ErrBadRequest }

func badField(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

// MaxNameLen bounds Request.Name.
const MaxNameLen = 200

// Request describes a replay.
type Request struct {
	// Filter selects the records to replay, as the audit query does: From
	// (inclusive) and To (exclusive), Type (a prefix with TypePrefix),
	// Source, Subject, ID, Route and Outcome. Its paging fields (Limit,
	// Cursor, Desc) must be zero: the job pages in ascending time order
	// itself. Records of earlier replays' copies (Record.Replay set) are
	// never replayed; their originals are.
	Filter sinks.Query
	// Destination receives the copies. Required.
	Destination Target
	// DeadLetter, if set, receives the events the destination gave up on,
	// with the router's dead-letter extensions; without one, an event the
	// destination refuses for good is only reported in the job's errors,
	// and a destination that stays unreachable fails the job.
	DeadLetter Target
	// Rate is the most events published per second; 0 means no limit.
	Rate float64
	// Name is a label for people, at most MaxNameLen bytes.
	Name string
	// Redrive makes the job audit every event the destination accepted
	// again as delivered: a record of the original identity (Replay "")
	// with Outcome "delivered" and a later Received, which supersedes the
	// stored "deadlettered" one. RedriveRequest.Request sets it.
	Redrive bool
}

// Validate reports the first bad field as a *FieldError wrapping
// ErrBadRequest.
func (r Request) Validate() error {
	if err := ValidateFilter(r.Filter); err != nil {
		return err
	}
	switch {
	case isNil(r.Destination):
		return badField("destination", "required")
	case r.Destination.String() == "":
		return badField("destination", "has no name (Target.String)")
	case r.DeadLetter != nil && (isNil(r.DeadLetter) || r.DeadLetter.String() == ""):
		return badField("deadletter", "set but nil or without a name")
	case math.IsNaN(r.Rate) || math.IsInf(r.Rate, 0) || r.Rate < 0:
		return badField("rate", fmt.Sprintf("%v is not a number of events per second >= 0 (0 means no limit)", r.Rate))
	case len(r.Name) > MaxNameLen:
		return badField("name", fmt.Sprintf("%d bytes; at most %d", len(r.Name), MaxNameLen))
	}
	return nil
}

// outcomes are the values Filter.Outcome may take.
var outcomes = []string{sinks.OutcomeDelivered, sinks.OutcomeDeadLettered, sinks.OutcomeFiltered,
	sinks.OutcomeAccepted, sinks.OutcomePoison}

// ValidateFilter checks a replay filter (Request.Filter) alone, as a dry
// run needs: a *FieldError wrapping ErrBadRequest names the first bad
// field.
func ValidateFilter(f sinks.Query) error {
	switch {
	case f.Limit != 0:
		return badField("filter.limit", "must not be set: a replay pages by itself")
	case f.Cursor != "":
		return badField("filter.cursor", "must not be set: a replay pages by itself")
	case f.Desc:
		return badField("filter.order", "must be ascending: a replay runs in time order")
	case !f.From.IsZero() && !f.To.IsZero() && f.To.Equal(f.From):
		return badField("filter.to", "equals filter.from: the time range is empty")
	case !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From):
		return badField("filter.to", "is before filter.from: the time range is inverted")
	case f.TypePrefix && f.Type == "":
		return badField("filter.type", "a type prefix must not be empty")
	case f.Outcome != "" && !slices.Contains(outcomes, f.Outcome):
		return badField("filter.outcome", fmt.Sprintf("%q is not one of %s", f.Outcome, strings.Join(outcomes, ", ")))
	}
	if err := f.Validate(); err != nil {
		return badField("filter", err.Error())
	}
	return nil
}

// isNil reports a nil interface or an interface holding a nil pointer.
func isNil(t Target) bool {
	if t == nil {
		return true
	}
	if n, ok := t.(interface{ isNil() bool }); ok {
		return n.isNil()
	}
	return false
}

// filterJSON is the JSON form of a replay filter.
type filterJSON struct {
	From       *time.Time `json:"from,omitempty"`
	To         *time.Time `json:"to,omitempty"`
	Type       string     `json:"type,omitempty"`
	TypePrefix bool       `json:"typeprefix,omitempty"`
	Source     string     `json:"source,omitempty"`
	Subject    string     `json:"subject,omitempty"`
	ID         string     `json:"id,omitempty"`
	Route      string     `json:"route,omitempty"`
	Outcome    string     `json:"outcome,omitempty"`
}

// requestJSON is the JSON form of a Request: targets by name.
type requestJSON struct {
	Filter      filterJSON `json:"filter"`
	Destination string     `json:"destination"`
	DeadLetter  string     `json:"deadletter,omitempty"`
	Rate        float64    `json:"rate,omitempty"`
	Name        string     `json:"name,omitempty"`
	Redrive     bool       `json:"redrive,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (r Request) wire() requestJSON {
	f := r.Filter
	w := requestJSON{
		Filter: filterJSON{From: timePtr(f.From), To: timePtr(f.To), Type: f.Type, TypePrefix: f.TypePrefix,
			Source: f.Source, Subject: f.Subject, ID: f.ID, Route: f.Route, Outcome: f.Outcome},
		Rate: r.Rate, Name: r.Name, Redrive: r.Redrive,
	}
	if !isNil(r.Destination) {
		w.Destination = r.Destination.String()
	}
	if !isNil(r.DeadLetter) {
		w.DeadLetter = r.DeadLetter.String()
	}
	return w
}

// filter turns the JSON form back into a query.
func (w filterJSON) filter() sinks.Query {
	q := sinks.Query{Type: w.Type, TypePrefix: w.TypePrefix, Source: w.Source, Subject: w.Subject,
		ID: w.ID, Route: w.Route, Outcome: w.Outcome}
	if w.From != nil {
		q.From = *w.From
	}
	if w.To != nil {
		q.To = *w.To
	}
	return q
}

// MarshalJSON writes the request with its targets by name (Target.String):
// {"filter": {"from", "to", "type", "typeprefix", "source", "subject",
// "id", "route", "outcome"}, "destination", "deadletter", "rate", "name",
// "redrive"}, empty fields left out.
func (r Request) MarshalJSON() ([]byte, error) { return json.Marshal(r.wire()) }

// RedriveRequest asks for the events a route dead-lettered to be delivered
// again after a fix.
type RedriveRequest struct {
	// Route is the route whose dead-lettered events are redriven. Required.
	Route string
	// Destination optionally names the route's destination to redrive to.
	// The audit record says that a route dead-lettered an event, not which
	// of its destinations gave up on it, so the caller resolves this name
	// to the Target given to Request; with no name, the caller may send to
	// every destination of the route, and those that had accepted the
	// event get a duplicate, which the at-least-once contract allows.
	Destination string
	// From and To optionally narrow the redrive to a time window, as in
	// Request.Filter.
	From, To time.Time
	// Rate and Name are as in Request.
	Rate float64
	Name string
}

// Request is the replay that carries out the redrive to target: the
// route's records with outcome "deadlettered", published to target, each
// accepted event audited again as delivered.
func (rr RedriveRequest) Request(target Target) (Request, error) {
	if rr.Route == "" {
		return Request{}, badField("route", "required: the route whose dead-lettered events to redrive")
	}
	name := rr.Name
	if name == "" {
		name = "redrive " + rr.Route
		if rr.Destination != "" {
			name += " to " + rr.Destination
		}
	}
	r := Request{
		Filter:      sinks.Query{From: rr.From, To: rr.To, Route: rr.Route, Outcome: sinks.OutcomeDeadLettered},
		Destination: target, Rate: rr.Rate, Name: name, Redrive: true,
	}
	return r, r.Validate()
}
