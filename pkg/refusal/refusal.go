// Package refusal names why auditbus refuses an event it is offered, and
// counts refusals: a refused event is evidence (of a misconfigured
// producer, or of an impersonation attempt), recorded in the ledger as a
// sinks.KindRefused entry whose Error is the refusal's message, and
// counted in auditbus_events_refused_total by a reason from a fixed set.
package refusal

import (
	"errors"
	"fmt"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons: the bounded set of values of the metric's reason label.
const (
	// SignatureMissing: the route requires a signature and there is none.
	SignatureMissing = "signature-missing"
	// SignatureInvalid: the signature material is malformed or does not
	// match the event.
	SignatureInvalid = "signature-invalid"
	// SignerUnknown: signed with a key id the signer registry does not hold.
	SignerUnknown = "signer-unknown"
	// SignerNotAllowed: a known key signed for a source or type it may not.
	SignerNotAllowed = "signer-not-allowed"
	// SourceNotAllowed: the principal may not claim the event's source.
	SourceNotAllowed = "source-not-allowed"
	// TypeNotAllowed: the principal may not send the event's type.
	TypeNotAllowed = "type-not-allowed"
	// TopicNotAllowed: the principal may not publish to the topic.
	TopicNotAllowed = "topic-not-allowed"
	// RouteNotAllowed: the principal may not publish to the route.
	RouteNotAllowed = "route-not-allowed"
)

// Reasons lists every reason.
var Reasons = []string{
	SignatureMissing, SignatureInvalid, SignerUnknown, SignerNotAllowed,
	SourceNotAllowed, TypeNotAllowed, TopicNotAllowed, RouteNotAllowed,
}

// Error is a refusal: Reason is one of Reasons, Rule says in words which
// rule refused the event and what would be allowed, Err the cause, if any.
type Error struct {
	Reason string
	Rule   string
	Err    error
}

// Error reads "refused (REASON): RULE[: CAUSE]".
func (e *Error) Error() string {
	msg := fmt.Sprintf("refused (%s): %s", e.Reason, e.Rule)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// As returns the refusal err wraps, if any.
func As(err error) (*Error, bool) {
	var r *Error
	ok := errors.As(err, &r)
	return r, ok
}

// Metrics counts refusals. A nil *Metrics counts nothing.
type Metrics struct{ c *prometheus.CounterVec }

// NewMetrics registers auditbus_events_refused_total{transport,reason} on
// reg, with every reason of every transport given at zero, so that alerts
// see the series before the first refusal.
func NewMetrics(reg prometheus.Registerer, transports ...string) *Metrics {
	m := &Metrics{c: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "auditbus_events_refused_total",
		Help: "Events refused when offered, by the transport that offered them and the reason (a missing or bad signature, or a source, type, topic or route the principal may not use).",
	}, []string{"transport", "reason"})}
	reg.MustRegister(m.c)
	for _, t := range transports {
		for _, r := range Reasons {
			m.c.WithLabelValues(t, r)
		}
	}
	return m
}

// Count counts n events refused for reason, offered over transport. A
// reason outside Reasons is counted as "other", so the label stays bounded.
func (m *Metrics) Count(transport, reason string, n int) {
	if m == nil || n <= 0 {
		return
	}
	if !slices.Contains(Reasons, reason) {
		reason = "other"
	}
	m.c.WithLabelValues(transport, reason).Add(float64(n))
}
