package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/auditbus/auditbus/pkg/apierror"
	"github.com/auditbus/auditbus/pkg/auth"
	"github.com/auditbus/auditbus/pkg/refusal"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/trace"
)

// CodePermissionDenied answers a request its principal's permissions do
// not allow: a publish outside its topics, routes, sources or types, or
// a read that cannot be narrowed to what it may see.
const CodePermissionDenied = "permission_denied"

// HeaderNarrowed marks an answer narrowed to what the reader may see; its
// value is the answer's "narrowed" member, in JSON with non-ASCII
// characters escaped.
const HeaderNarrowed = "Auditbus-Narrowed"

// permissionsOf is the permissions of the request's principal; the zero
// Set when authentication is off.
func permissionsOf(r *http.Request) (auth.Principal, bool) {
	return auth.FromContext(r.Context())
}

// readerWithin is the narrowing of the reader's reads, and marks the
// answer as narrowed when there is one.
func readerWithin(w http.ResponseWriter, r *http.Request) sinks.Within {
	p, ok := permissionsOf(r)
	if !ok || !p.Permissions.Reads() {
		return sinks.Within{}
	}
	within := p.Permissions.Within()
	w.Header().Set(HeaderNarrowed, asciiJSON(narrowedJSON(within)))
	return within
}

// asciiJSON is b with every non-ASCII character escaped (\uXXXX), for a
// header value.
func asciiJSON(b []byte) string {
	var out strings.Builder
	for _, r := range string(b) {
		switch {
		case r < utf8.RuneSelf:
			out.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&out, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&out, `\u%04x`, r)
		}
	}
	return out.String()
}

// Narrowing is the "narrowed" member of an answer narrowed to what the
// reader may read: the prefixes its sources and types start with, each
// left out when it does not narrow.
type Narrowing struct {
	SourcePrefixes []string `json:"source_prefixes,omitempty"`
	TypePrefixes   []string `json:"type_prefixes,omitempty"`
}

// narrowingOf is within's Narrowing; nil when nothing is narrowed.
func narrowingOf(within sinks.Within) *Narrowing {
	if !within.Narrows() {
		return nil
	}
	return &Narrowing{SourcePrefixes: within.SourcePrefixes, TypePrefixes: within.TypePrefixes}
}

// narrowedJSON is within's Narrowing in JSON; nil when nothing is
// narrowed.
func narrowedJSON(within sinks.Within) json.RawMessage {
	n := narrowingOf(within)
	if n == nil {
		return nil
	}
	b, _ := json.Marshal(n)
	return b
}

// refuseWhole answers 403 to a read a narrowed reader may not make at
// all, because it cannot be narrowed to sources and types.
func refuseWhole(w http.ResponseWriter, r *http.Request, what string) bool {
	p, ok := permissionsOf(r)
	if !ok || !p.Permissions.Reads() {
		return false
	}
	apierror.Write(w, http.StatusForbidden, CodePermissionDenied, fmt.Sprintf(
		"%s covers the events of every source and type, and this token reads only %s; use GET /v1/events, or a token without source or type restrictions",
		what, p.Permissions.Within()))
	return true
}

// checkPublish refuses the events of an ingest its principal may not
// send: the target's topic or route, then each event's source and type.
// It returns the refusal of each refused event, by index; nil when all
// may go.
func checkPublish(p auth.Principal, t target, evs []event.Event) map[int]*refusal.Error {
	set := p.Permissions
	if !set.Restricted() {
		return nil
	}
	var whole error
	if t.route != "" {
		whole = set.CheckRoute(t.route)
	} else {
		whole = set.CheckTopic(t.topic)
	}
	refused := map[int]*refusal.Error{}
	for i := range evs {
		err := whole
		if err == nil {
			err = set.CheckEvent(evs[i].Source(), evs[i].Type())
		}
		if re, ok := refusal.As(err); ok {
			refused[i] = re
		}
	}
	if len(refused) == 0 {
		return nil
	}
	return refused
}

// refusePublish records each refused event (its version and a refused
// entry with the principal, the transport and the rule), counts them, and
// answers 403 naming the first refused event's rule. Nothing of the
// request is published: a batch is all or nothing.
func (s *Server) refusePublish(ctx context.Context, w http.ResponseWriter, r *http.Request, t target, evs []event.Event, from router.IngestOptions, refused map[int]*refusal.Error) {
	first := len(evs)
	now := s.now().UTC()
	traceID, spanID := sinks.TraceIDs(trace.SpanContextFromContext(ctx))
	recs := make([]sinks.Record, 0, len(refused))
	for i := range evs {
		re, ok := refused[i]
		if !ok {
			continue
		}
		first = min(first, i)
		s.o.Refusals.Count(TransportHTTP, re.Reason, 1)
		recs = append(recs, sinks.Record{Event: evs[i], Entries: []sinks.Entry{{
			Kind: sinks.KindRefused, Time: now, Transport: TransportHTTP, Topic: t.topic, Route: t.route, Offset: int64(i),
			Request: from.Request, Principal: from.Principal, Error: re.Error(), TraceID: traceID, SpanID: spanID,
		}}})
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if err := s.o.Audit.Write(actx, recs); err != nil {
		// The refusal stands; only its record is missing, so the client
		// hears 503 and sends again, which records it then.
		s.fail(w, r, t, http.StatusServiceUnavailable, CodeUnavailable, fmt.Errorf("record %d refused events: %w", len(recs), err))
		return
	}
	msg := fmt.Sprintf("event #%d: %s", first, refused[first].Rule)
	if len(evs) > 1 {
		msg = fmt.Sprintf("%d of the %d events of the request are refused, so none was published; %s", len(refused), len(evs), msg)
	}
	msg += "; the refusal is recorded in the audit ledger"
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "ingest refused by permissions",
		s.attrs(r, t, slog.Int("refused", len(refused)), slog.String("reason", refused[first].Reason), slog.String("error", refused[first].Rule))...)
	d := apierror.Detail{Code: CodePermissionDenied, Message: msg, Index: &first}
	switch refused[first].Reason {
	case refusal.SourceNotAllowed:
		d.Attribute = "source"
	case refusal.TypeNotAllowed:
		d.Attribute = "type"
	}
	apierror.WriteDetail(w, http.StatusForbidden, d)
}
