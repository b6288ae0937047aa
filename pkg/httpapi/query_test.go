package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// ledgerBase is the time of the query tests' entries.
var ledgerBase = time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)

// ledgerEvent is an event of the query tests.
func ledgerEvent(source, id, data string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource(source)
	e.SetType("com.example.ledger")
	e.SetTime(ledgerBase)
	_ = e.SetData("application/json", []byte(data))
	return e
}

// appendRecords appends recs to the env's store.
func (e *env) appendRecords(t *testing.T, recs ...sinks.Record) sinks.AppendResult {
	t.Helper()
	res, err := e.store.Append(context.Background(), recs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// kinds lists the kinds of a trail.
func kinds(trail []httpapi.JSONEntry) string {
	k := make([]string, len(trail))
	for i, en := range trail {
		k[i] = en.Kind
	}
	return strings.Join(k, ",")
}

// An item is one version: the event, its digest, whether it conflicts
// with an earlier version, and its whole trail.
func TestQueryItemsHaveTrails(t *testing.T) {
	e := newEnv(t)
	orig := ledgerEvent("/shop", "o-1", `{"n":1}`)
	other := ledgerEvent("/shop", "o-1", `{"n":2}`)
	e.appendRecords(t, sinks.Record{Event: orig, Entries: []sinks.Entry{
		{Time: ledgerBase.Add(time.Second), Kind: sinks.KindReceived, Transport: "kafka", Topic: "orders", Partition: 2, Offset: 77, Principal: "kafka:orders"},
		{Time: ledgerBase.Add(2 * time.Second), Kind: sinks.KindDeadLettered, Transport: "kafka", Topic: "orders", Partition: 2, Offset: 77,
			Route: "billing", Destination: "ledger", Attempts: 5, Error: "HTTP 503"},
		{Time: ledgerBase.Add(2 * time.Second), Kind: sinks.KindDelivered, Transport: "kafka", Topic: "orders", Partition: 2, Offset: 77,
			Route: "billing", Destination: "archive", Attempts: 1},
	}})
	res := e.appendRecords(t, sinks.Record{Event: other, Entries: []sinks.Entry{
		{Time: ledgerBase.Add(3 * time.Second), Kind: sinks.KindReceived, Transport: "http", Request: "req-1", Principal: "svc-test"},
	}})
	if len(res.Conflicts) != 1 {
		t.Fatalf("append of the other version: %+v, want a conflict", res)
	}
	p := e.query(t, "/v1/events?source=/shop")
	if len(p.Items) != 2 || p.Next != "" {
		t.Fatalf("%d items, next %q; want the two versions", len(p.Items), p.Next)
	}
	want := map[string]struct {
		conflict bool
		kinds    string
	}{`{"n":1}`: {false, "received,deadlettered,delivered"}, `{"n":2}`: {true, "received"}}
	for _, it := range p.Items {
		ev := decodeEvent(t, it.Event)
		w, ok := want[string(ev.Data())]
		d, err := sinks.DigestEvent(&ev)
		if !ok || err != nil || it.Digest != d.String() || it.Conflict != w.conflict || kinds(it.Trail) != w.kinds {
			t.Errorf("item %s digest %s conflict %v trail %s; want digest %s, %+v", it.Event, it.Digest, it.Conflict, kinds(it.Trail), d, w)
		}
	}
	first := p.Items[0]
	if len(first.Trail) != 3 {
		first = p.Items[1]
	}
	dl := first.Trail[1]
	if dl.Log == "" || dl.Seq != 2 || dl.Time != "2026-02-03T04:05:08Z" || dl.Route != "billing" || dl.Destination != "ledger" ||
		dl.Attempts != 5 || dl.Error != "HTTP 503" || dl.Partition != 2 || dl.Offset != 77 || dl.Source != "" {
		t.Errorf("dead-letter entry %+v", dl)
	}

	// Filters on entries: one entry must match all of them.
	for _, c := range []struct {
		query string
		n     int
	}{
		{"outcome=deadlettered", 1},
		{"outcome=deadlettered&destination=ledger", 1},
		{"outcome=deadlettered&destination=archive", 0},
		{"route=billing&destination=archive", 1},
		{"outcome=received&received_from=2026-02-03T04:05:08Z", 1},
		{"outcome=received&received_to=2026-02-03T04:05:08Z", 1},
		{"received_from=2026-02-03T04:05:10Z", 0},
		{"outcome=replayed", 0},
	} {
		if p := e.query(t, "/v1/events?"+c.query); len(p.Items) != c.n {
			t.Errorf("%s: %d items, want %d", c.query, len(p.Items), c.n)
		}
	}
	// An unknown kind is refused, naming the parameter and the kinds.
	b := wantError(t, e.do(t, req{path: "/v1/events?outcome=accepted", token: e.read}), http.StatusBadRequest, httpapi.CodeBadQuery)
	for _, s := range append([]string{`"outcome"`, `"accepted"`}, sinks.Kinds...) {
		if !strings.Contains(b.Error.Message, s) {
			t.Errorf("message %q lacks %s", b.Error.Message, s)
		}
	}
	b = wantError(t, e.do(t, req{path: "/v1/events?received_from=2026-02-03T05:00:00Z&received_to=2026-02-03T04:00:00Z", token: e.read}),
		http.StatusBadRequest, httpapi.CodeBadQuery)
	if !strings.Contains(b.Error.Message, `"received_to"`) {
		t.Errorf("inverted received range: %s", b.Error.Message)
	}
}

// Paging with next returns every version once, in order, and omits next
// on the last page.
func TestQueryPaging(t *testing.T) {
	e := newEnv(t)
	const n = 25
	var elems []string
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range n {
		elems = append(elems, fmt.Sprintf(`{"specversion":"1.0","id":"p-%02d","source":"/paging","type":"com.example.page","time":%q}`,
			i, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339)))
	}
	e.post(t, req{header: map[string]string{"Content-Type": "application/cloudevents-batch+json"}, body: "[" + strings.Join(elems, ",") + "]"}, n)
	for _, order := range []string{"asc", "desc"} {
		var ids []string
		path := "/v1/events?type=com.example.page&limit=10&order=" + order
		pages := 0
		for cursor := ""; ; {
			p := e.query(t, path+cursor)
			pages++
			for _, it := range p.Items {
				ids = append(ids, decodeEvent(t, it.Event).ID())
				if len(it.Trail) == 0 {
					t.Errorf("%s: item without a trail", order)
				}
			}
			if p.Next == "" {
				break
			}
			if pages > n {
				t.Fatal("paging does not end")
			}
			cursor = "&cursor=" + p.Next
		}
		if pages != 3 || len(ids) != n {
			t.Fatalf("%s: %d pages, %d events, want 3 and %d", order, pages, len(ids), n)
		}
		for i, id := range ids {
			k := i
			if order == "desc" {
				k = n - 1 - i
			}
			if want := fmt.Sprintf("p-%02d", k); id != want {
				t.Fatalf("%s: event %d is %s, want %s", order, i, id, want)
			}
		}
	}
	// An empty answer is a page too.
	if p := e.query(t, "/v1/events?type=com.example.none"); len(p.Items) != 0 || p.Next != "" {
		t.Errorf("empty query: %+v", p)
	}
}

// GET /v1/events/{id} answers every version of the event with its trail;
// it finds an id used by one source, asks for ?source= when several use
// it, and says 404 for ids nobody used.
func TestGetEventVersions(t *testing.T) {
	e := newEnv(t)
	post := func(id, source, data string) {
		e.post(t, req{header: map[string]string{"ce-specversion": "1.0", "ce-id": id, "ce-source": source, "ce-type": "com.example.get",
			"Content-Type": "application/json"}, body: data}, 1)
	}
	post("solo", "/a", `{"from":"/a"}`)
	post("dup", "/a", `{"from":"/a"}`)
	post("dup", "/b", `{"from":"/b"}`)
	post("a/b c", "/a", `{}`)
	post("twice", "/a", `{"v":1}`)
	post("twice", "/a", `{"v":1}`)
	post("twice", "/a", `{"v":2}`)

	for _, c := range []struct {
		path, source, id string
		versions         int
	}{
		{"/v1/events/solo", "/a", "solo", 1},
		{"/v1/events/a%2Fb%20c", "/a", "a/b c", 1},
		{"/v1/events/dup?source=/b", "/b", "dup", 1},
		{"/v1/events/twice", "/a", "twice", 2},
	} {
		p := e.query(t, c.path)
		if len(p.Items) != c.versions || p.Next != "" {
			t.Fatalf("GET %s: %d versions, want %d", c.path, len(p.Items), c.versions)
		}
		for _, it := range p.Items {
			if ev := decodeEvent(t, it.Event); ev.Source() != c.source || ev.ID() != c.id || len(it.Trail) == 0 {
				t.Errorf("GET %s: %s %s with %d entries", c.path, ev.Source(), ev.ID(), len(it.Trail))
			}
		}
	}
	// Two posts of the same event are two receptions of one version; the
	// other content is a second version, flagged.
	p := e.query(t, "/v1/events/twice?source=/a")
	if len(p.Items) != 2 || p.Items[0].Conflict || !p.Items[1].Conflict || kinds(p.Items[0].Trail) != "received,received" ||
		kinds(p.Items[1].Trail) != "received" || string(decodeEvent(t, p.Items[1].Event).Data()) != `{"v":2}` {
		t.Errorf("twice: %+v", p.Items)
	}

	b := wantError(t, e.do(t, req{path: "/v1/events/dup", token: e.read}), http.StatusConflict, "ambiguous_id")
	for _, s := range []string{`"/a"`, `"/b"`, "?source="} {
		if !strings.Contains(b.Error.Message, s) {
			t.Errorf("ambiguous_id message %q lacks %s", b.Error.Message, s)
		}
	}
	wantError(t, e.do(t, req{path: "/v1/events/nope", token: e.read}), http.StatusNotFound, "not_found")
	wantError(t, e.do(t, req{path: "/v1/events/solo?source=/zzz", token: e.read}), http.StatusNotFound, "not_found")
	wantError(t, e.do(t, req{path: "/v1/events/solo?source=", token: e.read}), http.StatusBadRequest, "bad_query")
}

// ledgerPage is the answer of GET /v1/ledger.
type ledgerPage struct {
	Log          string              `json:"log"`
	Entries      []httpapi.JSONEntry `json:"entries"`
	NextAfterSeq *uint64             `json:"next_after_seq"`
}

// GET /v1/ledger pages through one log's entries in seq order, each with
// its version; GET /v1/ledger/logs lists the logs.
func TestLedgerPages(t *testing.T) {
	e := newEnv(t)
	const n = 7
	var recs []sinks.Record
	for i := range n {
		recs = append(recs, sinks.Record{Event: ledgerEvent("/ledger", fmt.Sprintf("l-%d", i), "{}"), Entries: []sinks.Entry{
			{Time: ledgerBase.Add(time.Duration(i) * time.Second), Kind: sinks.KindReceived, Transport: "mem", Topic: "t", Offset: int64(i)},
		}})
	}
	e.appendRecords(t, recs...)
	r := e.do(t, req{path: "/v1/ledger/logs", token: e.read})
	var logs struct {
		Logs []struct {
			Name string `json:"name"`
			Size uint64 `json:"size"`
		} `json:"logs"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &logs) != nil || len(logs.Logs) != 1 || logs.Logs[0].Size != n {
		t.Fatalf("GET /v1/ledger/logs: %d %s", r.status, r.body)
	}
	log := logs.Logs[0].Name

	get := func(path string) ledgerPage {
		t.Helper()
		r := e.do(t, req{path: path, token: e.read})
		var p ledgerPage
		dec := json.NewDecoder(bytes.NewReader(r.body))
		dec.DisallowUnknownFields()
		if r.status != http.StatusOK || dec.Decode(&p) != nil || p.NextAfterSeq == nil || p.Log != log {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		return p
	}
	var seqs []uint64
	after := uint64(0)
	for pages := 0; ; pages++ {
		p := get(fmt.Sprintf("/v1/ledger?log=%s&after_seq=%d&limit=3", log, after))
		for _, en := range p.Entries {
			seqs = append(seqs, en.Seq)
			want := fmt.Sprintf("l-%d", en.Seq-1)
			if en.Log != log || en.Source != "/ledger" || en.ID != want || !strings.HasPrefix(en.Digest, "sha256:") ||
				en.Kind != sinks.KindReceived || en.Offset != int64(en.Seq-1) {
				t.Errorf("entry %+v, want the reception of %s", en, want)
			}
		}
		if len(p.Entries) < 3 {
			if *p.NextAfterSeq != after+uint64(len(p.Entries)) || pages != 2 {
				t.Errorf("last page after %d: next_after_seq %d, page %d", after, *p.NextAfterSeq, pages)
			}
			break
		}
		after = *p.NextAfterSeq
	}
	if fmt.Sprint(seqs) != "[1 2 3 4 5 6 7]" {
		t.Errorf("seqs %v", seqs)
	}
	if p := get("/v1/ledger?log=" + log + "&after_seq=100"); len(p.Entries) != 0 || *p.NextAfterSeq != 100 {
		t.Errorf("past the end: %+v", p)
	}

	for _, c := range []struct {
		query, param string
	}{
		{"", `"log"`},
		{"log=" + log + "&after_seq=-1", `"after_seq"`},
		{"log=" + log + "&after_seq=x", `"after_seq"`},
		{"log=" + log + "&limit=0", `"limit"`},
		{"log=" + log + "&limit=10001", `"limit"`},
		{"log=" + log + "&log=" + log, `"log"`},
		{"log=a%20b", `"log"`},
		{"log=" + log + "&cursor=x", `"cursor"`},
	} {
		b := wantError(t, e.do(t, req{path: "/v1/ledger?" + c.query, token: e.read}), http.StatusBadRequest, httpapi.CodeBadQuery)
		if !strings.Contains(b.Error.Message, c.param) {
			t.Errorf("%s: message %q does not name %s", c.query, b.Error.Message, c.param)
		}
	}
	wantError(t, e.do(t, req{path: "/v1/ledger/logs?x=1", token: e.read}), http.StatusBadRequest, httpapi.CodeBadQuery)
	b := wantError(t, e.do(t, req{path: "/v1/ledger?log=nobody", token: e.read}), http.StatusNotFound, httpapi.CodeNotFound)
	if !strings.Contains(b.Error.Message, `"nobody"`) {
		t.Errorf("unknown log: %s", b.Error.Message)
	}
	for _, path := range []string{"/v1/ledger?log=" + log, "/v1/ledger/logs"} {
		wantError(t, e.do(t, req{path: path, token: e.write}), http.StatusForbidden, "insufficient_scope")
		wantError(t, e.do(t, req{path: path}), http.StatusUnauthorized, "unauthorized")
		r := e.do(t, req{method: http.MethodPost, path: path, token: e.read})
		wantError(t, r, http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed)
	}
}
