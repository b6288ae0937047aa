package bus

import (
	"errors"
	"mime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	v, ok := extensions(e)[ExtPartitionKey]
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	s, _ := types.Format(v)
	return s
}

// extensions returns the event's extensions without the copy that
// Event.Extensions makes. Callers must not modify the map.
func extensions(e *Event) map[string]any {
	switch ec := e.Context.(type) {
	case *event.EventContextV1:
		return ec.Extensions
	case nil:
		return nil
	default:
		return ec.GetExtensions()
	}
}

// EventSize is the size the bus limits: data plus the names and values of
// every attribute and extension, which is what binary-mode bindings put on
// the wire. The fixed attribute names and the time stamp count as 64 bytes,
// and the source as the sum of its URI parts.
func EventSize(e *Event) int {
	n := len(e.DataEncoded)
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok {
		if e.Context != nil {
			n += 64 + len(e.ID()) + len(e.Source()) + len(e.Type()) + len(e.Subject()) +
				len(e.DataContentType()) + len(e.DataSchema())
		}
		return n + extensionsSize(extensions(e))
	}
	n += 64 + len(ec.ID) + uriRefSize(&ec.Source) + len(ec.Type)
	if ec.Subject != nil {
		n += len(*ec.Subject)
	}
	if ec.DataContentType != nil {
		n += len(*ec.DataContentType)
	}
	if ec.DataSchema != nil {
		n += uriRefSize(&types.URIRef{URL: ec.DataSchema.URL})
	}
	return n + extensionsSize(ec.Extensions)
}

func extensionsSize(ext map[string]any) int {
	n := 0
	for k, v := range ext {
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

// uriRefSize is the length of u's parts, within a few bytes of its string
// form, without building the string.
func uriRefSize(u *types.URIRef) int {
	n := len(u.Scheme) + len(u.Opaque) + len(u.Host) + len(u.Path) + len(u.RawQuery) + len(u.Fragment)
	if u.User != nil {
		n += len(u.User.String())
	}
	return n
}

// uriRefEmpty reports whether u's string form would be blank.
func uriRefEmpty(u *types.URIRef) bool {
	return u.Scheme == "" && u.Opaque == "" && u.User == nil && u.Host == "" &&
		strings.TrimSpace(u.Path) == "" && u.RawQuery == "" && u.Fragment == ""
}

// prepare fills the defaults of e and checks it with violation and against
// the size limit. It is the publish path's per-event work: it allocates only
// to fill a missing id or time.
func (b *Bus) prepare(topic string, i int, e *Event, now *time.Time) error {
	if ec, ok := e.Context.(*event.EventContextV1); ok {
		if ec.ID == "" {
			id, err := uuid.NewV7()
			if err != nil {
				return opError("publish to", topic, err)
			}
			ec.ID = id.String()
		}
		if ec.Time == nil || ec.Time.IsZero() {
			if now.IsZero() {
				*now = time.Now().UTC()
			}
			ec.Time = &types.Timestamp{Time: *now}
		}
	}
	if attr, reason := violation(e); reason != "" {
		id := ""
		if e.Context != nil {
			id = e.ID()
		}
		return &EventError{Op: "publish", Topic: topic, Index: i, ID: id, Attribute: attr, Reason: reason, Err: ErrInvalidEvent}
	}
	if size := EventSize(e); size > b.maxEventSize {
		return &EventError{Op: "publish", Topic: topic, Index: i, ID: e.ID(),
			Reason: "size " + strconv.Itoa(size) + " bytes is over the limit of " + strconv.Itoa(b.maxEventSize) +
				" bytes; send less data or raise the limit with bus.WithMaxEventSize",
			Err: ErrTooLarge}
	}
	return nil
}

// Validate checks e against the CloudEvents 1.0 rules, as Publish does,
// without filling defaults: a missing id is an error here. Transports use it
// on what they decode. The error is an *EventError wrapping ErrInvalidEvent.
func Validate(e *Event) error {
	if e.Context != nil && e.ID() == "" {
		return &EventError{Op: "validate", Index: -1, Attribute: "id", Reason: "is required", Err: ErrInvalidEvent}
	}
	if attr, reason := violation(e); reason != "" {
		id := ""
		if e.Context != nil {
			id = e.ID()
		}
		return &EventError{Op: "validate", Index: -1, ID: id, Attribute: attr, Reason: reason, Err: ErrInvalidEvent}
	}
	return nil
}

// violation checks e against the CloudEvents 1.0 rules (those of the SDK's
// EventContextV1.Validate) without allocating, and returns the offending
// attribute and what is wrong, or an empty reason.
func violation(e *Event) (attr, reason string) {
	if e.Context == nil {
		return "specversion", "the event has no context; create events with event.New()"
	}
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok {
		return "specversion", "is " + strconv.Quote(e.SpecVersion()) + "; only CloudEvents 1.0 is supported (event.New() makes 1.0 events)"
	}
	if len(e.FieldErrors) > 0 {
		return firstViolation(event.ValidationError(e.FieldErrors))
	}
	switch {
	case strings.TrimSpace(ec.ID) == "":
		return "id", "must be a non-empty string (leave it empty to have a UUIDv7 assigned)"
	case uriRefEmpty(&ec.Source):
		return "source", "is required: set a URI-reference naming the producer with Event.SetSource"
	case strings.TrimSpace(ec.Type) == "":
		return "type", "is required: set a non-empty type such as \"com.example.order.created\" with Event.SetType"
	case ec.Subject != nil && strings.TrimSpace(*ec.Subject) == "":
		return "subject", "if present, must be a non-empty string"
	case ec.DataSchema != nil && !ec.DataSchema.Validate():
		return "dataschema", "if present, must be an absolute URI (RFC 3986, section 4.3)"
	}
	if ec.DataContentType != nil {
		if err := mediaTypes.check(*ec.DataContentType); err != nil {
			return "datacontenttype", "must be an RFC 2046 media type: " + err.Error()
		}
	}
	return "", ""
}

// mediaTypeCache remembers media types that parsed, so that the publish
// path parses each distinct datacontenttype once. It holds at most
// maxMediaTypes entries; past that it parses every time.
type mediaTypeCache struct {
	ok sync.Map // string -> struct{}
	n  atomic.Int32
}

const maxMediaTypes = 256

var mediaTypes mediaTypeCache

func (c *mediaTypeCache) check(ct string) error {
	if _, ok := c.ok.Load(ct); ok {
		return nil
	}
	if strings.TrimSpace(ct) == "" {
		return errors.New("it is blank")
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		return err
	}
	if c.n.Add(1) <= maxMediaTypes {
		c.ok.Store(ct, struct{}{})
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
