// Package apierror writes the one JSON error shape every auditbus HTTP
// endpoint answers with:
//
//	{"error":{"code":"token_expired","message":"the token expired at ...; get a new token"}}
//
// The code is stable and meant for programs; the message is for people and
// says what is wrong and what to do about it.
package apierror

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// Body is the JSON document of an error response.
type Body struct {
	Error Detail `json:"error"`
}

// Detail is the error inside a Body.
type Detail struct {
	// Code is a stable, lower-case identifier such as "bad_signature" or
	// "insufficient_scope".
	Code string `json:"code"`
	// Message says, in plain words, what is wrong and how to fix it.
	Message string `json:"message"`
	// Attribute names the CloudEvents attribute or extension at fault, when
	// one is; omitted otherwise.
	Attribute string `json:"attribute,omitempty"`
	// Index is the position of the refused element of a batch, when the
	// error concerns one; omitted otherwise.
	Index *int `json:"index,omitempty"`
}

// Write answers with status and the JSON body {"error":{"code":code,
// "message":message}}, as application/json. Headers the caller set before
// (WWW-Authenticate, say) are kept. The body is never cached.
func Write(w http.ResponseWriter, status int, code, message string) {
	WriteDetail(w, status, Detail{Code: code, Message: message})
}

// WriteDetail is Write with every field of the Detail, for errors that
// name an attribute or a batch element. A message or attribute longer
// than MaxMessage bytes is cut (see Cut).
func WriteDetail(w http.ResponseWriter, status int, d Detail) {
	d.Message, d.Attribute = Cut(d.Message), Cut(d.Attribute)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// The body is served as application/json with nosniff, so "<" and ">"
	// stay readable instead of becoming \u003c and \u003e.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(Body{Error: d}); err != nil {
		// Encoding two strings cannot fail; keep the shape regardless.
		b.Reset()
		b.WriteString(`{"error":{"code":"internal","message":"the error body could not be encoded"}}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// MaxMessage bounds the bytes of an error's message and attribute. A
// message past it can only come from echoing what a client sent (a
// parameter, a URL, a name), which an answer must not repeat whole.
const MaxMessage = 1024

// Cut returns s when it holds at most MaxMessage bytes, and otherwise its
// start and its end (which says what to do) around a note of how many
// bytes were left out, within MaxMessage bytes and on rune boundaries.
func Cut(s string) string {
	if len(s) <= MaxMessage {
		return s
	}
	i := MaxMessage * 5 / 8
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	j := len(s) - MaxMessage/4
	for j < len(s) && !utf8.RuneStart(s[j]) {
		j++
	}
	return s[:i] + " ... (" + strconv.Itoa(j-i) + " bytes left out) ... " + s[j:]
}
