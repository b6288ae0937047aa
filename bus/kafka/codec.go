package kafka

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	kafkago "github.com/segmentio/kafka-go"
)

// Header names of the CloudEvents Kafka protocol binding.
const (
	headerPrefix      = "ce_"
	headerContentType = "content-type"
	// StructuredContentType is the content-type of a structured-mode message.
	StructuredContentType = "application/cloudevents+json; charset=UTF-8"
)

// Mode is how events are put into Kafka messages.
type Mode int

const (
	// Binary mode (the default): every attribute and extension in a ce_
	// header, datacontenttype in content-type, the data as the value.
	Binary Mode = iota
	// Structured mode: the whole event as application/cloudevents+json in
	// the value.
	Structured
)

// String names the mode as the AUDITBUS_KAFKA_MODE variable spells it.
func (m Mode) String() string {
	if m == Structured {
		return "structured"
	}
	return "binary"
}

// encode writes e into msg in the given mode. The partitionkey extension
// becomes the message key, so events with the same key share a partition.
func encode(e *bus.Event, mode Mode, msg *kafkago.Message) error {
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok {
		return fmt.Errorf("%w: only CloudEvents 1.0 events can be encoded", bus.ErrInvalidEvent)
	}
	if k, ok := ec.Extensions[bus.ExtPartitionKey]; ok {
		s, err := types.Format(k)
		if err != nil {
			return fmt.Errorf("%w: extension partitionkey: %v", bus.ErrInvalidEvent, err)
		}
		msg.Key = []byte(s)
	}
	if mode == Structured {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode event %q as JSON: %w", ec.ID, err)
		}
		msg.Value = b
		msg.Headers = append(msg.Headers[:0], kafkago.Header{Key: headerContentType, Value: []byte(StructuredContentType)})
		return nil
	}
	h := msg.Headers[:0]
	add := func(name, value string) {
		h = append(h, kafkago.Header{Key: headerPrefix + name, Value: []byte(value)})
	}
	add("specversion", event.CloudEventsVersionV1)
	add("id", ec.ID)
	add("source", ec.Source.String())
	add("type", ec.Type)
	if ec.Subject != nil {
		add("subject", *ec.Subject)
	}
	if ec.Time != nil {
		add("time", types.FormatTime(ec.Time.Time))
	}
	if ec.DataSchema != nil {
		add("dataschema", ec.DataSchema.String())
	}
	for name, v := range ec.Extensions {
		s, err := types.Format(v)
		if err != nil {
			return fmt.Errorf("%w: extension %q: %v", bus.ErrInvalidEvent, name, err)
		}
		add(name, s)
	}
	if ec.DataContentType != nil {
		h = append(h, kafkago.Header{Key: headerContentType, Value: []byte(*ec.DataContentType)})
	}
	msg.Headers = h
	msg.Value = e.DataEncoded
	return nil
}

// errNotCloudEvent is the reason given for messages in neither mode.
var errNotCloudEvent = errors.New("not a CloudEvent: no ce_specversion header (binary mode) and content-type is not application/cloudevents+json (structured mode)")

// decode reads a CloudEvent from msg in whichever mode it was written, and
// checks it as Publish would. The event shares msg.Value.
func decode(msg *kafkago.Message) (bus.Event, error) {
	var ct, sv string
	binary := false
	for _, h := range msg.Headers {
		switch {
		case strings.EqualFold(h.Key, headerContentType):
			ct = string(h.Value)
		case strings.EqualFold(h.Key, headerPrefix+"specversion"):
			sv, binary = string(h.Value), true
		}
	}
	var e bus.Event
	lct := strings.ToLower(strings.TrimSpace(ct))
	switch {
	case strings.HasPrefix(lct, "application/cloudevents+json"):
		if err := json.Unmarshal(msg.Value, &e); err != nil {
			return e, fmt.Errorf("structured mode: bad application/cloudevents+json value: %w", err)
		}
	case strings.HasPrefix(lct, "application/cloudevents"):
		return e, fmt.Errorf("content-type %q: only the application/cloudevents+json event format is read (batch mode is not part of the Kafka binding)", ct)
	case binary:
		if sv != event.CloudEventsVersionV1 {
			return e, fmt.Errorf("header ce_specversion is %q; this transport reads CloudEvents 1.0", sv)
		}
		if err := decodeBinary(msg, ct, &e); err != nil {
			return e, err
		}
	default:
		return e, errNotCloudEvent
	}
	if len(msg.Key) > 0 && bus.PartitionKey(&e) == "" {
		e.SetExtension(bus.ExtPartitionKey, string(msg.Key))
	}
	if err := bus.Validate(&e); err != nil {
		return e, err
	}
	return e, nil
}

// decodeBinary fills e from binary-mode headers and value.
func decodeBinary(msg *kafkago.Message, ct string, e *bus.Event) error {
	ec := &event.EventContextV1{}
	for _, h := range msg.Headers {
		if len(h.Key) <= len(headerPrefix) || !strings.EqualFold(h.Key[:len(headerPrefix)], headerPrefix) {
			continue
		}
		name, v := strings.ToLower(h.Key[len(headerPrefix):]), string(h.Value)
		switch name {
		case "specversion":
		case "id":
			ec.ID = v
		case "source":
			u := types.ParseURIRef(v)
			if u == nil {
				return fmt.Errorf("header ce_source %q is not a URI-reference", v)
			}
			ec.Source = *u
		case "type":
			ec.Type = v
		case "subject":
			ec.Subject = &v
		case "time":
			t, err := types.ParseTimestamp(v)
			if err != nil {
				return fmt.Errorf("header ce_time %q is not an RFC 3339 time: %v", v, err)
			}
			ec.Time = t
		case "dataschema":
			u := types.ParseURI(v)
			if u == nil {
				return fmt.Errorf("header ce_dataschema %q is not a URI", v)
			}
			ec.DataSchema = u
		case "datacontenttype":
			if ct == "" {
				ct = v
			}
		default:
			if !event.IsExtensionNameValid(name) {
				return fmt.Errorf("header %s: %q is not a valid CloudEvents extension name (only a-z and 0-9)", h.Key, name)
			}
			if ec.Extensions == nil {
				ec.Extensions = make(map[string]any)
			}
			ec.Extensions[name] = v
		}
	}
	if ct != "" {
		ec.DataContentType = &ct
	}
	e.Context = ec
	e.DataEncoded = msg.Value
	return nil
}
