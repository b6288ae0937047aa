package signing

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"strings"
	"sync"
	"time"

	"github.com/auditbus/auditbus/bus"
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

var hashers = sync.Pool{New: func() any { return sha256.New() }}

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
	// 9 attributes and two digests per extension; the common sizes stay on
	// the stack.
	var stack [(9 + 2*4) * sha256.Size]byte
	chain := stack[:0]
	h := hashers.Get().(hash.Hash)
	defer hashers.Put(h)
	sum := func(s string) {
		h.Reset()
		_, _ = h.Write(stringBytes(s))
		chain = h.Sum(chain)
	}
	sum(ev.ID())
	sum(ev.Source())
	sum(ev.SpecVersion())
	sum(ev.Type())
	sum(ev.DataContentType())
	sum(ev.DataSchema())
	sum(ev.Subject())
	if t := ev.Time(); t.IsZero() {
		sum("")
	} else {
		var tb [len(time.RFC3339) + 8]byte
		h.Reset()
		_, _ = h.Write(t.UTC().AppendFormat(tb[:0], time.RFC3339))
		chain = h.Sum(chain)
	}
	h.Reset()
	_, _ = h.Write(ev.Data())
	chain = h.Sum(chain)
	if len(extensions) > 0 {
		ext := ev.Context.GetExtensions()
		for _, name := range extensions {
			v, ok := ext[name]
			if !ok {
				return out, fmt.Errorf("extension %q is not on the event", name)
			}
			s, err := types.Format(v)
			if err != nil {
				return out, fmt.Errorf("extension %q: %v", name, err)
			}
			sum(name)
			sum(s)
		}
	}
	h.Reset()
	_, _ = h.Write(chain)
	h.Sum(out[:0])
	return out, nil
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
