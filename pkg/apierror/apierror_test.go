package apierror

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("WWW-Authenticate", `Bearer realm="auditbus"`)
	Write(rec, http.StatusRequestEntityTooLarge, "too_large", `the body is 2 MiB; send at most 1 MiB ("<" & ">" kept)`)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if rec.Header().Get("WWW-Authenticate") == "" {
		t.Error("a header set before Write was lost")
	}
	var b Body
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if b.Error.Code != "too_large" || b.Error.Message != `the body is 2 MiB; send at most 1 MiB ("<" & ">" kept)` {
		t.Errorf("body %+v", b)
	}
}

func TestWriteKeepsAngleBrackets(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <token>")
	if got, want := rec.Body.String(), `{"error":{"code":"unauthorized","message":"send Authorization: Bearer <token>"}}`+"\n"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
}

func TestWriteDetail(t *testing.T) {
	rec := httptest.NewRecorder()
	i := 0
	WriteDetail(rec, http.StatusBadRequest, Detail{Code: "bad_batch_element", Message: "batch element 0: no type", Attribute: "type", Index: &i})
	if got, want := rec.Body.String(), `{"error":{"code":"bad_batch_element","message":"batch element 0: no type","attribute":"type","index":0}}`+"\n"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	if rec.Code != http.StatusBadRequest || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
}

// TestWriteCutsLongMessages: whatever a message echoes, the answer stays
// short and keeps the message's start and end.
func TestWriteCutsLongMessages(t *testing.T) {
	long := `parameter "` + strings.Repeat("é", 20000) + `" is unknown; known parameters: from, to`
	rec := httptest.NewRecorder()
	WriteDetail(rec, http.StatusBadRequest, Detail{Code: "bad_query", Message: long, Attribute: long})
	var b Body
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	for _, s := range []string{b.Error.Message, b.Error.Attribute} {
		if len(s) > MaxMessage || !utf8.ValidString(s) || !strings.HasPrefix(s, `parameter "é`) || !strings.HasSuffix(s, "é\" is unknown; known parameters: from, to") ||
			!strings.Contains(s, "bytes left out") {
			t.Errorf("cut to %d bytes: %q", len(s), s)
		}
	}
	if short := "the token expired"; Cut(short) != short {
		t.Errorf("Cut(%q) = %q", short, Cut(short))
	}
}
