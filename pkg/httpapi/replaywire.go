package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/auditbus/auditbus/sinks"
)

// ReplayRequest is the body of POST /v1/replays.
type ReplayRequest struct {
	// Filter selects the event versions to replay.
	Filter ReplayFilter `json:"filter"`
	// Destination receives the copies; required unless the request is a
	// dry run.
	Destination *ReplayDestination `json:"destination,omitempty"`
	// Rate is the most events published per second; 0 means no limit.
	Rate float64 `json:"rate,omitempty"`
	// Name is a label for people.
	Name string `json:"name,omitempty"`
}

// ReplayFilter selects event versions as the audit query does. Every
// field is optional; From and To (the version's time) and ReceivedFrom
// and ReceivedTo (its entries' time) are RFC 3339 times, each range's
// start inclusive and end exclusive, and a Type ending in "*" matches a
// prefix. Route, Destination, Outcome (an entry kind) and the received
// range select the versions with one entry that matches all of them.
type ReplayFilter struct {
	From         string `json:"from,omitempty"`
	To           string `json:"to,omitempty"`
	Type         string `json:"type,omitempty"`
	Source       string `json:"source,omitempty"`
	Subject      string `json:"subject,omitempty"`
	ID           string `json:"id,omitempty"`
	Route        string `json:"route,omitempty"`
	Destination  string `json:"destination,omitempty"`
	Outcome      string `json:"outcome,omitempty"`
	ReceivedFrom string `json:"received_from,omitempty"`
	ReceivedTo   string `json:"received_to,omitempty"`
}

// ReplayDestination is where a replay publishes: exactly one of a topic
// on an enabled transport (Transport and Topic), a webhook, or a
// destination of a route in the routes file (Route and Destination).
type ReplayDestination struct {
	Transport string         `json:"transport,omitempty"`
	Topic     string         `json:"topic,omitempty"`
	Webhook   *ReplayWebhook `json:"webhook,omitempty"`
	Route     string         `json:"route,omitempty"`
	// Destination names one of the route's destinations.
	Destination string `json:"destination,omitempty"`
}

// ReplayWebhook is a webhook destination given in the request: events are
// posted to URL one at a time in the CloudEvents HTTP binary content mode.
type ReplayWebhook struct {
	// URL is an absolute http or https URL.
	URL string `json:"url"`
	// Timeout bounds one delivery attempt, as a Go duration ("5s");
	// empty means the webhook default of 10s.
	Timeout string `json:"timeout,omitempty"`
	// Headers are added to every request (authorization, say).
	Headers map[string]string `json:"headers,omitempty"`
}

// RedriveRequest is the body of POST /v1/redrives.
type RedriveRequest struct {
	// Route is the route whose dead-lettered events are delivered again.
	Route string `json:"route"`
	// Destination names one of the route's destinations; empty means
	// each destination of the route that has versions to redrive, one
	// job each.
	Destination string `json:"destination,omitempty"`
	// From and To narrow the redrive to a time window of the versions
	// (RFC 3339).
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Rate and Name are as in ReplayRequest.
	Rate float64 `json:"rate,omitempty"`
	Name string  `json:"name,omitempty"`
}

// ReplayJob is a replay job as the API shows it.
type ReplayJob struct {
	ID      string           `json:"id"`
	Name    string           `json:"name"`
	State   replay.State     `json:"state"`
	Request ReplayJobRequest `json:"request"`
	// Progress has done, failed, skipped (copies made by replays, left
	// out), total (-1 while counting), rate (events/s) and eta_seconds.
	Progress replay.Progress `json:"progress"`
	// Errors holds the first failures; ErrorCount counts them all.
	Errors     []replay.JobError `json:"errors"`
	ErrorCount int64             `json:"error_count"`
	// Error says why a failed job stopped.
	Error   string    `json:"error,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// ReplayJobRequest is a job's request: the filter as it was given and the
// destination by name.
type ReplayJobRequest struct {
	Filter      ReplayFilter `json:"filter"`
	Destination string       `json:"destination"`
	Rate        float64      `json:"rate"`
	Redrive     bool         `json:"redrive,omitempty"`
	// Narrowed is the narrowing of the reader who started the job: the
	// job replays only what that reader may read.
	Narrowed *Narrowing `json:"narrowed,omitempty"`
}

// replayList is the answer of GET /v1/replays.
type replayList struct {
	Replays []ReplayJob `json:"replays"`
	// Next is the after of the next page; left out after the last.
	Next string `json:"next,omitempty"`
	// Narrowed says the page holds only the jobs that read no more than
	// the reader may.
	Narrowed *Narrowing `json:"narrowed,omitempty"`
}

// redriveAnswer is the answer of POST /v1/redrives: the jobs started,
// none when no destination of the route has a version to redrive.
type redriveAnswer struct {
	Jobs []ReplayJob `json:"jobs"`
	// Narrowed says the jobs redrive only what the reader may see.
	Narrowed json.RawMessage `json:"narrowed,omitempty"`
}

// jobView is how the API shows j.
func jobView(j replay.Job) ReplayJob {
	r := j.Request
	v := ReplayJob{
		ID: j.ID, Name: r.Name, State: j.State, Progress: j.Progress, Errors: j.Errors,
		ErrorCount: j.ErrorCount, Error: j.Error, Created: j.Created, Updated: j.Updated,
		Request: ReplayJobRequest{Filter: filterView(r.Filter), Rate: r.Rate, Redrive: r.Redrive, Narrowed: narrowingOf(r.Filter.Within)},
	}
	if r.Destination != nil {
		v.Request.Destination = r.Destination.String()
	}
	if v.Errors == nil {
		v.Errors = []replay.JobError{}
	}
	return v
}

func filterView(q sinks.Query) ReplayFilter {
	f := ReplayFilter{Type: q.Type, Source: q.Source, Subject: q.Subject, ID: q.ID, Route: q.Route,
		Destination: q.Destination, Outcome: q.Kind, From: timeView(q.From), To: timeView(q.To),
		ReceivedFrom: timeView(q.ReceivedFrom), ReceivedTo: timeView(q.ReceivedTo)}
	if q.TypePrefix {
		f.Type += "*"
	}
	return f
}

// timeView is t in RFC 3339, "" when zero.
func timeView(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// query turns the filter into a store query; errors are *replay.FieldError.
func (f ReplayFilter) query() (sinks.Query, error) {
	q := sinks.Query{Type: f.Type, Source: f.Source, Subject: f.Subject, ID: f.ID, Route: f.Route,
		Destination: f.Destination, Kind: f.Outcome}
	for _, t := range []struct {
		field, v string
		to       *time.Time
	}{{"filter.from", f.From, &q.From}, {"filter.to", f.To, &q.To},
		{"filter.received_from", f.ReceivedFrom, &q.ReceivedFrom}, {"filter.received_to", f.ReceivedTo, &q.ReceivedTo}} {
		var err error
		if *t.to, err = fieldTime(t.field, t.v); err != nil {
			return q, err
		}
	}
	if t, ok := strings.CutSuffix(q.Type, "*"); ok {
		q.Type, q.TypePrefix = t, true
	}
	return q, replay.ValidateFilter(q)
}

// fieldTime reads an optional RFC 3339 time.
func fieldTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, &replay.FieldError{Field: field, Reason: fmt.Sprintf("%q is not an RFC 3339 time such as 2026-05-01T10:00:00Z", clip(s))}
	}
	return t, nil
}

// check refuses a destination that is not exactly one of its three forms.
func (d *ReplayDestination) check() error {
	forms := 0
	if d.Transport != "" || d.Topic != "" {
		forms++
	}
	if d.Webhook != nil {
		forms++
	}
	if d.Route != "" || d.Destination != "" {
		forms++
	}
	switch {
	case forms == 0:
		return &replay.FieldError{Field: "destination", Reason: destinationForms}
	case forms > 1:
		return &replay.FieldError{Field: "destination", Reason: "gives more than one of the forms; " + destinationForms}
	case d.Webhook != nil:
		if d.Webhook.URL == "" {
			return &replay.FieldError{Field: "destination.webhook.url", Reason: "required: an absolute http or https URL"}
		}
		_, err := d.Webhook.timeout()
		return err
	case d.Route == "" && d.Destination != "":
		return &replay.FieldError{Field: "destination.route", Reason: "required with destination: the route the destination belongs to"}
	case d.Route != "" && d.Destination == "":
		return &replay.FieldError{Field: "destination.destination", Reason: "required with route: the name of one of the route's destinations"}
	case d.Route != "":
		return nil
	case d.Transport == "":
		return &replay.FieldError{Field: "destination.transport", Reason: "required with topic"}
	case d.Topic == "":
		return &replay.FieldError{Field: "destination.topic", Reason: "required with transport"}
	}
	return nil
}

const destinationForms = `give {"transport": T, "topic": NAME}, {"webhook": {"url": URL}} or {"route": R, "destination": NAME}`

// timeout is the webhook's timeout; 0 means the default.
func (w *ReplayWebhook) timeout() (time.Duration, error) {
	if w.Timeout == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(w.Timeout)
	if err != nil || d <= 0 {
		return 0, &replay.FieldError{Field: "destination.webhook.timeout", Reason: fmt.Sprintf("%q is not a positive duration such as 5s", clip(w.Timeout))}
	}
	return d, nil
}

// TimeoutDuration is Timeout as a duration, 0 when not given or not
// valid; the server checks Timeout before a Destinations sees it.
func (w *ReplayWebhook) TimeoutDuration() time.Duration {
	d, _ := w.timeout()
	return d
}

// fields is the shape of a JSON body: the member names each object
// accepts, with the shape of those that are objects themselves (nil: any
// value).
type fields map[string]fields

var (
	replayFields = fields{
		"filter": {"from": nil, "to": nil, "type": nil, "source": nil, "subject": nil, "id": nil, "route": nil,
			"destination": nil, "outcome": nil, "received_from": nil, "received_to": nil},
		"destination": {"transport": nil, "topic": nil, "route": nil, "destination": nil,
			"webhook": {"url": nil, "timeout": nil, "headers": nil}},
		"rate": nil, "name": nil,
	}
	redriveFields = fields{"route": nil, "destination": nil, "from": nil, "to": nil, "rate": nil, "name": nil}
)

// errMalformed marks a body that is not JSON at all.
var errMalformed = errors.New("malformed JSON")

// decodeBody reads a JSON object into v, refusing members the shape does
// not list. Errors are *replay.FieldError naming the member by its path
// ("filter.from"), or wrap errMalformed.
func decodeBody(body []byte, shape fields, v any) error {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("%w: %v", errMalformed, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: more than one JSON value in the body", errMalformed)
	}
	if _, ok := doc.(map[string]any); !ok {
		return fmt.Errorf("%w: the body must be a JSON object", errMalformed)
	}
	if err := unknownMember(doc, shape, ""); err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field != "" {
			return &replay.FieldError{Field: strings.TrimPrefix(te.Field, "."), Reason: fmt.Sprintf("a JSON %s where %s is expected", te.Value, kindOf(te.Type.Kind().String()))}
		}
		return fmt.Errorf("%w: %v", errMalformed, err)
	}
	return nil
}

// kindOf says a Go kind in JSON's words.
func kindOf(k string) string {
	switch {
	case k == "string":
		return "a string"
	case strings.HasPrefix(k, "float"), strings.HasPrefix(k, "int"):
		return "a number"
	case k == "struct", k == "map", k == "ptr":
		return "an object"
	}
	return "a " + k
}

// unknownMember finds the first member of doc, in name order, that shape
// does not list.
func unknownMember(doc any, shape fields, path string) error {
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil // a type mismatch is json.Unmarshal's to report
	}
	names := make([]string, 0, len(obj))
	for k := range obj {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		sub, known := shape[k]
		if !known {
			accepted := make([]string, 0, len(shape))
			for a := range shape {
				accepted = append(accepted, a)
			}
			sort.Strings(accepted)
			return &replay.FieldError{Field: path + clip(k), Reason: "unknown field; accepted here: " + strings.Join(accepted, ", ")}
		}
		if sub != nil {
			if err := unknownMember(obj[k], sub, path+k+"."); err != nil {
				return err
			}
		}
	}
	return nil
}
