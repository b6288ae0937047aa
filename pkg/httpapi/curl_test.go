package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// curl is a client nobody here wrote: Debian's curl POSTs a binary-mode
// event the way a shell script would and GETs it back.
func TestCurl(t *testing.T) {
	bin, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("curl is not installed: %v; `make test` installs it (deploy/test-services.sh)", err)
		}
		t.Skipf("curl is not installed (%v); run `make test`, which installs it", err)
	}
	e := newEnv(t)
	curl := func(args ...string) (int, []byte) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		args = append([]string{"-sS", "--max-time", "30", "-w", "\n%{http_code}"}, args...)
		out, err := exec.CommandContext(ctx, bin, args...).Output()
		if err != nil {
			t.Fatalf("curl %s: %v", strings.Join(args, " "), err)
		}
		i := bytes.LastIndexByte(out, '\n')
		code, err := strconv.Atoi(string(out[i+1:]))
		if err != nil {
			t.Fatalf("curl %s: no status in %q", strings.Join(args, " "), out)
		}
		return code, out[:i]
	}

	data := []byte("{\"total\": 12.5,\n \"items\": [\"<book>\", \"pen\"]}\n")
	file := filepath.Join(t.TempDir(), "order.json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	code, body := curl("-X", "POST", e.srv.URL+"/v1/events",
		"-H", "Authorization: Bearer "+e.write,
		"-H", "ce-specversion: 1.0",
		"-H", "ce-id: curl-1",
		"-H", "ce-source: /shop/checkout",
		"-H", "ce-type: com.example.order.created",
		"-H", "ce-subject: order 42",
		"-H", "ce-time: 2025-06-07T08:09:10.5Z",
		"-H", "ce-region: eu",
		"-H", "Content-Type: application/json",
		"--data-binary", "@"+file)
	if code != 202 || string(body) != `{"accepted":1}`+"\n" {
		t.Fatalf("curl POST: %d %s", code, body)
	}

	code, body = curl("-H", "Authorization: Bearer "+e.read, e.srv.URL+"/v1/events?type=com.example.order.created")
	if code != 200 {
		t.Fatalf("curl GET: %d %s", code, body)
	}
	var p page
	if err := json.Unmarshal(body, &p); err != nil || len(p.Items) != 1 {
		t.Fatalf("curl GET: %v, %s", err, body)
	}
	sent{id: "curl-1", source: "/shop/checkout", typ: "com.example.order.created", subject: "order 42",
		ct: "application/json", time: "2025-06-07T08:09:10.5Z", ext: map[string]string{"region": "eu"}, data: data,
	}.check(t, decodeEvent(t, p.Items[0].Event))

	// The README's examples: a batch, a prefix query, one event by id.
	code, body = curl("-X", "POST", e.srv.URL+"/v1/events?topic=events", "-H", "Authorization: Bearer "+e.write,
		"-H", "content-type: application/cloudevents-batch+json",
		"-d", `[{"specversion":"1.0","id":"1","source":"/shop","type":"com.example.order.created","data":{"total":3}}]`)
	if code != 202 || string(body) != `{"accepted":1}`+"\n" {
		t.Fatalf("curl POST batch: %d %s", code, body)
	}
	code, body = curl("-H", "Authorization: Bearer "+e.read, e.srv.URL+"/v1/events?type=com.example.order.*&limit=50")
	if err := json.Unmarshal(body, &p); code != 200 || err != nil || len(p.Items) != 2 {
		t.Fatalf("curl GET prefix: %d %s", code, body)
	}
	code, body = curl("-H", "Authorization: Bearer "+e.read, e.srv.URL+"/v1/events/1?source=/shop")
	var versions page
	if err := json.Unmarshal(body, &versions); code != 200 || err != nil || len(versions.Items) != 1 {
		t.Fatalf("curl GET by id: %d %s", code, body)
	}
	if it := versions.Items[0]; len(it.Trail) != 1 || it.Trail[0].Kind != "received" {
		t.Errorf("curl GET by id: trail %+v", it.Trail)
	}
	if ev := decodeEvent(t, versions.Items[0].Event); ev.ID() != "1" || string(ev.Data()) != `{"total":3}` {
		t.Errorf("curl GET by id: %s", versions.Items[0].Event)
	}

	code, body = curl(e.srv.URL + "/v1/events")
	if code != 401 || !strings.Contains(string(body), `"code":"unauthorized"`) {
		t.Errorf("curl GET without a token: %d %s", code, body)
	}
}
