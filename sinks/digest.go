package sinks

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// DigestEvent is the SHA-256 of e's canonical encoding, which names one
// version of an event. The encoding depends only on what the event says,
// never on the order of a map or on the transport that carried it:
//
//	"auditbus-event-v1"
//	uvarint(n)                     the number of attributes that are set
//	n × (field(name) field(value)) every attribute and extension that is
//	                               set, sorted by name (byte order)
//	0x00                           when the event has no data (or empty data)
//	0x01 field(data)               otherwise: the data bytes as carried
//
// where field(s) is uvarint(len(s)) followed by the bytes of s, names are
// the CloudEvents 1.0 attribute names (an event of spec version 0.3 is
// read through its 1.0 form; specversion keeps its own value), and each
// value is the CloudEvents canonical string form of its type: time as RFC
// 3339 in UTC with nanoseconds and no trailing zeros, integers in decimal,
// booleans as true or false, binary as standard base64, URIs as written.
// Every binding carries extension values in forms that read back to the
// same canonical string, so the same event has the same digest whether it
// arrived over HTTP, Kafka or AMQP, in binary or in structured mode.
// Whether JSON data was base64 in a structured event is not part of it.
func DigestEvent(e *event.Event) (Digest, error) {
	b, err := AppendCanonical(nil, e)
	if err != nil {
		return Digest{}, err
	}
	return sha256.Sum256(b), nil
}

// AppendCanonical appends e's canonical encoding (see DigestEvent) to b.
func AppendCanonical(b []byte, e *event.Event) ([]byte, error) {
	if e.Context == nil {
		return b, errors.New("canonical encoding: event has no context")
	}
	ec := e.Context.AsV1()
	type attr struct{ name, value string }
	attrs := make([]attr, 0, 8+len(ec.Extensions))
	add := func(name, value string) { attrs = append(attrs, attr{name, value}) }
	add("specversion", e.SpecVersion())
	add("id", ec.ID)
	add("source", ec.Source.String())
	add("type", ec.Type)
	if ec.DataContentType != nil {
		add("datacontenttype", *ec.DataContentType)
	}
	if ec.DataSchema != nil {
		add("dataschema", ec.DataSchema.String())
	}
	if ec.Subject != nil {
		add("subject", *ec.Subject)
	}
	if ec.Time != nil && !ec.Time.IsZero() {
		add("time", types.FormatTime(ec.Time.Time))
	}
	for name, v := range ec.Extensions {
		s, err := types.Format(v)
		if err != nil {
			return b, fmt.Errorf("canonical encoding of event %q: extension %q: %w", ec.ID, name, err)
		}
		add(name, s)
	}
	slices.SortFunc(attrs, func(a, b attr) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	b = append(b, "auditbus-event-v1"...)
	b = binary.AppendUvarint(b, uint64(len(attrs)))
	for _, a := range attrs {
		b = appendField(b, a.name)
		b = appendField(b, a.value)
	}
	if len(e.DataEncoded) == 0 {
		return append(b, 0), nil
	}
	b = append(b, 1)
	return appendField(b, e.DataEncoded), nil
}
