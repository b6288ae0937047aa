package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/auth"
)

// binary is the headers of a valid binary-mode event.
func binary(kv ...string) map[string]string {
	h := map[string]string{
		"ce-specversion": "1.0", "ce-id": "b-1", "ce-source": "/tests", "ce-type": "com.example.test.bad",
		"Content-Type": "application/json",
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(h, kv[i])
		} else {
			h[kv[i]] = kv[i+1]
		}
	}
	return h
}

var structured = map[string]string{"Content-Type": "application/cloudevents+json"}

// Every bad input of the list, and a few more, gets its documented
// status and code, and nothing of it reaches the transport or the store.
func TestBadInputs(t *testing.T) {
	e := newEnv(t)
	valid := `{"specversion":"1.0","id":"s-1","source":"/tests","type":"com.example.test.bad"}`
	tests := []struct {
		name   string
		r      req
		status int
		code   string
		says   []string // the message names these
		index  int      // the index field, or -1 for none
	}{
		{"malformed JSON", req{method: "POST", header: structured, body: `{"specversion":"1.0",`},
			400, "malformed_json", nil, -1},
		{"missing required attribute", req{method: "POST", header: binary("ce-type", ""), body: `{}`},
			400, "missing_attribute", []string{"type"}, -1},
		{"wrong specversion", req{method: "POST", header: binary("ce-specversion", "0.3"), body: `{}`},
			400, "bad_specversion", []string{"0.3"}, -1},
		{"oversize body", req{method: "POST", header: binary(), body: `"` + strings.Repeat("x", 70<<10) + `"`},
			413, "too_large", []string{"65536"}, -1},
		{"bad batch element", req{method: "POST", header: map[string]string{"Content-Type": "application/cloudevents-batch+json"},
			body: "[" + valid + `,{"specversion":"1.0","id":"s-2","source":"/tests"}]`},
			400, "bad_batch_element", []string{"batch element 1", "type"}, 1},
		{"unsupported media type", req{method: "POST", header: map[string]string{"Content-Type": "text/plain"}, body: "hello"},
			415, "unsupported_media_type", nil, -1},
		{"missing token", req{method: "POST", header: structured, body: valid, token: "-"},
			401, auth.CodeUnauthorized, nil, -1},
		{"bad signature", req{method: "POST", header: structured, body: valid, token: token(t, otherSecret, auth.ScopeEventsWrite, time.Hour)},
			401, auth.CodeBadSignature, nil, -1},
		{"expired token", req{method: "POST", header: structured, body: valid, token: token(t, secret, auth.ScopeEventsWrite, -time.Hour)},
			401, auth.CodeTokenExpired, nil, -1},
		{"missing scope", req{method: "POST", header: structured, body: valid, token: token(t, secret, auth.ScopeAuditRead, time.Hour)},
			403, auth.CodeInsufficientScope, []string{"events:write"}, -1},
		{"unknown query parameter on ingest", req{method: "POST", path: "/v1/events?partition=3", header: structured, body: valid},
			400, "bad_query", []string{`"partition"`}, -1},
		{"route and topic", req{method: "POST", path: "/v1/events?route=a&topic=b", header: structured, body: valid},
			400, "bad_query", []string{"route", "topic"}, -1},
		{"empty topic", req{method: "POST", path: "/v1/events?topic=", header: structured, body: valid},
			400, "bad_query", []string{"topic"}, -1},
		{"topic with a space", req{method: "POST", path: "/v1/events?topic=a%20b", header: structured, body: valid},
			400, "bad_query", []string{"topic"}, -1},
		{"topic nobody reads", req{method: "POST", path: "/v1/events?topic=nobody", header: structured, body: valid},
			404, "no_route", []string{`"nobody"`, "mem", "route"}, -1},
		{"unknown route", req{method: "POST", path: "/v1/events?route=orders", header: structured, body: valid},
			404, "unknown_route", []string{`"orders"`}, -1},

		{"query: missing token", req{path: "/v1/events", token: "-"}, 401, auth.CodeUnauthorized, nil, -1},
		{"query: missing scope", req{path: "/v1/events", token: token(t, secret, auth.ScopeEventsWrite, time.Hour)},
			403, auth.CodeInsufficientScope, []string{"audit:read"}, -1},
		{"query: unknown query parameter", req{path: "/v1/events?colour=red"}, 400, "bad_query", []string{`"colour"`}, -1},
		{"query: bad time", req{path: "/v1/events?from=yesterday"}, 400, "bad_query", []string{`"from"`, "RFC 3339"}, -1},
		{"query: bad limit", req{path: "/v1/events?limit=many"}, 400, "bad_query", []string{`"limit"`}, -1},
		{"query: bad cursor", req{path: "/v1/events?cursor=abc"}, 400, "bad_query", []string{`"cursor"`}, -1},
		{"query: repeated parameter", req{path: "/v1/events?type=a&type=b"}, 400, "bad_query", []string{`"type"`}, -1},
		{"get: unknown query parameter", req{path: "/v1/events/x?id=y"}, 400, "bad_query", []string{`"id"`}, -1},
		{"get: missing token", req{path: "/v1/events/x", token: "-"}, 401, auth.CodeUnauthorized, nil, -1},

		{"unknown path", req{path: "/v2/events", token: "-"}, 404, "not_found", []string{"/v2/events", "POST /v1/events"}, -1},
		{"wrong method", req{method: "DELETE", path: "/v1/events", token: "-"}, 405, "method_not_allowed", []string{"DELETE"}, -1},
		{"wrong method on an event", req{method: "PUT", path: "/v1/events/x", token: "-"}, 405, "method_not_allowed", nil, -1},
		{"wrong method on health", req{method: "POST", path: "/healthz", token: "-"}, 405, "method_not_allowed", nil, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			switch {
			case r.token == "-":
				r.token = ""
			case r.token == "" && r.method == "POST":
				r.token = e.write
			case r.token == "":
				r.token = e.read
			}
			got := e.do(t, r)
			b := wantError(t, got, tt.status, tt.code)
			for _, s := range tt.says {
				if !strings.Contains(b.Error.Message, s) {
					t.Errorf("message %q does not name %q", b.Error.Message, s)
				}
			}
			switch {
			case tt.index < 0 && b.Error.Index != nil:
				t.Errorf("index %d, want none", *b.Error.Index)
			case tt.index >= 0 && (b.Error.Index == nil || *b.Error.Index != tt.index):
				t.Errorf("index %v, want %d", b.Error.Index, tt.index)
			}
			if tt.status == http.StatusUnauthorized && got.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without a WWW-Authenticate challenge")
			}
			if tt.status == http.StatusMethodNotAllowed && got.header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
		})
	}
	if got := e.events.snapshot(); len(got) != 0 {
		t.Errorf("refused requests published %d events", len(got))
	}
	if n := e.storedCount(t); n != 0 {
		t.Errorf("refused requests left %d audit records", n)
	}
}

// A 413 closes the connection instead of reading the rest of the body,
// whether the client announced the length or sent it in chunks.
func TestOversizeClosesConnection(t *testing.T) {
	e := newEnv(t)
	h := binary("Content-Type", "application/octet-stream")
	r := e.do(t, req{method: "POST", token: e.write, header: h, body: strings.Repeat("x", 1<<20)})
	wantError(t, r, http.StatusRequestEntityTooLarge, "too_large")
	if !r.close {
		t.Error("the connection stays open after a 413")
	}

	hr, err := http.NewRequest("POST", e.srv.URL+"/v1/events", io.MultiReader(strings.NewReader(strings.Repeat("y", 1<<20))))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		hr.Header.Set(k, v)
	}
	hr.Header.Set("Authorization", "Bearer "+e.write)
	if hr.ContentLength != 0 {
		t.Fatalf("the body has a known length (%d); the case wants it chunked", hr.ContentLength)
	}
	res, err := e.srv.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	b, _ := io.ReadAll(res.Body)
	wantError(t, resp{status: res.StatusCode, header: res.Header, body: b}, http.StatusRequestEntityTooLarge, "too_large")
	if !res.Close {
		t.Error("the connection stays open after a 413 of a chunked body")
	}
	if n := e.storedCount(t); n != 0 {
		t.Errorf("oversize requests left %d audit records", n)
	}
}
