package clickhouse

import (
	"unsafe"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// The attrs column holds an event's attributes as the SDK's MarshalJSON
// writes them without data: an object whose first member is
// "specversion":"1.0", then the attributes and extensions, most of them
// plain ASCII strings. Reading a page decodes one such object per record,
// which through the SDK's general decoder costs more than the rest of the
// read; attrDecoder reads the common form directly and leaves everything
// else (another spec version, escapes, numbers, booleans, duplicate keys,
// data members) to the SDK, so an event comes out exactly as
// Event.UnmarshalJSON makes it.

// attrDecoder decodes stored attributes. It is not safe for concurrent
// use: it remembers the last source it parsed, which the events of a page
// mostly share.
type attrDecoder struct {
	source    string
	sourceRef types.URIRef
}

// attrBlock holds an event's context and what its pointers point at, so
// that decoding an event allocates once for all of them.
type attrBlock struct {
	ctx            event.EventContextV1
	time           types.Timestamp
	subject, dtype string
}

const attrsPrefix = `{"specversion":"1.0"`

// decode returns the event of the stored attributes s, without data. s
// must stay unchanged while the event is in use: its strings are slices
// of s.
func (d *attrDecoder) decode(s string) (event.Event, error) {
	if c := d.fast(s); c != nil {
		return event.Event{Context: c}, nil
	}
	e := event.New()
	// The SDK's decoder only reads its input, so it may read the string's
	// bytes in place.
	err := e.UnmarshalJSON(unsafe.Slice(unsafe.StringData(s), len(s)))
	return e, err
}

// fast decodes s in its common form, or returns nil when it is not.
func (d *attrDecoder) fast(s string) *event.EventContextV1 {
	if len(s) < len(attrsPrefix) || s[:len(attrsPrefix)] != attrsPrefix {
		return nil
	}
	b := &attrBlock{}
	c := &b.ctx
	var seen uint8 // attributes already read, one bit each
	i := len(attrsPrefix)
	for {
		if i >= len(s) {
			return nil
		}
		if s[i] == '}' {
			if i != len(s)-1 {
				return nil
			}
			break
		}
		if s[i] != ',' {
			return nil
		}
		key, next, ok := plainString(s, i+1)
		if !ok || next >= len(s) || s[next] != ':' {
			return nil
		}
		val, next, ok := plainString(s, next+1)
		if !ok {
			return nil
		}
		i = next
		var bit uint8
		switch key {
		case "id":
			bit, c.ID = 1<<0, val
		case "source":
			if val == "" {
				return nil // the SDK's error
			}
			if val != d.source {
				ref := types.ParseURIRef(val)
				if ref == nil {
					return nil
				}
				d.source, d.sourceRef = val, *ref
			}
			bit, c.Source = 1<<1, d.sourceRef
		case "type":
			bit, c.Type = 1<<2, val
		case "subject":
			bit = 1 << 3
			if val != "" {
				b.subject = val
				c.Subject = &b.subject
			}
		case "time":
			bit = 1 << 4
			if val != "" {
				t, err := types.ParseTime(val)
				if err != nil {
					return nil
				}
				b.time.Time = t
				c.Time = &b.time
			}
		case "datacontenttype":
			// After specversion the SDK keeps even an empty one.
			bit, b.dtype = 1<<5, val
			c.DataContentType = &b.dtype
		case "dataschema":
			bit, c.DataSchema = 1<<6, types.ParseURI(val)
		default:
			if !extensionName(key) {
				return nil // data, data_base64, specversion again, or a name the SDK refuses
			}
			if c.Extensions == nil {
				c.Extensions = make(map[string]any)
			} else if _, dup := c.Extensions[key]; dup {
				return nil
			}
			c.Extensions[key] = val
			continue
		}
		if seen&bit != 0 {
			return nil
		}
		seen |= bit
	}
	return c
}

// plainString reads the JSON string starting at s[i] when it holds
// printable ASCII other than a backslash only, and returns it (a slice of
// s) and the index after its closing quote.
func plainString(s string, i int) (string, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return s[i+1 : j], j + 1, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return "", 0, false
		}
	}
	return "", 0, false
}

// extensionName reports whether the SDK takes name as an extension's as
// it stands: lower-case ASCII letters and digits only, so that it is
// stored under the same name, within the SDK's length limit if one is
// set, and no spec attribute's (those are matched before this, but for
// data and data_base64 and a second specversion).
func extensionName(name string) bool {
	if name == "" || name == "data" || name == "specversion" ||
		event.MaxExtensionNameLength > 0 && len(name) > event.MaxExtensionNameLength {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false // data_base64 too
		}
	}
	return true
}
