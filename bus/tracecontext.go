package bus

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	cliptext "github.com/auditbus/auditbus/bus/clip"
	"go.opentelemetry.io/otel/trace"
)

// Names of the W3C trace context. They are at once the HTTP and broker
// header names a hop writes, and the extension names of the CloudEvents
// distributed-tracing extension.
const (
	TraceParent = "traceparent"
	TraceState  = "tracestate"
)

// TraceContext is the W3C trace context of the hop that published a
// message: the traceparent and tracestate values a transport writes in the
// message's own headers (not in the event, whose distributed-tracing
// extension keeps the context of the event's origin). Empty when the
// publisher did not trace.
type TraceContext struct {
	Parent string // traceparent
	State  string // tracestate
}

// IsZero reports whether tc carries nothing.
func (tc TraceContext) IsZero() bool { return tc.Parent == "" }

// TraceContextOf is the trace context of ctx's span, for the headers of the
// messages published under ctx. It is empty when ctx has no valid span, so
// that a publisher that does not trace writes no header.
func TraceContextOf(ctx context.Context) TraceContext {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return TraceContext{}
	}
	return TraceContext{Parent: FormatTraceParent(sc), State: sc.TraceState().String()}
}

// FormatTraceParent is sc as a version-00 traceparent value.
func FormatTraceParent(sc trace.SpanContext) string {
	var b [55]byte
	b[0], b[1], b[2] = '0', '0', '-'
	tid, sid := sc.TraceID(), sc.SpanID()
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags())})
	return string(b[:])
}

// ErrBadTraceContext is wrapped by the errors of ParseTraceContext.
var ErrBadTraceContext = errors.New("malformed W3C trace context")

// ParseTraceContext reads a traceparent and tracestate as the W3C Trace
// Context recommendation defines them, and returns the remote span context
// they name. An empty traceparent gives the invalid span context and no
// error. A malformed traceparent (wrong length, not lower-case hex, version
// ff, an all-zero trace or parent id) is an error wrapping
// ErrBadTraceContext; a malformed tracestate alone is dropped, as the
// recommendation says, keeping the traceparent.
func ParseTraceContext(traceparent, tracestate string) (trace.SpanContext, error) {
	if traceparent == "" {
		return trace.SpanContext{}, nil
	}
	s := traceparent
	bad := func(rule string) (trace.SpanContext, error) {
		return trace.SpanContext{}, fmt.Errorf("%w: traceparent %q: %s", ErrBadTraceContext, clip(s), rule)
	}
	if len(s) < 55 {
		return bad("shorter than the 55 characters of version-format-00")
	}
	if !lowerHex(s[0:2]) || s[0:2] == "ff" {
		return bad("version is not 2 lower-case hex digits other than ff")
	}
	if s[0:2] == "00" && len(s) != 55 {
		return bad("version 00 is exactly 55 characters")
	}
	if len(s) > 55 && s[55] != '-' {
		return bad("a later version's extra fields start with '-'")
	}
	if s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return bad("fields are not separated by '-' at positions 2, 35 and 52")
	}
	if !lowerHex(s[3:35]) || !lowerHex(s[36:52]) || !lowerHex(s[53:55]) {
		return bad("trace id, parent id and flags are lower-case hex")
	}
	var cfg trace.SpanContextConfig
	hex.Decode(cfg.TraceID[:], []byte(s[3:35]))
	hex.Decode(cfg.SpanID[:], []byte(s[36:52]))
	var flags [1]byte
	hex.Decode(flags[:], []byte(s[53:55]))
	if !cfg.TraceID.IsValid() {
		return bad("trace id is all zeros")
	}
	if !cfg.SpanID.IsValid() {
		return bad("parent id is all zeros")
	}
	cfg.TraceFlags = trace.TraceFlags(flags[0]) & trace.FlagsSampled
	cfg.Remote = true
	if tracestate != "" {
		if ts, err := trace.ParseTraceState(tracestate); err == nil {
			cfg.TraceState = ts
		}
	}
	return trace.NewSpanContext(cfg), nil
}

// clip keeps error messages about hostile input short.
func clip(s string) string { return cliptext.Text(s, 80) }

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// SpanContext is the trace context m was published under: the hop's own
// headers (m.Trace) where the transport carried them, otherwise the event's
// distributed-tracing extension. A malformed value is ignored (the invalid
// span context is returned) and reported by malformed, so that callers
// count it; it never changes the event.
func (m *Message) SpanContext() (sc trace.SpanContext, malformed bool) {
	if m.Trace.Parent != "" {
		sc, err := ParseTraceContext(m.Trace.Parent, m.Trace.State)
		if err == nil {
			return sc, false
		}
		malformed = true
	}
	sc, bad := EventSpanContext(&m.Event)
	return sc, malformed || bad
}

// EventSpanContext is the context of e's distributed-tracing extension (its
// origin's), and whether the extension was there but malformed.
func EventSpanContext(e *Event) (sc trace.SpanContext, malformed bool) {
	ext := e.Extensions()
	tp, ok := ext[TraceParent].(string)
	if !ok || tp == "" {
		return trace.SpanContext{}, ext[TraceParent] != nil
	}
	ts, _ := ext[TraceState].(string)
	sc, err := ParseTraceContext(tp, ts)
	return sc, err != nil
}
