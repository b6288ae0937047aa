package cehttp

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// Media types of the structured and batch content modes (JSON format).
const (
	// MediaTypeStructured is the JSON event format, one event a body.
	MediaTypeStructured = "application/cloudevents+json"
	// MediaTypeBatch is the JSON batch format: a JSON array of events.
	MediaTypeBatch = "application/cloudevents-batch+json"
)

// mode is a content mode of the binding.
type mode int

const (
	binaryMode mode = iota
	structuredMode
	batchMode
)

// Decode reads the CloudEvents of r in whichever content mode it was sent:
// binary, structured or batch (see the package doc). It reads at most
// maxBody bytes of body, through [http.MaxBytesReader]; a server that wants
// the connection closed after an oversize body wraps r.Body with its
// ResponseWriter first. Every event is checked against the CloudEvents 1.0
// rules; specversion 0.3 is refused.
//
// A refused request returns an [*Error] carrying the HTTP status (400, 413
// or 415) and a stable code; a batch with a bad element is refused whole.
// Events share memory with the body read; the caller owns both.
func Decode(r *http.Request, maxBody int64) ([]event.Event, error) {
	if r == nil {
		return nil, errors.New("cehttp: decode: the request is nil")
	}
	if maxBody <= 0 {
		return nil, fmt.Errorf("cehttp: decode: maxBody is %d; it must be the largest body accepted, in bytes, above 0", maxBody)
	}
	m, err := modeOf(r.Header)
	if err != nil {
		return nil, err
	}
	if r.ContentLength > maxBody {
		return nil, tooLarge(maxBody, r.ContentLength, nil)
	}
	if m == binaryMode {
		ec, err := binaryContext(r.Header)
		if err != nil {
			return nil, err
		}
		body, err := readBody(r, maxBody)
		if err != nil {
			return nil, err
		}
		evs := make([]event.Event, 1)
		evs[0].Context = ec
		if len(body) > 0 {
			evs[0].DataEncoded = body
		}
		if err := check(&evs[0], binaryMode); err != nil {
			return nil, err
		}
		return evs, nil
	}
	body, err := readBody(r, maxBody)
	if err != nil {
		return nil, err
	}
	if m == batchMode {
		return decodeBatch(body)
	}
	e, err := decodeStructured(body)
	if err != nil {
		return nil, err
	}
	return []event.Event{e}, nil
}

// modeOf picks the content mode from the Content-Type: the JSON event
// formats mean structured or batch mode, any other CloudEvents format is
// refused, and anything else is binary mode when ce- headers are present.
func modeOf(h http.Header) (mode, error) {
	ct := h.Get("Content-Type")
	mt := ct
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = strings.TrimSpace(mt)
	switch {
	case strings.EqualFold(mt, MediaTypeStructured):
		return structuredMode, nil
	case strings.EqualFold(mt, MediaTypeBatch):
		return batchMode, nil
	case len(mt) >= len("application/cloudevents") && strings.EqualFold(mt[:len("application/cloudevents")], "application/cloudevents"):
		return 0, &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType, Index: -1,
			Message: "Content-Type " + quoteShort(ct) + " is an event format this server does not read; send JSON: " +
				MediaTypeStructured + " for one event, " + MediaTypeBatch + " for a batch, or binary mode (ce- headers)"}
	}
	for k := range h {
		if hasCEPrefix(k) {
			return binaryMode, nil
		}
	}
	what := "no Content-Type"
	if ct != "" {
		what = "Content-Type " + quoteShort(ct)
	}
	return 0, &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType, Index: -1,
		Message: "not a CloudEvent: " + what + " and no ce- headers; send binary mode (ce-specversion, ce-id, ce-source and ce-type headers with the data as the body), or Content-Type " +
			MediaTypeStructured + " (one event) or " + MediaTypeBatch + " (a JSON array of events)"}
}

func hasCEPrefix(k string) bool { return len(k) >= 3 && strings.EqualFold(k[:3], "ce-") }

// readBody reads r.Body, at most maxBody bytes, in one allocation when the
// length is known.
func readBody(r *http.Request, maxBody int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	rd := http.MaxBytesReader(nil, r.Body, maxBody)
	n := 512
	if r.ContentLength > 0 {
		n = int(r.ContentLength) + 1 // +1: the final read sees EOF without growing
	}
	b := make([]byte, 0, n)
	for {
		m, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, tooLarge(maxBody, r.ContentLength, err)
			}
			return nil, &Error{Status: http.StatusBadRequest, Code: CodeUnreadableBody, Index: -1,
				Message: "the body could not be read: " + err.Error() + "; send the request again", Err: err}
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

func tooLarge(limit, length int64, cause error) *Error {
	msg := "the body is larger than the limit of " + strconv.FormatInt(limit, 10) + " bytes"
	if length > 0 {
		msg = "the body of " + strconv.FormatInt(length, 10) + " bytes is larger than the limit of " + strconv.FormatInt(limit, 10) + " bytes"
	}
	return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Index: -1,
		Message: msg + "; send less data, or split a batch into several requests", Err: cause}
}

// binaryContext reads the attributes of a binary-mode request from its
// headers (HTTP binding, section 3.1).
func binaryContext(h http.Header) (*event.EventContextV1, error) {
	ec := &event.EventContextV1{}
	sv := ""
	for k, vs := range h {
		if !hasCEPrefix(k) {
			continue
		}
		name := k[3:]
		if len(vs) != 1 {
			return nil, newError(CodeInvalidAttribute, strings.ToLower(name),
				"header "+k+" is sent "+strconv.Itoa(len(vs))+" times; send each ce- header once")
		}
		v, err := decodeHeaderValue(vs[0])
		if err != nil {
			return nil, newError(CodeInvalidAttribute, strings.ToLower(name), "header "+k+" "+err.Error())
		}
		switch {
		case strings.EqualFold(name, "specversion"):
			sv = v
		case strings.EqualFold(name, "id"):
			ec.ID = v
		case strings.EqualFold(name, "source"):
			if err := setSource(ec, v, binaryMode); err != nil {
				return nil, err
			}
		case strings.EqualFold(name, "type"):
			ec.Type = v
		case strings.EqualFold(name, "subject"):
			subject := v // a copy, so that v itself does not escape
			ec.Subject = &subject
		case strings.EqualFold(name, "time"):
			if err := setTime(ec, v, binaryMode); err != nil {
				return nil, err
			}
		case strings.EqualFold(name, "dataschema"):
			if err := setDataSchema(ec, v, binaryMode); err != nil {
				return nil, err
			}
		case strings.EqualFold(name, "datacontenttype"):
			return nil, newError(CodeInvalidAttribute, "datacontenttype",
				"header "+k+" must not be sent: in binary mode datacontenttype travels as the Content-Type header (HTTP binding, section 3.1.1)")
		default:
			name = extensionName(name)
			if err := checkExtensionName(name, binaryMode); err != nil {
				return nil, err
			}
			if ec.Extensions == nil {
				ec.Extensions = make(map[string]any, 4)
			}
			ec.Extensions[name] = v
		}
	}
	if err := checkSpecVersion(sv, sv != "", binaryMode); err != nil {
		return nil, err
	}
	if ct := h.Get("Content-Type"); ct != "" {
		ec.DataContentType = &ct
	}
	return ec, nil
}

// commonExtensions are extension names returned without allocating.
var commonExtensions = [...]string{"traceparent", "tracestate", "partitionkey", "sequence", "dataref", "authtype", "authid"}

// extensionName lower-cases the name of a ce- header past the prefix.
func extensionName(name string) string {
	for _, c := range commonExtensions {
		if strings.EqualFold(name, c) {
			return c
		}
	}
	return strings.ToLower(name)
}

// where names attribute attr as the client sent it in mode m.
func where(attr string, m mode) string {
	if m != binaryMode {
		return "member " + strconv.Quote(attr)
	}
	if attr == "datacontenttype" {
		return "header Content-Type"
	}
	return "header ce-" + attr
}

func checkSpecVersion(sv string, present bool, m mode) *Error {
	switch {
	case !present || sv == "":
		return missing("specversion", m)
	case sv == event.CloudEventsVersionV1:
		return nil
	case sv == event.CloudEventsVersionV03:
		return newError(CodeBadSpecVersion, "specversion", where("specversion", m)+
			` is "0.3": this server reads CloudEvents 1.0 only; send specversion "1.0" with 1.0 attribute names (0.3's schemaurl is 1.0's dataschema)`)
	default:
		return newError(CodeBadSpecVersion, "specversion", where("specversion", m)+" is "+quoteShort(sv)+
			`: this server reads CloudEvents 1.0 only; send specversion "1.0"`)
	}
}

// required says what each required attribute must hold.
var required = map[string]string{
	"specversion": `"1.0"`,
	"id":          "a non-empty string, unique within the source",
	"source":      "a URI-reference naming the producer, such as /orders or https://example.com/orders",
	"type":        "a non-empty string such as com.example.order.created",
}

func missing(attr string, m mode) *Error {
	return newError(CodeMissingAttribute, attr, where(attr, m)+
		" is missing or empty; CloudEvents 1.0 requires it: send "+required[attr])
}

func setSource(ec *event.EventContextV1, v string, m mode) *Error {
	if strings.TrimSpace(v) == "" {
		return missing("source", m)
	}
	u := types.ParseURIRef(v)
	if u == nil {
		return newError(CodeInvalidAttribute, "source", where("source", m)+" "+quoteShort(v)+
			" is not a URI-reference (RFC 3986); send a path such as /orders or a URI such as https://example.com/orders")
	}
	ec.Source = *u
	return nil
}

func setTime(ec *event.EventContextV1, v string, m mode) *Error {
	t, err := types.ParseTimestamp(v)
	if err != nil {
		return newError(CodeInvalidAttribute, "time", where("time", m)+" "+quoteShort(v)+
			" is not an RFC 3339 timestamp; send one such as 2024-05-01T12:00:00Z")
	}
	ec.Time = t
	return nil
}

func setDataSchema(ec *event.EventContextV1, v string, m mode) *Error {
	u := types.ParseURI(v)
	if u == nil {
		return newError(CodeInvalidAttribute, "dataschema", where("dataschema", m)+" "+quoteShort(v)+
			" is not a URI (RFC 3986); send an absolute URI such as https://example.com/schemas/order.json")
	}
	ec.DataSchema = u
	return nil
}

// checkExtensionName applies the CloudEvents naming rule to an extension
// attribute: lower-case ASCII letters and digits only. The names of data
// are reserved.
func checkExtensionName(name string, m mode) *Error {
	bad := name == "" || name == "data"
	for i := 0; i < len(name) && !bad; i++ {
		c := name[i]
		bad = (c < 'a' || c > 'z') && (c < '0' || c > '9')
	}
	if !bad {
		return nil
	}
	if name == "data" {
		return newError(CodeInvalidAttribute, name, where(name, m)+
			": data is not an attribute; in binary mode it is the body")
	}
	return newError(CodeInvalidAttribute, name, where(name, m)+
		": CloudEvents attribute names are lower-case letters a-z and digits 0-9 only; rename the extension")
}

// check applies the rules every decoded event must meet: the required
// attributes, then the bus's CloudEvents 1.0 rules for the rest.
func check(e *event.Event, m mode) *Error {
	ec := e.Context.(*event.EventContextV1)
	switch {
	case strings.TrimSpace(ec.ID) == "":
		return missing("id", m)
	case sourceEmpty(&ec.Source):
		return missing("source", m)
	case strings.TrimSpace(ec.Type) == "":
		return missing("type", m)
	}
	err := bus.Validate(e)
	if err == nil {
		return nil
	}
	var ee *bus.EventError
	if errors.As(err, &ee) && ee.Attribute != "" {
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidAttribute, Index: -1, Attribute: ee.Attribute,
			Message: where(ee.Attribute, m) + " " + ee.Reason, Err: err}
	}
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidAttribute, Index: -1, Message: err.Error(), Err: err}
}

// sourceEmpty reports whether u would print as blank, without printing it.
func sourceEmpty(u *types.URIRef) bool {
	return u.Scheme == "" && u.Opaque == "" && u.User == nil && u.Host == "" &&
		strings.TrimSpace(u.Path) == "" && u.RawQuery == "" && u.Fragment == ""
}

// quoteShort quotes v for a message, cut to 64 bytes.
func quoteShort(v string) string {
	if len(v) > 64 {
		return strconv.Quote(v[:64]) + "..."
	}
	return strconv.Quote(v)
}
