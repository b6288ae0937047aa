package apierror

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
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
