package bus

import (
	"sort"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/google/uuid"
)

// ExtPartitionKey is the CloudEvents partitioning extension: events with the
// same key keep their order on transports that keep order.
const ExtPartitionKey = "partitionkey"

// DefaultMaxEventSize is the default limit on EventSize: 1 MiB.
const DefaultMaxEventSize = 1 << 20

// PartitionKey returns the event's "partitionkey" extension, or "".
func PartitionKey(e *Event) string {
	if e.Context == nil {
		return ""
	}
	v, ok := e.Extensions()[ExtPartitionKey]
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	s, _ := types.Format(v)
	return s
}

// EventSize is the size the bus limits: data plus the names and values of
// every attribute and extension, which is what binary-mode bindings put on
// the wire.
func EventSize(e *Event) int {
	n := len(e.DataEncoded)
	if e.Context == nil {
		return n
	}
	// The fixed names (specversion, id, source, type, ...) and the
	// time stamp are counted as a constant.
	n += 64 + len(e.ID()) + len(e.Source()) + len(e.Type()) + len(e.Subject()) +
		len(e.DataContentType()) + len(e.DataSchema())
	for k, v := range e.Extensions() {
		n += len(k)
		switch v := v.(type) {
		case string:
			n += len(v)
		case []byte:
			n += len(v)
		default:
			s, _ := types.Format(v)
			n += len(s)
		}
	}
	return n
}

// prepare fills the defaults of e and checks it. It is the publish path's
// per-event work, so it allocates only to fill a missing id or time.
func (b *Bus) prepare(topic string, i int, e *Event, now *time.Time) error {
	if e.Context == nil {
		return &EventError{Op: "publish", Topic: topic, Index: i, Attribute: "specversion",
			Reason: "the event has no context; create events with event.New()", Err: ErrInvalidEvent}
	}
	if sv := e.SpecVersion(); sv != event.CloudEventsVersionV1 {
		return &EventError{Op: "publish", Topic: topic, Index: i, ID: e.ID(), Attribute: "specversion",
			Reason: "is " + quote(sv) + "; only CloudEvents 1.0 is supported (event.New() makes 1.0 events)", Err: ErrInvalidEvent}
	}
	if e.ID() == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return opError("publish to", topic, err)
		}
		e.SetID(id.String())
	}
	if e.Time().IsZero() {
		if now.IsZero() {
			*now = time.Now().UTC()
		}
		e.SetTime(*now)
	}
	if strings.TrimSpace(e.Source()) == "" {
		return &EventError{Op: "publish", Topic: topic, Index: i, ID: e.ID(), Attribute: "source",
			Reason: "is required: set a URI-reference naming the producer with Event.SetSource", Err: ErrInvalidEvent}
	}
	if strings.TrimSpace(e.Type()) == "" {
		return &EventError{Op: "publish", Topic: topic, Index: i, ID: e.ID(), Attribute: "type",
			Reason: "is required: set a non-empty type such as \"com.example.order.created\" with Event.SetType", Err: ErrInvalidEvent}
	}
	if err := e.Validate(); err != nil {
		attr, reason := firstViolation(err)
		return &EventError{Op: "publish", Topic: topic, Index: i, ID: e.ID(), Attribute: attr,
			Reason: reason, Err: ErrInvalidEvent}
	}
	if size := EventSize(e); size > b.maxEventSize {
		return &EventError{Op: "publish", Topic: topic, Index: i, ID: e.ID(),
			Reason: "size " + itoa(size) + " bytes is over the limit of " + itoa(b.maxEventSize) +
				" bytes; send less data or raise the limit with bus.WithMaxEventSize",
			Err: ErrTooLarge}
	}
	return nil
}

// firstViolation picks the alphabetically first attribute of a CloudEvents
// validation error, so that messages are stable, and lists any others.
func firstViolation(err error) (attr, reason string) {
	verr, ok := err.(event.ValidationError)
	if !ok || len(verr) == 0 {
		return "", err.Error()
	}
	keys := make([]string, 0, len(verr))
	for k := range verr {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attr = strings.TrimPrefix(keys[0], "extension:")
	reason = "violates the CloudEvents spec: " + verr[keys[0]].Error()
	if len(keys) > 1 {
		reason += " (also: " + strings.Join(keys[1:], ", ") + ")"
	}
	return attr, reason
}
