package amqp

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Delivery is a message as received from the broker (amqp091-go's type).
type Delivery = amqp091.Delivery

// HeaderPrefix is the prefix of the application headers that carry the
// attributes of an event in binary mode, as in the CloudEvents AMQP 1.0
// binding's application properties.
const HeaderPrefix = "cloudEvents:"

// StructuredContentType is the content type of structured-mode messages.
const StructuredContentType = "application/cloudevents+json"

// Header names written in binary mode, as constants so that encoding does
// not build them per event.
const (
	hSpecVersion = HeaderPrefix + "specversion"
	hID          = HeaderPrefix + "id"
	hSource      = HeaderPrefix + "source"
	hType        = HeaderPrefix + "type"
	hSubject     = HeaderPrefix + "subject"
	hTime        = HeaderPrefix + "time"
	hDataSchema  = HeaderPrefix + "dataschema"
)

// inputPrefixes are the attribute header prefixes accepted on input: the
// AMQP binding's current and older forms, and the Kafka/HTTP binding forms
// that hand-written producers often use.
var inputPrefixes = [...]string{HeaderPrefix, "cloudEvents_", "ce-", "ce_"}

// encode lays e out as an AMQP message in mode. In binary mode it fills h
// (which must be empty) with the attribute headers and uses it as the
// message's headers; the caller may reuse h once the message is sent.
func encode(e *bus.Event, mode ContentMode, h amqp091.Table) (amqp091.Publishing, error) {
	ec, err := contextV1(e)
	if err != nil {
		return amqp091.Publishing{}, err
	}
	p := amqp091.Publishing{MessageId: ec.ID, DeliveryMode: amqp091.Persistent}
	if ec.Time != nil {
		p.Timestamp = ec.Time.Time
	}
	if mode == Structured {
		body, err := json.Marshal(e)
		if err != nil {
			return p, err
		}
		p.ContentType, p.Body = StructuredContentType, body
		return p, nil
	}
	h[hSpecVersion] = event.CloudEventsVersionV1
	h[hID] = ec.ID
	h[hSource] = ec.Source.String()
	h[hType] = ec.Type
	if ec.Subject != nil {
		h[hSubject] = *ec.Subject
	}
	if ec.Time != nil {
		h[hTime] = ec.Time.Time.UTC().Format(time.RFC3339Nano)
	}
	if ec.DataSchema != nil {
		h[hDataSchema] = ec.DataSchema.String()
	}
	for k, v := range ec.Extensions {
		s, err := types.Format(v)
		if err != nil {
			return p, fmt.Errorf("extension %q: %w", k, err)
		}
		h[HeaderPrefix+k] = s
	}
	if ec.DataContentType != nil {
		p.ContentType = *ec.DataContentType
	}
	p.Headers, p.Body = h, e.DataEncoded
	return p, nil
}

// contextV1 returns e's context as CloudEvents 1.0, converting an older one.
func contextV1(e *bus.Event) (*event.EventContextV1, error) {
	switch ec := e.Context.(type) {
	case *event.EventContextV1:
		return ec, nil
	case nil:
		return nil, errors.New("event has no context")
	default:
		return ec.AsV1(), nil
	}
}

// decode turns a delivery into an event, or says why it is not a valid
// CloudEvent. The event's data is the delivery's body, not a copy.
func decode(d *Delivery) (bus.Event, error) {
	if mt, _, _ := strings.Cut(d.ContentType, ";"); strings.EqualFold(strings.TrimSpace(mt), StructuredContentType) {
		return decodeStructured(d.Body)
	}
	ec := &event.EventContextV1{}
	var spec, source, ctHeader string
	found := false
	for k, v := range d.Headers {
		name, ok := attributeName(k)
		if !ok {
			continue
		}
		found = true
		s, err := headerString(v)
		if err != nil {
			return bus.Event{}, fmt.Errorf("header %q: %w", k, err)
		}
		switch name {
		case "specversion":
			spec = s
		case "id":
			ec.ID = s
		case "source":
			source = s
		case "type":
			ec.Type = s
		case "subject":
			subject := s // only this header's value needs a pointer
			ec.Subject = &subject
		case "time":
			t, err := types.ParseTime(s)
			if err != nil {
				return bus.Event{}, fmt.Errorf("header %q: time %q is not an RFC 3339 time", k, s)
			}
			ec.Time = &types.Timestamp{Time: t}
		case "dataschema":
			u, err := url.Parse(s)
			if err != nil {
				return bus.Event{}, fmt.Errorf("header %q: dataschema %q: %w", k, s, err)
			}
			ec.DataSchema = &types.URI{URL: *u}
		case "datacontenttype":
			ctHeader = s // the content-type property wins, as the binding says
		default:
			if !validExtensionName(name) {
				return bus.Event{}, fmt.Errorf("header %q: extension name %q: CloudEvents attribute names are lower-case letters and digits", k, name)
			}
			if ec.Extensions == nil {
				ec.Extensions = make(map[string]any, 4)
			}
			ec.Extensions[name] = s
		}
	}
	if !found {
		return bus.Event{}, errors.New("no CloudEvents headers (cloudEvents:*, ce_*, ce-*) and not structured (content type " + StructuredContentType + ")")
	}
	if spec != event.CloudEventsVersionV1 {
		return bus.Event{}, fmt.Errorf("specversion %q: only CloudEvents 1.0 is supported", spec)
	}
	if ec.ID == "" {
		ec.ID = d.MessageId
	}
	u, err := url.Parse(source)
	if err != nil {
		return bus.Event{}, fmt.Errorf("source %q: %w", source, err)
	}
	ec.Source = types.URIRef{URL: *u}
	if d.ContentType != "" {
		ct := d.ContentType
		ec.DataContentType = &ct
	} else if ctHeader != "" {
		ct := ctHeader
		ec.DataContentType = &ct
	}
	e := bus.Event{Context: ec, DataEncoded: d.Body}
	if err := bus.Validate(&e); err != nil {
		return bus.Event{}, err
	}
	return e, nil
}

// decodeStructured decodes a structured-mode body.
func decodeStructured(body []byte) (bus.Event, error) {
	var e bus.Event
	if err := json.Unmarshal(body, &e); err != nil {
		return bus.Event{}, fmt.Errorf("structured event: %w", err)
	}
	if err := bus.Validate(&e); err != nil {
		return bus.Event{}, err
	}
	return e, nil
}

// attributeName returns the attribute a header carries, lower-cased, if it
// has one of the accepted prefixes (compared without regard to case).
func attributeName(key string) (string, bool) {
	for _, p := range inputPrefixes {
		if len(key) > len(p) && strings.EqualFold(key[:len(p)], p) {
			name := key[len(p):]
			for i := 0; i < len(name); i++ {
				if c := name[i]; 'A' <= c && c <= 'Z' {
					return strings.ToLower(name), true
				}
			}
			return name, true
		}
	}
	return "", false
}

// validExtensionName reports whether name is a valid CloudEvents attribute
// name: lower-case ASCII letters and digits.
func validExtensionName(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return name != ""
}

// headerString returns the canonical CloudEvents string form of a header
// value. This transport writes strings; other producers may send typed
// AMQP values, which are converted.
func headerString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case []byte:
		return base64.StdEncoding.EncodeToString(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64, int:
		return fmt.Sprint(v), nil
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano), nil
	case nil:
		return "", errors.New("void value")
	}
	return "", fmt.Errorf("value of AMQP type %T has no CloudEvents form", v)
}

// deliveryCount is how often the broker delivered d before: quorum queues
// count it in x-delivery-count; elsewhere only the redelivered flag tells.
func deliveryCount(d *Delivery) int {
	switch n := d.Headers["x-delivery-count"].(type) {
	case int64:
		return int(n)
	case int32:
		return int(n)
	case int16:
		return int(n)
	}
	if d.Redelivered {
		return 1
	}
	return 0
}

// withTrace adds the publishing hop's W3C trace context to a message's
// headers h (h is empty in structured mode, then room is used) as plain
// traceparent/tracestate headers, beside the event's own
// cloudEvents:traceparent extension, which keeps the origin's context.
func withTrace(h, room amqp091.Table, tc bus.TraceContext) amqp091.Table {
	if h == nil {
		h = room
	}
	h[bus.TraceParent] = tc.Parent
	if tc.State != "" {
		h[bus.TraceState] = tc.State
	}
	return h
}

// traceOf reads the publishing hop's trace context from d's headers.
func traceOf(d *Delivery) bus.TraceContext {
	var tc bus.TraceContext
	tc.Parent, _ = d.Headers[bus.TraceParent].(string)
	if tc.Parent != "" {
		tc.State, _ = d.Headers[bus.TraceState].(string)
	}
	return tc
}
