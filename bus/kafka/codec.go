package kafka

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unsafe"

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

// Binary-mode header keys, built once.
const (
	keySpecVersion = headerPrefix + "specversion"
	keyID          = headerPrefix + "id"
	keySource      = headerPrefix + "source"
	keyType        = headerPrefix + "type"
	keySubject     = headerPrefix + "subject"
	keyTime        = headerPrefix + "time"
	keyDataSchema  = headerPrefix + "dataschema"
)

// extensionKey is the ce_ header key of an extension, without building a
// string for the extensions most events carry.
func extensionKey(name string) string {
	switch name {
	case bus.ExtPartitionKey:
		return headerPrefix + bus.ExtPartitionKey
	case "traceparent":
		return headerPrefix + "traceparent"
	case "tracestate":
		return headerPrefix + "tracestate"
	}
	return headerPrefix + name
}

// specVersionV1 is the ce_specversion value; kafka-go only reads header
// values, so every message shares it.
var specVersionV1 = []byte(event.CloudEventsVersionV1)

// bytesOf returns s's bytes without copying them. kafka-go only reads
// message headers and values, and s is immutable, so sharing is safe; it
// saves a copy per attribute on the publish path.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// encoder encodes the events of one publish call. Its arena holds the
// formatted times of all of them, and headers their headers, so a batch
// costs one allocation for each (none when a pooled encoder has room).
// It remembers the last source it formatted and the header keys of the
// extensions it met, which the events of a batch mostly share.
type encoder struct {
	mode    Mode
	trace   bus.TraceContext // the publishing hop's, written on every message
	arena   []byte
	headers []kafkago.Header // room for the messages' headers, carved per message
	srcURL  url.URL
	src     string
	keys    []string // ce_ header keys of extensions, up to maxKeys
}

// maxKeys bounds an encoder's remembered extension header keys.
const maxKeys = 16

// source returns ec's source as a string.
func (en *encoder) source(ec *event.EventContextV1) string {
	if en.src == "" || ec.Source.URL != en.srcURL {
		en.srcURL, en.src = ec.Source.URL, ec.Source.String()
	}
	return en.src
}

// extensionKey is extensionKey(name), built once per encoder.
func (en *encoder) extensionKey(name string) string {
	for _, k := range en.keys {
		if len(k) == len(headerPrefix)+len(name) && k[len(headerPrefix):] == name {
			return k
		}
	}
	k := extensionKey(name)
	if len(en.keys) < maxKeys {
		en.keys = append(en.keys, k)
	}
	return k
}

// encode writes e into msg in the encoder's mode. The partitionkey
// extension becomes the message key, so events with the same key share a
// partition.
func (en *encoder) encode(e *bus.Event, msg *kafkago.Message) error {
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok {
		return fmt.Errorf("%w: only CloudEvents 1.0 events can be encoded", bus.ErrInvalidEvent)
	}
	if k, ok := ec.Extensions[bus.ExtPartitionKey]; ok {
		s, err := formatExtension(k)
		if err != nil {
			return fmt.Errorf("%w: extension partitionkey: %v", bus.ErrInvalidEvent, err)
		}
		msg.Key = bytesOf(s)
	}
	if en.mode == Structured {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode event %q as JSON: %w", ec.ID, err)
		}
		msg.Value = b
		msg.Headers = append(msg.Headers[:0], kafkago.Header{Key: headerContentType, Value: []byte(StructuredContentType)})
		msg.Headers = en.appendTrace(msg.Headers)
		return nil
	}
	h := msg.Headers[:0]
	if n := 10 + len(ec.Extensions); cap(h) < n {
		l := len(en.headers)
		if cap(en.headers)-l < n {
			// Messages already encoded keep the old room.
			en.headers, l = make([]kafkago.Header, 0, max(n, 2*cap(en.headers))), 0
		}
		h, en.headers = en.headers[l:l:l+n], en.headers[:l+n]
	}
	h = append(h,
		kafkago.Header{Key: keySpecVersion, Value: specVersionV1},
		kafkago.Header{Key: keyID, Value: bytesOf(ec.ID)},
		kafkago.Header{Key: keySource, Value: bytesOf(en.source(ec))},
		kafkago.Header{Key: keyType, Value: bytesOf(ec.Type)},
	)
	if ec.Subject != nil {
		h = append(h, kafkago.Header{Key: keySubject, Value: bytesOf(*ec.Subject)})
	}
	if ec.Time != nil {
		start := len(en.arena)
		en.arena = ec.Time.Time.UTC().AppendFormat(en.arena, time.RFC3339Nano)
		h = append(h, kafkago.Header{Key: keyTime, Value: en.arena[start:len(en.arena):len(en.arena)]})
	}
	if ec.DataSchema != nil {
		h = append(h, kafkago.Header{Key: keyDataSchema, Value: bytesOf(ec.DataSchema.String())})
	}
	for name, v := range ec.Extensions {
		s, err := formatExtension(v)
		if err != nil {
			return fmt.Errorf("%w: extension %q: %v", bus.ErrInvalidEvent, name, err)
		}
		h = append(h, kafkago.Header{Key: en.extensionKey(name), Value: bytesOf(s)})
	}
	if ec.DataContentType != nil {
		h = append(h, kafkago.Header{Key: headerContentType, Value: bytesOf(*ec.DataContentType)})
	}
	msg.Headers = en.appendTrace(h)
	msg.Value = e.DataEncoded
	return nil
}

// appendTrace adds the publishing hop's W3C trace context as plain
// traceparent/tracestate headers, beside (never instead of) the event's
// ce_traceparent extension, which keeps the origin's context.
func (en *encoder) appendTrace(h []kafkago.Header) []kafkago.Header {
	if en.trace.Parent == "" {
		return h
	}
	h = append(h, kafkago.Header{Key: bus.TraceParent, Value: bytesOf(en.trace.Parent)})
	if en.trace.State != "" {
		h = append(h, kafkago.Header{Key: bus.TraceState, Value: bytesOf(en.trace.State)})
	}
	return h
}

// traceOf reads the publishing hop's trace context from msg's headers.
func traceOf(msg *kafkago.Message) bus.TraceContext {
	var tc bus.TraceContext
	for _, h := range msg.Headers {
		switch {
		case len(h.Key) == len(bus.TraceParent) && strings.EqualFold(h.Key, bus.TraceParent):
			tc.Parent = string(h.Value)
		case len(h.Key) == len(bus.TraceState) && strings.EqualFold(h.Key, bus.TraceState):
			tc.State = string(h.Value)
		}
	}
	return tc
}

// formatExtension is types.Format with a fast path for strings, the type
// nearly every extension value has.
func formatExtension(v any) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	return types.Format(v)
}

// errNotCloudEvent is the reason given for messages in neither mode.
var errNotCloudEvent = errors.New("not a CloudEvent: no ce_specversion header (binary mode) and content-type is not application/cloudevents+json (structured mode)")

// decoder decodes the messages of one partition reader. It remembers the
// last source it parsed, since a partition mostly carries events of few
// sources, and parsing a URI is the dearest part of decoding.
type decoder struct {
	source    string
	sourceURI types.URIRef
}

// decode reads a CloudEvent from msg in whichever mode it was written, and
// checks it as Publish would. The event shares msg.Value.
func decode(msg *kafkago.Message) (bus.Event, error) {
	var d decoder
	return d.decode(msg)
}

// decode is the package-level decode, reusing d's parsed source.
func (d *decoder) decode(msg *kafkago.Message) (bus.Event, error) {
	var ct, sv []byte
	binary := false
	for _, h := range msg.Headers {
		switch {
		case strings.EqualFold(h.Key, headerContentType):
			ct = h.Value
		case strings.EqualFold(h.Key, keySpecVersion):
			sv, binary = h.Value, true
		}
	}
	var e bus.Event // kept off the heap: nothing takes its address but decodeBinary
	switch {
	case hasMediaPrefix(ct, "application/cloudevents+json"):
		var se bus.Event
		if err := json.Unmarshal(msg.Value, &se); err != nil {
			return e, fmt.Errorf("structured mode: bad application/cloudevents+json value: %w", err)
		}
		e = se
	case hasMediaPrefix(ct, "application/cloudevents"):
		return e, fmt.Errorf("content-type %q: only the application/cloudevents+json event format is read (batch mode is not part of the Kafka binding)", ct)
	case binary:
		if string(sv) != event.CloudEventsVersionV1 {
			return e, fmt.Errorf("header ce_specversion is %q; this transport reads CloudEvents 1.0", sv)
		}
		if err := d.decodeBinary(msg, &e); err != nil {
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

// hasMediaPrefix reports whether the content type ct, less leading space,
// starts with the lower-case prefix p, ignoring case.
func hasMediaPrefix(ct []byte, p string) bool {
	ct = bytes.TrimLeft(ct, " \t")
	return len(ct) >= len(p) && strings.EqualFold(string(ct[:len(p)]), p)
}

// decodeBinary fills e from binary-mode headers and value. The attribute
// strings share one allocation: the header values copied once. Only the
// values that need a pointer (subject, content type) get one, so the loop's
// value does not move to the heap for every header.
func (d *decoder) decodeBinary(msg *kafkago.Message, e *bus.Event) error {
	n := 0
	for _, h := range msg.Headers {
		n += len(h.Value)
	}
	buf := make([]byte, 0, n)
	for _, h := range msg.Headers {
		buf = append(buf, h.Value...)
	}
	all := unsafe.String(unsafe.SliceData(buf), len(buf))
	ec := &event.EventContextV1{}
	ct := ""
	off := 0
	for _, h := range msg.Headers {
		v := all[off : off+len(h.Value)]
		off += len(h.Value)
		if strings.EqualFold(h.Key, headerContentType) {
			ct = v
			continue
		}
		if len(h.Key) <= len(headerPrefix) || !strings.EqualFold(h.Key[:len(headerPrefix)], headerPrefix) {
			continue
		}
		switch name := strings.ToLower(h.Key[len(headerPrefix):]); name {
		case "specversion":
		case "id":
			ec.ID = v
		case "source":
			if v != d.source || d.source == "" {
				u := types.ParseURIRef(v)
				if u == nil {
					return fmt.Errorf("header ce_source %q is not a URI-reference", v)
				}
				d.source, d.sourceURI = v, *u
			}
			ec.Source = d.sourceURI
		case "type":
			ec.Type = v
		case "subject":
			subject := v
			ec.Subject = &subject
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
		dct := ct
		ec.DataContentType = &dct
	}
	e.Context = ec
	e.DataEncoded = msg.Value
	return nil
}
