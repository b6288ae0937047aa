package cehttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// curl is a client nobody here wrote: Debian's curl POSTs events the way
// a shell script would.

func curlPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("curl")
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("curl is not installed: %v; `make test` installs it (deploy/test-services.sh)", err)
	}
	t.Skipf("curl is not installed (%v); run `make test`, which installs it", err)
	return ""
}

// ingest is a server that decodes what it is sent, answers 202 or the
// *Error as JSON, and hands the events to the test.
func ingest(t *testing.T) (*httptest.Server, <-chan []event.Event) {
	t.Helper()
	got := make(chan []event.Event, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		evs, err := Decode(r, maxBody)
		var de *Error
		if errors.As(err, &de) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(de.Status)
			_ = json.NewEncoder(w).Encode(de)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		got <- evs
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// curl runs curl with args and returns the status code and body.
func curl(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args = append([]string{"-sS", "--max-time", "30", "-w", "\n%{http_code}"}, args...)
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", strings.Join(args, " "), err)
	}
	s := strings.TrimRight(string(out), "\n")
	i := strings.LastIndexByte(s, '\n')
	var code int
	for _, c := range s[i+1:] {
		code = code*10 + int(c-'0')
	}
	return code, s[:max(i, 0)]
}

func TestCurlBinaryMode(t *testing.T) {
	bin := curlPath(t)
	srv, got := ingest(t)
	data := []byte{0, 1, 2, 0x7f, 0x80, 0xff, '\n', 'x'}
	file := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	code, body := curl(t, bin, "-X", "POST", srv.URL+"/v1/events",
		"-H", "ce-specversion: 1.0",
		"-H", "ce-id: curl-1",
		"-H", "ce-source: /scripts/nightly",
		"-H", "ce-type: com.example.backup.done",
		"-H", "ce-subject: Euro%20%E2%82%AC",
		"-H", "ce-time: 2024-05-01T12:00:00Z",
		"-H", "ce-host: db1",
		"-H", "Content-Type: application/octet-stream",
		"--data-binary", "@"+file)
	if code != http.StatusAccepted {
		t.Fatalf("curl got %d: %s", code, body)
	}
	e := (<-got)[0]
	if e.ID() != "curl-1" || e.Source() != "/scripts/nightly" || e.Type() != "com.example.backup.done" ||
		e.Subject() != "Euro €" || e.DataContentType() != "application/octet-stream" || e.Extensions()["host"] != "db1" ||
		!e.Time().Equal(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("decoded %v", e)
	}
	if !bytes.Equal(e.Data(), data) {
		t.Errorf("data %q, want %q", e.Data(), data)
	}
}

func TestCurlBatch(t *testing.T) {
	bin := curlPath(t)
	srv, got := ingest(t)
	batch := `[
	  {"specversion":"1.0","id":"b1","source":"/curl","type":"t","data":{"n":1}},
	  {"specversion":"1.0","id":"b2","source":"/curl","type":"t","datacontenttype":"text/plain","data":"two"}
	]`
	code, body := curl(t, bin, "-X", "POST", srv.URL+"/v1/events",
		"-H", "Content-Type: application/cloudevents-batch+json", "--data-binary", batch)
	if code != http.StatusAccepted {
		t.Fatalf("curl got %d: %s", code, body)
	}
	evs := <-got
	if len(evs) != 2 || evs[0].ID() != "b1" || string(evs[0].Data()) != `{"n":1}` || string(evs[1].Data()) != "two" {
		t.Fatalf("decoded %v", evs)
	}

	// A bad element: 400, the JSON error names it, nothing is handed on.
	bad := strings.Replace(batch, `"id":"b2",`, ``, 1)
	code, body = curl(t, bin, "-X", "POST", srv.URL+"/v1/events",
		"-H", "Content-Type: application/cloudevents-batch+json", "--data-binary", bad)
	var je struct {
		Code, Message, Attribute string
		Index                    *int
	}
	if err := json.Unmarshal([]byte(body), &je); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if code != http.StatusBadRequest || je.Code != CodeBadBatchElement || je.Index == nil || *je.Index != 1 || je.Attribute != "id" {
		t.Fatalf("curl got %d %+v, want 400 bad_batch_element at index 1 naming id", code, je)
	}
	select {
	case evs := <-got:
		t.Fatalf("a refused batch handed on %d events", len(evs))
	default:
	}
}
