package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/pkg/apierror"
	"github.com/auditbus/auditbus/pkg/auth"
	"github.com/auditbus/auditbus/pkg/cehttp"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/trace"
)

// TransportHTTP is the Transport of the received entries of ingested
// events.
const TransportHTTP = router.TransportHTTP

// Anonymous is the Principal of events ingested while authentication is
// off.
const Anonymous = "anonymous"

// retryAfter is the Retry-After of a 503, in seconds.
const retryAfter = "5"

// auditTimeout bounds the audit write that follows a successful publish.
// That write outlives the request: once the transport has the events,
// their record is what makes them findable and replayable.
const auditTimeout = 30 * time.Second

// target is where POST /v1/events sends its events: a route, or a topic on
// the default transport.
type target struct {
	route, topic string
}

// ingestTarget reads ?route= or ?topic=.
func (s *Server) ingestTarget(rawQuery string) (target, error) {
	v, err := url.ParseQuery(rawQuery)
	if err != nil {
		return target{}, fmt.Errorf("the query string is malformed: %w", err)
	}
	for k, vals := range v {
		if k != "route" && k != "topic" {
			return target{}, fmt.Errorf("parameter %q: unknown; POST /v1/events accepts topic=NAME (default %q) or route=NAME", clip(k), s.o.DefaultTopic)
		}
		if len(vals) != 1 {
			return target{}, fmt.Errorf("parameter %q: given %d times; give it once", k, len(vals))
		}
		if vals[0] == "" {
			return target{}, fmt.Errorf("parameter %q: empty; name a %s, or leave the parameter out", k, k)
		}
	}
	t := target{route: v.Get("route"), topic: v.Get("topic")}
	switch {
	case t.route != "" && t.topic != "":
		return target{}, errors.New("parameters \"route\" and \"topic\": give one, not both: a route decides its destinations itself")
	case t.route != "":
		return t, nil
	case t.topic == "":
		t.topic = s.o.DefaultTopic
	}
	if err := checkTopic(t.topic); err != nil {
		return target{}, fmt.Errorf("parameter \"topic\": %q: %w", clip(t.topic), err)
	}
	return t, nil
}

// checkTopic refuses topic names no transport takes.
func checkTopic(t string) error {
	if len(t) > 249 {
		return fmt.Errorf("%d bytes long; at most 249", len(t))
	}
	for _, c := range t {
		if unicode.IsSpace(c) || !unicode.IsPrint(c) {
			return errors.New("holds a space or a control character; use letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}

// ingest is POST /v1/events.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request) {
	w, ctx, end := s.traceIngest(w, r)
	defer end()
	t, err := s.ingestTarget(r.URL.RawQuery)
	if err != nil {
		s.refuse(w, r, t, http.StatusBadRequest, apierror.Detail{Code: CodeBadQuery, Message: err.Error()})
		return
	}
	// With the ResponseWriter, an oversize body also closes the connection.
	r.Body = http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes)
	evs, err := cehttp.Decode(r, s.o.MaxBodyBytes)
	if err != nil {
		de, ok := errors.AsType[*cehttp.Error](err)
		if !ok {
			s.fail(w, r, t, http.StatusInternalServerError, CodeInternal, fmt.Errorf("decode the request: %w", err))
			return
		}
		d := apierror.Detail{Code: de.Code, Message: de.Message, Attribute: de.Attribute}
		if de.Index >= 0 {
			d.Index = &de.Index
		}
		if de.Status == http.StatusRequestEntityTooLarge {
			w.Header().Set("Connection", "close")
		}
		s.refuse(w, r, t, de.Status, d)
		return
	}
	from := router.IngestOptions{Request: newRequestID(), Principal: Anonymous}
	if p, ok := auth.FromContext(r.Context()); ok {
		from.Principal = p.Subject
		if refused := checkPublish(p, t, evs); refused != nil {
			s.refusePublish(ctx, w, r, t, evs, from, refused)
			return
		}
	}
	switch {
	case len(evs) == 0:
		// An empty batch: nothing to publish or audit.
	case t.route != "":
		err = s.ingestRoute(ctx, t.route, evs, from)
	default:
		err = s.ingestTopic(ctx, t.topic, evs, from)
	}
	if err != nil {
		s.ingestFailed(w, r, t, err)
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "events accepted", s.attrs(r, t, slog.Int("events", len(evs)))...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"accepted":` + strconv.Itoa(len(evs)) + "}\n"))
}

// newRequestID names one ingest request in the received entries of its
// events: 128 random bits in hex.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	return hex.EncodeToString(b[:])
}

// ingestRoute runs evs through an HTTP-fed route, which delivers them and
// records their received entries.
func (s *Server) ingestRoute(ctx context.Context, name string, evs []event.Event, from router.IngestOptions) error {
	if s.o.Router == nil {
		return fmt.Errorf("route %q: %w", name, router.ErrUnknownRoute)
	}
	return s.o.Router.Ingest(ctx, name, evs, from)
}

// ingestTopic publishes evs to topic on the default transport, then
// records each as received: over HTTP, for topic, by from's request and
// principal, at its position in the request. The route that reads the
// topic records what it does with them. A version that conflicts with one
// stored before (same source and id, other content) is recorded beside it
// and flagged; that is the store's business, not an error of the request.
func (s *Server) ingestTopic(ctx context.Context, topic string, evs []event.Event, from router.IngestOptions) error {
	pctx, span := s.startPublish(ctx, topic, evs)
	err := s.o.Transport.Publish(pctx, topic, evs)
	bus.EndSpan(span, err)
	if err != nil {
		return &publishError{topic: topic, err: err}
	}
	now := s.now().UTC()
	recs := make([]sinks.Record, len(evs))
	entries := make([]sinks.Entry, len(evs))
	traceID, spanID := sinks.TraceIDs(trace.SpanContextFromContext(ctx))
	for i := range evs {
		entries[i] = sinks.Entry{
			Kind: sinks.KindReceived, Time: now, Transport: TransportHTTP, Topic: topic, Offset: int64(i),
			Request: from.Request, Principal: from.Principal, TraceID: traceID, SpanID: spanID,
		}
		if s.o.Signatures != nil {
			entries[i].Signature = s.o.Signatures.Check(&evs[i]).Entry
		}
		recs[i] = sinks.Record{Event: evs[i], Entries: entries[i : i+1 : i+1]}
	}
	// The writer retries a failed append with these same records, so a
	// retry records nothing twice.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if err := s.o.Audit.Write(actx, recs); err != nil {
		return &auditError{topic: topic, n: len(recs), err: err}
	}
	return nil
}

// publishError is a refusal or failure of the default transport.
type publishError struct {
	topic string
	err   error
}

func (e *publishError) Error() string {
	return fmt.Sprintf("publish to topic %q: %v", e.topic, e.err)
}

func (e *publishError) Unwrap() error { return e.err }

// auditError is a failed audit write after a successful publish.
type auditError struct {
	topic string
	n     int
	err   error
}

func (e *auditError) Error() string {
	return fmt.Sprintf("audit %d events published to topic %q: %v", e.n, e.topic, e.err)
}

func (e *auditError) Unwrap() error { return e.err }

// ingestFailed answers an ingest the transport, the route or the audit
// store did not take.
func (s *Server) ingestFailed(w http.ResponseWriter, r *http.Request, t target, err error) {
	tr := s.o.TransportName
	var refused *router.RefusedError
	switch {
	case errors.As(err, &refused):
		// 403, not 422: the events are well-formed, but the route does
		// not accept them from whoever signed them (or did not).
		s.refuse(w, r, t, http.StatusForbidden, apierror.Detail{Code: CodeSignature, Index: &refused.Index,
			Message: refused.Error() + "; the refused events are recorded: sign them with a key the signer registry allows for their source and type, and send the request again"})
	case errors.Is(err, router.ErrUnknownRoute):
		msg := fmt.Sprintf("no HTTP-fed route is named %q", clip(t.route))
		if s.o.Router == nil || len(s.o.Router.HTTPRoutes()) == 0 {
			msg += "; this server has no HTTP-fed routes: add a route with source {http: true} to the routes file, or send to ?topic=NAME"
		} else {
			msg += "; the HTTP-fed routes are " + strings.Join(quoteAll(s.o.Router.HTTPRoutes()), ", ")
		}
		s.refuse(w, r, t, http.StatusNotFound, apierror.Detail{Code: CodeUnknownRoute, Message: msg})
	case t.route == "" && errors.Is(err, bus.ErrNoRoute):
		s.refuse(w, r, t, http.StatusNotFound, apierror.Detail{Code: CodeNoRoute, Message: fmt.Sprintf(
			"nothing consumes topic %q on the %s transport, so its events would be lost; nothing was accepted. "+
				"Add a route that reads it (source: {transport: %s, topic: %s}) to the routes file, send to a topic a route reads (?topic=NAME), "+
				"or send through an HTTP-fed route (?route=NAME)", clip(t.topic), tr, tr, clip(t.topic))})
	case errors.Is(err, bus.ErrTooLarge):
		w.Header().Set("Connection", "close")
		s.refuse(w, r, t, http.StatusRequestEntityTooLarge, eventDetail(CodeTooLarge, err))
	case errors.Is(err, bus.ErrInvalidEvent):
		s.refuse(w, r, t, http.StatusBadRequest, eventDetail(CodeInvalidEvent, err))
	default:
		s.fail(w, r, t, http.StatusServiceUnavailable, CodeUnavailable, err)
	}
}

// eventDetail describes an event the transport refused, naming the batch
// element and attribute when it can.
func eventDetail(code string, err error) apierror.Detail {
	d := apierror.Detail{Code: code, Message: err.Error() + "; nothing was accepted: fix the event and send the request again"}
	if ee, ok := errors.AsType[*bus.EventError](err); ok {
		d.Attribute = ee.Attribute
		if ee.Index >= 0 {
			d.Index = &ee.Index
		}
	}
	return d
}

// refuse answers a request the client must change, and logs it.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, t target, status int, d apierror.Detail) {
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "ingest refused",
		s.attrs(r, t, slog.Int("status", status), slog.String("code", d.Code), slog.String("error", d.Message))...)
	apierror.WriteDetail(w, status, d)
}

// fail answers a request this server could not carry out, and logs it. A
// 503 carries Retry-After: sending the request again later is the fix.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, t target, status int, code string, err error) {
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "ingest failed",
		s.attrs(r, t, slog.Int("status", status), slog.String("code", code), slog.Any("error", err))...)
	msg := err.Error()
	var ae *auditError
	switch {
	case errors.As(err, &ae):
		msg += "; the events reached the transport but have no audit record yet: send the request again later " +
			"(consumers may then see duplicates, which they drop by source and id)"
	case status == http.StatusServiceUnavailable:
		msg += "; nothing was acknowledged: send the request again later (the events may be duplicated, never lost)"
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	apierror.Write(w, status, code, msg)
}

// attrs are the log attributes of an ingest: who sent it and where it
// went, then extra.
func (s *Server) attrs(r *http.Request, t target, extra ...slog.Attr) []slog.Attr {
	a := make([]slog.Attr, 0, 6+len(extra))
	if p, ok := auth.FromContext(r.Context()); ok {
		a = append(a, slog.String("subject", p.Subject))
	}
	a = append(a, slog.String("remote", r.RemoteAddr))
	if t.route != "" {
		a = append(a, slog.String("route", t.route))
	} else if t.topic != "" {
		a = append(a, slog.String("transport", s.o.TransportName), slog.String("topic", t.topic))
	}
	return append(a, extra...)
}

func quoteAll(list []string) []string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return q
}
