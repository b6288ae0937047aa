package bus

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel errors, usable with errors.Is on any error this module returns.
var (
	// ErrInvalidEvent means an event breaks the CloudEvents spec or a rule
	// of this bus; the error names the attribute.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrTooLarge means an event is larger than the bus accepts.
	ErrTooLarge = errors.New("event too large")
	// ErrClosed means the bus, transport or subscription is closed.
	ErrClosed = errors.New("closed")
	// ErrNoRoute means a transport had nowhere to deliver a publish (for
	// example a topic with no consumer group on a non-retaining transport).
	ErrNoRoute = errors.New("no route for event")
	// ErrMaxAttempts means a handler failed a batch on every allowed attempt
	// and no OnExhausted callback took the batch over. The batch stays
	// unacknowledged in the transport.
	ErrMaxAttempts = errors.New("handler failed on every attempt")
)

// EventError reports a rejected event. It wraps [ErrInvalidEvent] or
// [ErrTooLarge].
type EventError struct {
	Op        string // operation, e.g. "publish"
	Topic     string // topic the event was published to
	Index     int    // position of the event in the published batch, or -1
	ID        string // event id, when it has one
	Attribute string // offending attribute or extension, if one is to blame
	Reason    string // what rule was broken and how to fix it
	Err       error  // the sentinel: ErrInvalidEvent or ErrTooLarge
}

// Error formats as
// `auditbus: publish to "orders": invalid event #2 (id "x"): attribute "type": is required`.
func (e *EventError) Error() string {
	var b strings.Builder
	b.WriteString("auditbus: ")
	b.WriteString(e.Op)
	if e.Topic != "" {
		b.WriteString(" to ")
		b.WriteString(strconv.Quote(e.Topic))
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.Index >= 0 {
		b.WriteString(" #")
		b.WriteString(strconv.Itoa(e.Index))
	}
	if e.ID != "" {
		b.WriteString(" (id ")
		b.WriteString(strconv.Quote(e.ID))
		b.WriteString(")")
	}
	if e.Attribute != "" {
		b.WriteString(": attribute ")
		b.WriteString(strconv.Quote(e.Attribute))
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap returns the sentinel error.
func (e *EventError) Unwrap() error { return e.Err }

// opError wraps err with the operation and topic, in the package's format.
func opError(op, topic string, err error) error {
	return fmt.Errorf("auditbus: %s %q: %w", op, topic, err)
}
