package cehttp

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// Stable error codes of [Error]. Servers return them to clients, so they
// never change meaning.
const (
	// CodeMalformedJSON: a structured or batch body is not valid JSON.
	CodeMalformedJSON = "malformed_json"
	// CodeMissingAttribute: a required attribute (specversion, id, source,
	// type) is absent or empty.
	CodeMissingAttribute = "missing_attribute"
	// CodeBadSpecVersion: specversion is not "1.0".
	CodeBadSpecVersion = "bad_specversion"
	// CodeInvalidAttribute: an attribute, extension or the data breaks a
	// CloudEvents rule (type, format, name, encoding).
	CodeInvalidAttribute = "invalid_attribute"
	// CodeBadBatchElement: an element of a batch is refused; the whole
	// batch is refused with it. The cause is the wrapped *Error.
	CodeBadBatchElement = "bad_batch_element"
	// CodeTooLarge: the body is larger than the limit.
	CodeTooLarge = "too_large"
	// CodeUnsupportedMediaType: the Content-Type names no mode this
	// binding reads.
	CodeUnsupportedMediaType = "unsupported_media_type"
	// CodeUnreadableBody: the body could not be read (the client went
	// away, a broken chunked encoding).
	CodeUnreadableBody = "unreadable_body"
)

// Error is why [Decode] refused a request. Status is the HTTP status to
// answer with (400, 413 or 415), Code one of the Code constants, Index the
// position of the refused element in a batch (-1 otherwise), Attribute the
// attribute or extension to blame (or ""), and Message a sentence for the
// client naming the input, the rule and the fix. Err is the cause: for a
// bad batch element the element's own *Error, for malformed JSON the
// *json.SyntaxError, for an oversize body the *http.MaxBytesError.
type Error struct {
	Status    int
	Code      string
	Index     int
	Attribute string
	Message   string
	Err       error
}

// Error returns "cehttp: " and the message.
func (e *Error) Error() string { return "cehttp: " + e.Message }

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// MarshalJSON writes the error as a client sees it:
// {"code":...,"message":...} with "attribute" and "index" when they apply.
func (e *Error) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteString(`{"code":`)
	writeJSONString(&b, e.Code)
	b.WriteString(`,"message":`)
	writeJSONString(&b, e.Message)
	if e.Attribute != "" {
		b.WriteString(`,"attribute":`)
		writeJSONString(&b, e.Attribute)
	}
	if e.Index >= 0 {
		b.WriteString(`,"index":`)
		b.WriteString(strconv.Itoa(e.Index))
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

func writeJSONString(b *strings.Builder, s string) {
	q, _ := json.Marshal(s) // a string always marshals
	b.Write(q)
}

// newError is a 400 for one event (Index -1).
func newError(code, attr, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Index: -1, Attribute: attr, Message: msg}
}

// batchElementError wraps the refusal of batch element i.
func batchElementError(i int, id string, cause *Error) *Error {
	var b strings.Builder
	b.WriteString("batch element ")
	b.WriteString(strconv.Itoa(i))
	if id != "" {
		b.WriteString(" (id ")
		b.WriteString(strconv.Quote(id))
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(cause.Message)
	b.WriteString("; the whole batch was refused and none of its events was accepted: fix this element and send the batch again")
	return &Error{Status: http.StatusBadRequest, Code: CodeBadBatchElement, Index: i,
		Attribute: cause.Attribute, Message: b.String(), Err: cause}
}
