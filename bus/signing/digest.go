package signing

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// The extension's attribute names and its DSSE payload type.
const (
	// AttrMaterial holds the Base64 DSSE envelope.
	AttrMaterial = "dssematerial"
	// AttrSignedExtensions lists, comma-separated, the extensions the
	// signature covers.
	AttrSignedExtensions = "signedextattrs"
	// PayloadType is the DSSE payload type of the verification material.
	PayloadType = "https://cloudevents.io/verifiability/dsse/v0.1"
)

// reserved are the names signedextattrs must not hold: the core context
// attributes and the extension's own two attributes.
var reserved = [...]string{"id", "source", "specversion", "type", "datacontenttype",
	"dataschema", "subject", "time", AttrMaterial, AttrSignedExtensions}

// Digest returns ev's verification material: the SHA-256 of the
// concatenated SHA-256 digests of its id, source, specversion, type,
// datacontenttype, dataschema, subject, time (RFC 3339 in UTC, to the
// second), data and, for each name in extensions in order, the name and the
// extension's value (its CloudEvents canonical string). An attribute that is
// not set counts as the empty string. An extension in the list that the
// event does not carry is an error.
func Digest(ev *bus.Event, extensions []string) ([sha256.Size]byte, error) {
	var out [sha256.Size]byte
	if ev == nil || ev.Context == nil {
		return out, fmt.Errorf("the event is empty: it has no context attributes")
	}
	d := hashers.Get().(*digester)
	defer hashers.Put(d)
	d.chain = d.chain[:0]
	d.add(stringBytes(ev.ID()))
	d.add(stringBytes(ev.Source()))
	d.add(stringBytes(ev.SpecVersion()))
	d.add(stringBytes(ev.Type()))
	d.add(stringBytes(ev.DataContentType()))
	d.add(stringBytes(ev.DataSchema()))
	d.add(stringBytes(ev.Subject()))
	if t := ev.Time(); t.IsZero() {
		d.add(nil)
	} else {
		d.add(t.UTC().AppendFormat(d.scratch[:0], time.RFC3339))
	}
	d.add(ev.Data())
	if len(extensions) > 0 {
		ext := extensionsOf(ev)
		for _, name := range extensions {
			v, ok := ext[name]
			if !ok {
				return out, fmt.Errorf("extension %q is not on the event", name)
			}
			s, ok := v.(string)
			if !ok {
				var err error
				if s, err = types.Format(v); err != nil {
					return out, fmt.Errorf("extension %q: %v", name, err)
				}
			}
			d.add(stringBytes(name))
			d.add(stringBytes(s))
		}
	}
	d.h.Reset()
	_, _ = d.h.Write(d.chain)
	d.h.Sum(out[:0])
	return out, nil
}

// digester holds what Digest reuses from one event to the next.
type digester struct {
	h       hash.Hash
	chain   []byte
	scratch [64]byte
}

// add appends SHA-256(b) to the chain.
func (d *digester) add(b []byte) {
	d.h.Reset()
	_, _ = d.h.Write(b)
	d.chain = d.h.Sum(d.chain)
}

var hashers = sync.Pool{New: func() any {
	return &digester{h: sha256.New(), chain: make([]byte, 0, (9+2*4)*sha256.Size)}
}}

// extensionsOf returns ev's extensions without the copy some contexts'
// GetExtensions make. Callers must not modify the map.
func extensionsOf(ev *bus.Event) map[string]any {
	if ec, ok := ev.Context.(*event.EventContextV1); ok {
		return ec.Extensions
	}
	return ev.Context.GetExtensions()
}

// stringBytes returns s's bytes for hashing without a copy; the hash only
// reads them.
func stringBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafeBytes(s)
}

// checkExtensionName reports why name may not be listed in signedextattrs,
// or "" if it may.
func checkExtensionName(name string) string {
	if name == "" {
		return "has an empty name (two commas in a row, or one at either end)"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return fmt.Sprintf("name %q has %q: extension names are lower-case letters a-z and digits 0-9 only, separated by commas without spaces", name, c)
		}
	}
	for _, r := range reserved {
		if name == r {
			return fmt.Sprintf("name %q is reserved: it is a core context attribute or one of the extension's own attributes, which are never listed", name)
		}
	}
	return ""
}

// parseSignedExtensions splits a signedextattrs value and checks it against
// the spec's rules: no repeated name, no reserved name, valid names. The
// empty value is the empty list.
func parseSignedExtensions(v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	names := strings.Split(v, ",")
	for i, n := range names {
		if why := checkExtensionName(n); why != "" {
			return nil, fmt.Errorf("%s", why)
		}
		for _, prev := range names[:i] {
			if prev == n {
				return nil, fmt.Errorf("name %q is listed twice", n)
			}
		}
	}
	return names, nil
}
