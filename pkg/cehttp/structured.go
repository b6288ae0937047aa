package cehttp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
)

// The JSON event format (structured and batch modes) is read by a small
// scanner over a body that encoding/json has already found valid, so the
// scanner only walks tokens: no reflection, no map per event, and the data
// member kept byte for byte.

// decodeStructured reads one event in the JSON event format.
func decodeStructured(body []byte) (event.Event, error) {
	if err := checkJSON(body, "one JSON object, the event"); err != nil {
		return event.Event{}, err
	}
	s := scanner{b: body}
	if c := s.peek(); c != '{' {
		return event.Event{}, &Error{Status: http.StatusBadRequest, Code: CodeMalformedJSON, Index: -1,
			Message: "the body is " + kindOf(c) + ", not a JSON object: a structured-mode body is one event as a JSON object" +
				"; send several events as a JSON array with Content-Type " + MediaTypeBatch}
	}
	e, _, err := s.event()
	if err != nil {
		return event.Event{}, err
	}
	return e, nil
}

// decodeBatch reads a JSON batch: an array of events, all valid or none.
func decodeBatch(body []byte) ([]event.Event, error) {
	if err := checkJSON(body, "a JSON array of events"); err != nil {
		return nil, err
	}
	s := scanner{b: body}
	if c := s.peek(); c != '[' {
		return nil, &Error{Status: http.StatusBadRequest, Code: CodeMalformedJSON, Index: -1,
			Message: "the body is " + kindOf(c) + ", not a JSON array: a batch is a JSON array of events" +
				"; send one event with Content-Type " + MediaTypeStructured + " or wrap it in [ ]"}
	}
	s.i++
	evs := make([]event.Event, 0, 8)
	for i := 0; ; i++ {
		c := s.peek()
		if c == ',' {
			s.i++
			c = s.peek()
		}
		if c == ']' {
			return evs, nil
		}
		if c != '{' {
			s.skip()
			return nil, batchElementError(i, "", newError(CodeInvalidAttribute, "",
				"is "+kindOf(c)+", not a JSON object; every element of a batch is one event"))
		}
		e, id, err := s.event()
		if err != nil {
			return nil, batchElementError(i, id, err)
		}
		evs = append(evs, e)
	}
}

// checkJSON refuses an empty or invalid body, naming where it breaks.
func checkJSON(body []byte, want string) *Error {
	if len(bytes.TrimSpace(body)) == 0 {
		return &Error{Status: http.StatusBadRequest, Code: CodeMalformedJSON, Index: -1,
			Message: "the body is empty; send " + want}
	}
	if json.Valid(body) {
		return nil
	}
	var raw json.RawMessage
	err := json.Unmarshal(body, &raw)
	msg := "the body is not valid JSON"
	var se *json.SyntaxError
	if errors.As(err, &se) {
		msg += " at byte " + strconv.FormatInt(se.Offset, 10) + " (" + se.Error() + ")"
	} else if err != nil {
		msg += " (" + err.Error() + ")"
	}
	return &Error{Status: http.StatusBadRequest, Code: CodeMalformedJSON, Index: -1,
		Message: msg + "; send " + want, Err: err}
}

// scanner walks valid JSON.
type scanner struct {
	b []byte
	i int
}

// peek skips white space and returns the next byte, or 0 at the end.
func (s *scanner) peek() byte {
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return c
		}
	}
	return 0
}

// skip passes over the value at s.i and returns its bytes.
func (s *scanner) skip() []byte {
	start := s.i
	switch s.b[s.i] {
	case '"':
		s.skipString()
	case '{', '[':
		depth := 0
		for {
			switch s.b[s.i] {
			case '"':
				s.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return s.b[start:s.i]
				}
			}
			s.i++
		}
	default: // number, true, false, null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.b[start:s.i]
			}
			s.i++
		}
	}
	return s.b[start:s.i]
}

func (s *scanner) skipString() {
	for s.i++; s.b[s.i] != '"'; s.i++ {
		if s.b[s.i] == '\\' {
			s.i++
		}
	}
	s.i++
}

// jsonString returns the value of the JSON string token raw.
func jsonString(raw []byte) string {
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c == '\\' {
			var v string
			_ = json.Unmarshal(raw, &v) // raw is a valid string token
			return v
		}
	}
	return string(inner)
}

// kindOf names the JSON type of a value by its first byte.
func kindOf(c byte) string {
	switch c {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case 0:
		return "nothing"
	}
	return "a number"
}

// Bits of the attributes seen in one event, to refuse repeated members.
const (
	seenSpecVersion = 1 << iota
	seenID
	seenSource
	seenType
	seenSubject
	seenTime
	seenDataContentType
	seenDataSchema
	seenData
	seenDataBase64
)

// attrs are the attributes the JSON format names, with their bits; the
// name is the key as a constant, so that reading a known key allocates
// nothing.
var attrs = map[string]struct {
	bit  int
	name string
}{
	"specversion": {seenSpecVersion, "specversion"}, "id": {seenID, "id"}, "source": {seenSource, "source"},
	"type": {seenType, "type"}, "subject": {seenSubject, "subject"}, "time": {seenTime, "time"},
	"datacontenttype": {seenDataContentType, "datacontenttype"}, "dataschema": {seenDataSchema, "dataschema"},
	"data": {seenData, "data"}, "data_base64": {seenDataBase64, "data_base64"},
}

// memberName returns the name of the member whose key token is raw, and
// whether it is an attribute of the format rather than an extension.
func memberName(raw []byte) (string, bool) {
	inner := raw[1 : len(raw)-1]
	if a, ok := attrs[string(inner)]; ok {
		return a.name, true
	}
	key := jsonString(raw)
	_, ok := attrs[key]
	return key, ok
}

// event reads the JSON object at s.i as a CloudEvent. It returns the id,
// when one was read, even on error, for batch messages. The specversion
// is checked before anything else is reported, so that a 0.3 event is
// told about its version rather than about an attribute.
func (s *scanner) event() (event.Event, string, *Error) {
	var (
		e        event.Event
		ec       = &event.EventContextV1{}
		seen     int
		sv       string
		firstErr *Error
		data     []byte
		b64      []byte
	)
	s.i++ // '{'
	for {
		c := s.peek()
		if c == ',' {
			s.i++
			c = s.peek()
		}
		if c == '}' {
			s.i++
			break
		}
		key, known := memberName(s.skip())
		s.peek()
		s.i++ // ':'
		s.peek()
		raw := s.skip()
		if firstErr != nil {
			continue
		}
		if known {
			bit := attrs[key].bit
			if seen&bit != 0 {
				firstErr = newError(CodeInvalidAttribute, key, where(key, structuredMode)+" appears twice; send each attribute once")
				continue
			}
			seen |= bit
		}
		switch key {
		case "data":
			data = raw
			continue
		case "data_base64":
			if raw[0] != 'n' {
				b64 = raw
			}
			continue
		}
		if raw[0] == 'n' { // null: the attribute is unset
			continue
		}
		if !known {
			if err := setExtension(ec, key, raw); err != nil {
				firstErr = err
			}
			continue
		}
		if err := setAttribute(ec, key, raw, &sv); err != nil {
			firstErr = err
		}
	}
	e.Context = ec
	if firstErr != nil && firstErr.Attribute == "specversion" {
		return e, ec.ID, firstErr
	}
	if err := checkSpecVersion(sv, seen&seenSpecVersion != 0, structuredMode); err != nil {
		return e, ec.ID, err
	}
	if firstErr != nil {
		return e, ec.ID, firstErr
	}
	if err := setData(&e, ec, data, b64); err != nil {
		return e, ec.ID, err
	}
	if err := check(&e, structuredMode); err != nil {
		return e, ec.ID, err
	}
	return e, ec.ID, nil
}

// setAttribute sets attribute key from its non-null JSON value raw;
// specversion goes to *sv.
func setAttribute(c *event.EventContextV1, key string, raw []byte, sv *string) *Error {
	if key == "specversion" && string(raw) == `"1.0"` {
		*sv = event.CloudEventsVersionV1
		return nil
	}
	if raw[0] != '"' {
		return newError(CodeInvalidAttribute, key, where(key, structuredMode)+" is "+kindOf(raw[0])+
			"; CloudEvents attributes are JSON strings in the JSON format")
	}
	v := jsonString(raw)
	if err := checkString(v); err != nil {
		return newError(CodeInvalidAttribute, key, where(key, structuredMode)+" "+err.Error())
	}
	switch key {
	case "specversion":
		*sv = v
	case "id":
		c.ID = v
	case "source":
		return setSource(c, v, structuredMode)
	case "type":
		c.Type = v
	case "subject":
		subject := v // copies, so that v itself does not escape
		c.Subject = &subject
	case "time":
		return setTime(c, v, structuredMode)
	case "datacontenttype":
		ct := v
		c.DataContentType = &ct
	case "dataschema":
		return setDataSchema(c, v, structuredMode)
	}
	return nil
}

// setExtension sets extension key from its JSON value: a string, an
// integer within 32 bits or a boolean (the JSON format's type mapping).
func setExtension(ec *event.EventContextV1, key string, raw []byte) *Error {
	if err := checkExtensionName(key, structuredMode); err != nil {
		return err
	}
	if _, dup := ec.Extensions[key]; dup {
		return newError(CodeInvalidAttribute, key, where(key, structuredMode)+" appears twice; send each attribute once")
	}
	var v any
	switch c := raw[0]; c {
	case '"':
		s := jsonString(raw)
		if err := checkString(s); err != nil {
			return newError(CodeInvalidAttribute, key, where(key, structuredMode)+" "+err.Error())
		}
		v = s
	case 't':
		v = true
	case 'f':
		v = false
	case '{', '[':
		return newError(CodeInvalidAttribute, key, where(key, structuredMode)+" is "+kindOf(c)+
			"; extension values are strings, integers or booleans")
	default:
		n, err := strconv.ParseInt(string(raw), 10, 32)
		if err != nil {
			return newError(CodeInvalidAttribute, key, where(key, structuredMode)+" is "+quoteShort(string(raw))+
				"; CloudEvents integers are whole numbers from -2147483648 to 2147483647, without fraction or exponent")
		}
		v = int32(n)
	}
	if ec.Extensions == nil {
		ec.Extensions = make(map[string]any, 4)
	}
	ec.Extensions[key] = v
	return nil
}

// setData fills the data of e from the data member (raw JSON, or nil) or
// the data_base64 member (a JSON string token, or nil), as the JSON
// format's section 3.1.2 says.
func setData(e *event.Event, ec *event.EventContextV1, data, b64 []byte) *Error {
	switch {
	case data != nil && b64 != nil && data[0] != 'n':
		return newError(CodeInvalidAttribute, "data", `members "data" and "data_base64" are both present; send one: data_base64 for binary data, data otherwise`)
	case b64 != nil:
		if b64[0] != '"' {
			return newError(CodeInvalidAttribute, "data_base64", `member "data_base64" is `+kindOf(b64[0])+"; send the data as a base64 JSON string")
		}
		s := jsonString(b64)
		d, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return newError(CodeInvalidAttribute, "data_base64", `member "data_base64" is not standard base64 with padding (RFC 4648, section 4): `+err.Error())
		}
		e.DataEncoded = d
		e.DataBase64 = true
	case data != nil:
		if ec.DataContentType == nil {
			// Absent datacontenttype means JSON data; the JSON format asks
			// that re-encoding into another binding say so explicitly.
			ct := event.ApplicationJSON
			ec.DataContentType = &ct
		}
		switch {
		case isJSON(*ec.DataContentType):
			e.DataEncoded = data
		case data[0] == '"':
			e.DataEncoded = []byte(jsonString(data))
		case data[0] == 'n':
		default:
			return newError(CodeInvalidAttribute, "data", `member "data" is `+kindOf(data[0])+", but datacontenttype "+
				quoteShort(*ec.DataContentType)+" is not JSON: send the data as a JSON string, binary data as data_base64, or declare a JSON media type")
		}
	}
	return nil
}

// isJSON reports whether media type ct declares JSON content: */json or
// */*+json, parameters aside.
func isJSON(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	i := strings.IndexByte(ct, '/')
	if i < 0 {
		return false
	}
	sub := ct[i+1:]
	return strings.EqualFold(sub, "json") || len(sub) > 5 && strings.EqualFold(sub[len(sub)-5:], "+json")
}
