package replay

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
)

// Extensions a replayed copy carries. Names follow the CloudEvents rules
// for extension names: lower-case a-z and 0-9, at most 20 characters.
const (
	// ExtReplay is the id of the replay job that published the copy
	// (router.ExtReplay). The job records the copy as a replayed entry on
	// the original version; a route that reads the copy records it as a
	// version of its own, which later replays leave out.
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
	// Filter selects the event versions to replay, as the audit query
	// does: From (inclusive) and To (exclusive), Type (a prefix with
	// TypePrefix), Source, Subject and ID on the version, and Route,
	// Destination, Kind, ReceivedFrom and ReceivedTo on its entries (a
	// version is selected when one of its entries matches all of those
	// set). Its paging fields (Limit, Cursor, Desc) must be zero: the job
	// reads in ascending order itself. Versions that are copies made by
	// earlier replays (they carry ExtReplay, as a route that read a copy
	// recorded it) are never published again; their originals are.
	Filter sinks.Query
	// Destination receives the copies. Required.
	Destination Target
	// Route and RouteDestination name the destination of a route that
	// Destination stands for, when it is one: the job's ledger entries
	// then name that route and destination, as the router's entries do.
	// Otherwise the entries name Destination.String() as their
	// destination and no route.
	Route, RouteDestination string
	// DeadLetter, if set, receives the events the destination gave up on,
	// with the router's dead-letter extensions; without one, an event the
	// destination refuses for good is only reported in the job's errors,
	// and a destination that stays unreachable fails the job.
	DeadLetter Target
	// Rate is the most events published per second; 0 means no limit.
	Rate float64
	// Name is a label for people, at most MaxNameLen bytes.
	Name string
	// Redrive makes the job deliver dead-lettered versions again: each
	// version the destination accepts gets a delivered entry (Route,
	// RouteDestination, the attempts and the job id as Replay) instead of
	// a replayed one, and so is no longer redrivable.
	// RedriveRequest.Request sets it, with the filter that selects what
	// is still dead-lettered.
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
	case (r.Route == "") != (r.RouteDestination == ""):
		return badField("routedestination", "route and routedestination go together: they name one destination of a route")
	case r.Redrive && r.Route == "":
		return badField("route", "required for a redrive: the route whose destination delivers again")
	case r.Redrive && (!r.Filter.Redrivable || r.Filter.Route != r.Route || r.Filter.Destination != r.RouteDestination):
		return badField("filter", "a redrive selects the versions its route and destination dead-lettered (RedriveRequest.Request makes the filter)")
	case math.IsNaN(r.Rate) || math.IsInf(r.Rate, 0) || r.Rate < 0:
		return badField("rate", fmt.Sprintf("%v is not a number of events per second >= 0 (0 means no limit)", r.Rate))
	case len(r.Name) > MaxNameLen:
		return badField("name", fmt.Sprintf("%d bytes; at most %d", len(r.Name), MaxNameLen))
	}
	return nil
}

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
	case !f.ReceivedFrom.IsZero() && !f.ReceivedTo.IsZero() && !f.ReceivedTo.After(f.ReceivedFrom):
		return badField("filter.received_to", "is not after filter.received_from: the time range is empty")
	case f.TypePrefix && f.Type == "":
		return badField("filter.type", "a type prefix must not be empty")
	case f.Kind != "" && !sinks.ValidKind(f.Kind):
		return badField("filter.outcome", fmt.Sprintf("%q is not an entry kind; the kinds are %s", f.Kind, strings.Join(sinks.Kinds, ", ")))
	case f.Redrivable && f.Kind != sinks.KindDeadLettered:
		return badField("filter.outcome", "a redrive selects "+sinks.KindDeadLettered+" entries")
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
	From         *time.Time `json:"from,omitempty"`
	To           *time.Time `json:"to,omitempty"`
	Type         string     `json:"type,omitempty"`
	TypePrefix   bool       `json:"typeprefix,omitempty"`
	Source       string     `json:"source,omitempty"`
	Subject      string     `json:"subject,omitempty"`
	ID           string     `json:"id,omitempty"`
	Route        string     `json:"route,omitempty"`
	Destination  string     `json:"destination,omitempty"`
	Outcome      string     `json:"outcome,omitempty"`
	ReceivedFrom *time.Time `json:"received_from,omitempty"`
	ReceivedTo   *time.Time `json:"received_to,omitempty"`
	Redrivable   bool       `json:"redrivable,omitempty"`
	// Within is the narrowing of the reader who started the job, kept so
	// that a resumed or retried job stays within it.
	Within *withinJSON `json:"within,omitempty"`
}

// withinJSON is the JSON form of sinks.Within.
type withinJSON struct {
	SourcePrefixes []string `json:"source_prefixes,omitempty"`
	TypePrefixes   []string `json:"type_prefixes,omitempty"`
	// NoSources and NoTypes keep an empty list, which allows nothing,
	// apart from a list left out.
	NoSources bool `json:"no_sources,omitempty"`
	NoTypes   bool `json:"no_types,omitempty"`
}

func withinWire(w sinks.Within) *withinJSON {
	if !w.Narrows() {
		return nil
	}
	return &withinJSON{SourcePrefixes: w.SourcePrefixes, TypePrefixes: w.TypePrefixes,
		NoSources: w.SourcePrefixes != nil && len(w.SourcePrefixes) == 0, NoTypes: w.TypePrefixes != nil && len(w.TypePrefixes) == 0}
}

func (w *withinJSON) within() sinks.Within {
	if w == nil {
		return sinks.Within{}
	}
	out := sinks.Within{SourcePrefixes: w.SourcePrefixes, TypePrefixes: w.TypePrefixes}
	if w.NoSources {
		out.SourcePrefixes = []string{}
	}
	if w.NoTypes {
		out.TypePrefixes = []string{}
	}
	return out
}

// requestJSON is the JSON form of a Request: targets by name.
type requestJSON struct {
	Filter           filterJSON `json:"filter"`
	Destination      string     `json:"destination"`
	Route            string     `json:"route,omitempty"`
	RouteDestination string     `json:"routedestination,omitempty"`
	DeadLetter       string     `json:"deadletter,omitempty"`
	Rate             float64    `json:"rate,omitempty"`
	Name             string     `json:"name,omitempty"`
	Redrive          bool       `json:"redrive,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func timeOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func (r Request) wire() requestJSON {
	f := r.Filter
	w := requestJSON{
		Filter: filterJSON{From: timePtr(f.From), To: timePtr(f.To), Type: f.Type, TypePrefix: f.TypePrefix,
			Source: f.Source, Subject: f.Subject, ID: f.ID, Route: f.Route, Destination: f.Destination, Outcome: f.Kind,
			ReceivedFrom: timePtr(f.ReceivedFrom), ReceivedTo: timePtr(f.ReceivedTo), Redrivable: f.Redrivable, Within: withinWire(f.Within)},
		Route: r.Route, RouteDestination: r.RouteDestination, Rate: r.Rate, Name: r.Name, Redrive: r.Redrive,
	}
	if !isNil(r.Destination) {
		w.Destination = r.Destination.String()
	}
	if !isNil(r.DeadLetter) {
		w.DeadLetter = r.DeadLetter.String()
	}
	return w
}

// legacyOutcomes are the outcomes job files written before the ledger
// hold, with the entry kind each stands for.
var legacyOutcomes = map[string]string{"accepted": sinks.KindReceived}

// filter turns the JSON form back into a query.
func (w filterJSON) filter() sinks.Query {
	kind := w.Outcome
	if k, ok := legacyOutcomes[kind]; ok {
		kind = k
	}
	return sinks.Query{From: timeOf(w.From), To: timeOf(w.To), Type: w.Type, TypePrefix: w.TypePrefix, Source: w.Source,
		Subject: w.Subject, ID: w.ID, Route: w.Route, Destination: w.Destination, Kind: kind,
		ReceivedFrom: timeOf(w.ReceivedFrom), ReceivedTo: timeOf(w.ReceivedTo), Redrivable: w.Redrivable, Within: w.Within.within()}
}

// MarshalJSON writes the request with its targets by name (Target.String):
// {"filter": {"from", "to", "type", "typeprefix", "source", "subject",
// "id", "route", "destination", "outcome", "received_from",
// "received_to", "redrivable"}, "destination", "route",
// "routedestination", "deadletter", "rate", "name", "redrive"}, empty
// fields left out.
func (r Request) MarshalJSON() ([]byte, error) { return json.Marshal(r.wire()) }

// RedriveRequest asks for the versions a destination of a route
// dead-lettered to be delivered again after a fix.
type RedriveRequest struct {
	// Route is the route whose dead-lettered versions are redriven.
	// Required.
	Route string
	// Destination names the route's destination to redrive, as the
	// router's entries name it; the caller resolves it to the Target
	// given to Request. Required: a route's destinations are redriven
	// one job each, each job delivering the versions that destination
	// dead-lettered and did not deliver since.
	Destination string
	// From and To optionally narrow the redrive to a time window of the
	// versions, as in Request.Filter.
	From, To time.Time
	// Rate and Name are as in Request.
	Rate float64
	Name string
}

// Filter selects what the redrive delivers: the versions with a
// dead-lettered entry of the route and destination that no later
// delivered entry of the same route and destination answers.
func (rr RedriveRequest) Filter() sinks.Query {
	return sinks.Query{From: rr.From, To: rr.To, Route: rr.Route, Destination: rr.Destination,
		Kind: sinks.KindDeadLettered, Redrivable: true}
}

// Request is the replay that carries out the redrive to target, which
// must be the route destination rr names.
func (rr RedriveRequest) Request(target Target) (Request, error) {
	switch {
	case rr.Route == "":
		return Request{}, badField("route", "required: the route whose dead-lettered events to redrive")
	case rr.Destination == "":
		return Request{}, badField("destination", "required: the destination of the route that dead-lettered the events")
	}
	name := rr.Name
	if name == "" {
		name = "redrive " + rr.Route + " to " + rr.Destination
	}
	r := Request{
		Filter: rr.Filter(), Destination: target, Route: rr.Route, RouteDestination: rr.Destination,
		Rate: rr.Rate, Name: name, Redrive: true,
	}
	return r, r.Validate()
}
