package mem

import (
	"bytes"
	"maps"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/event"
)

// duplicate returns a copy of e that shares no memory anyone can change
// through the SDK: the context, its extensions and the data are copied. The
// pointed-to attributes (time, subject, datacontenttype, dataschema) are
// shared, because the SDK's setters replace those pointers and never write
// through them. It does the work of Event.Clone with a third of the
// allocations.
func duplicate(e *bus.Event) bus.Event {
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok {
		return e.Clone()
	}
	c := *ec
	if ec.Extensions != nil {
		c.Extensions = maps.Clone(ec.Extensions)
		for k, v := range c.Extensions {
			if b, ok := v.([]byte); ok {
				c.Extensions[k] = bytes.Clone(b)
			}
		}
	}
	out := bus.Event{Context: &c, DataBase64: e.DataBase64}
	if e.DataEncoded != nil {
		out.DataEncoded = bytes.Clone(e.DataEncoded)
	}
	if e.FieldErrors != nil {
		out.FieldErrors = maps.Clone(e.FieldErrors)
	}
	return out
}
