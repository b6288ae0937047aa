package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// appendString writes what encoding/json reads back as the same string
// (invalid UTF-8 read as U+FFFD, as encoding/json writes it).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote \" backslash \\", "\x00\x01\x1f\x7f", "\n\r\t\b\f", "héllo ☃ 𝄞",
		"\u2028\u2029", "bad \xff\xfe utf-8 \xc3", "<script>&amp;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		if !json.Valid(b) {
			t.Fatalf("%q wrote invalid JSON %s", s, b)
		}
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		std, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(std, &want)
		if got != want {
			t.Fatalf("%q: read back %q, want %q", s, got, want)
		}
	})
}

// appendEvent writes the bytes the SDK's WriteJson writes, for every
// event whose strings are UTF-8.
func FuzzAppendEvent(f *testing.F) {
	f.Add("id-1", "/src", "com.example.t", "subj", "application/json", `{"a": [1, "<b>"]}`, "ext \"v\"\n", true, int32(7), false)
	f.Add("\x01", "urn:x", "t", "", "text/plain; charset=utf-8", "héllo\u2028\x7f", "", false, int32(-1), false)
	f.Add("i", "https://example.com/a?b=c#d", "t", "s", "", "[1]", "x", true, int32(0), true)
	f.Add("i", "/s", "t", "s", "application/octet-stream", "\x00\xff", "x", true, int32(0), true)
	f.Fuzz(func(t *testing.T, id, source, typ, subject, ct, data, ext string, flag bool, n int32, b64 bool) {
		e := event.New()
		e.SetID(id)
		if err := e.Context.SetSource(source); err != nil {
			t.Skip()
		}
		e.SetType(typ)
		if subject != "" {
			e.SetSubject(subject)
		}
		if ct != "" {
			e.SetDataContentType(ct)
		}
		e.SetTime(time.Unix(1700000000, int64(n)&0x3fffffff))
		if err := e.Context.SetDataSchema("https://schemas.example.com/" + typ); err != nil {
			t.Skip()
		}
		e.SetExtension("ext", ext)
		e.SetExtension("flag", flag)
		e.SetExtension("num", n)
		if data != "" {
			e.DataEncoded, e.DataBase64 = []byte(data), b64
		}
		if e.Validate() != nil {
			t.Skip() // no store holds an invalid event
		}
		for _, s := range []string{id, source, typ, subject, ct, ext} {
			if !utf8.ValidString(s) {
				t.Skip() // the SDK writes such bytes as they are; appendEvent does not
			}
		}
		safe := jsonSafe(&e)
		var sdk bytes.Buffer
		if err := event.WriteJson(safe, &sdk); err != nil {
			t.Fatal(err)
		}
		ours, ok := appendEvent(nil, safe)
		if !ok {
			t.Fatal("appendEvent left a 1.0 event with string, bool and int32 extensions to the SDK")
		}
		if !bytes.Equal(ours, sdk.Bytes()) {
			t.Fatalf("\nours %s\nsdk  %s", ours, sdk.Bytes())
		}
		if !json.Valid(ours) {
			t.Fatalf("invalid JSON %s", ours)
		}
		back := event.New()
		if err := json.Unmarshal(ours, &back); err != nil {
			t.Fatalf("the SDK cannot read %s: %v", ours, err)
		}
		if !bytes.Equal(back.Data(), e.DataEncoded) {
			t.Fatalf("data %q came back as %q", e.DataEncoded, back.Data())
		}
	})
}

// Events with other extension types go to the SDK, and come out the same.
func TestAppendEventLeavesOthersToSDK(t *testing.T) {
	e := event.New()
	e.SetID("1")
	e.SetSource("/s")
	e.SetType("t")
	e.SetExtension("when", time.Unix(0, 0))
	if _, ok := appendEvent(nil, &e); ok {
		t.Fatal("appendEvent wrote a timestamp extension itself")
	}
	var b bytes.Buffer
	bw := bufio.NewWriter(&b)
	pw := pageWriter{w: bw}
	pw.item(0, &sinks.Item{Event: e, Trail: []sinks.Entry{{Log: "l", Seq: 1, Time: time.Unix(1, 0), Kind: sinks.KindReceived, Transport: "mem"}}})
	_ = bw.Flush()
	var sdk bytes.Buffer
	_ = event.WriteJson(&e, &sdk)
	want := `{"event":` + sdk.String() + `,"digest":"sha256:` + strings.Repeat("0", 64) + `","conflict":false,` +
		`"trail":[{"log":"l","seq":1,"time":"1970-01-01T00:00:01Z","kind":"received","transport":"mem"}]}`
	if b.String() != want {
		t.Errorf("\ngot  %s\nwant %s", b.String(), want)
	}
}

// validJSON agrees with encoding/json.Valid.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{``, ` `, `0`, `-0`, `01`, `-`, `1.`, `1.5e`, `1.5E+3`, `-12.0e-07`, `"a\u00e9\n"`, `"\x"`, `"\u12g4"`,
		"\"\x01\"", `true`, `tru`, `nullx`, `{}`, `[]`, ` { "a" : [ 1 , { } , [ ] , "b" ] } `, `{"a":1,}`, `[1,]`, `{"a"}`,
		`{"a":1 "b":2}`, `[1 2]`, `{1:2}`, `]`, `[`, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
		`{"a":{"b":{"c":[{"d":null}]}}}`, `"unterminated`, `1 2`, "\ttrue\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		if got, want := validJSON(d), json.Valid(d); got != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json says %v", d, got, want)
		}
	})
}

// jsonSafe keeps data the JSON format carries exactly and moves the rest
// to data_base64.
func TestJSONSafe(t *testing.T) {
	tests := []struct {
		ct     string
		data   string
		base64 bool
	}{
		{"application/json", `{"a": 1}`, false},
		{"", `[1,2]`, false},
		{"application/json; charset=utf-8", `"s"`, false},
		{"Application/JSON", `{}`, true},             // the SDK would not read it back
		{"application/json", `{"a":`, true},          // not JSON
		{"application/json", "{}\n", true},           // whitespace a reader drops
		{"application/json", " 1", true},             // likewise
		{"application/json", "\"\xff\"", true},       // not UTF-8
		{"application/vnd.x+json", `{"a":1}`, false}, // written as a string by the SDK: fine
		{"text/plain", "line\n", false},
		{"text/plain", "\xff", true},
		{"application/octet-stream", "\x00\x01", false}, // UTF-8 after all
	}
	for _, tt := range tests {
		e := event.New()
		e.SetID("1")
		e.SetSource("/s")
		e.SetType("t")
		if tt.ct != "" {
			e.SetDataContentType(tt.ct)
		}
		e.DataEncoded = []byte(tt.data)
		got := jsonSafe(&e)
		if got.DataBase64 != tt.base64 {
			t.Errorf("%q %q: base64 %v, want %v", tt.ct, tt.data, got.DataBase64, tt.base64)
		}
		if e.DataBase64 {
			t.Errorf("%q %q: the original was changed", tt.ct, tt.data)
		}
		var b bytes.Buffer
		if err := event.WriteJson(got, &b); err != nil || !json.Valid(b.Bytes()) {
			t.Fatalf("%q %q: %v %s", tt.ct, tt.data, err, b.Bytes())
		}
		back := event.New()
		if err := json.Unmarshal(b.Bytes(), &back); err != nil {
			t.Fatal(err)
		}
		if string(back.Data()) != tt.data {
			t.Errorf("%q %q: came back as %q from %s", tt.ct, tt.data, back.Data(), b.Bytes())
		}
	}
	e := event.New()
	e.DataEncoded = []byte{}
	if got := jsonSafe(&e); got.DataEncoded != nil {
		t.Error("empty data is kept; the SDK would write a member without a value")
	}
}

// Entries are written with every field that is set and none that is
// not, and read back as they were.
func TestAppendEntry(t *testing.T) {
	d, err := sinks.ParseDigest("sha256:" + strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	full := sinks.Entry{Log: "host-1", Seq: 42, Time: time.Date(2026, 5, 1, 10, 0, 0, 5e6, time.FixedZone("x", 3600)),
		Kind: sinks.KindDeadLettered, Source: "/s\"q\"", ID: "id\n1", Digest: d, Transport: "kafka", Topic: "orders",
		Partition: 3, Offset: -7, Request: "r", Principal: "kafka:orders", Route: "billing", Destination: "ledger",
		Attempts: 5, Error: "HTTP 503 \xff", Replay: "job-1"}
	b := appendEntry(nil, &full, true)
	var got JSONEntry
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	want := JSONEntry{Log: "host-1", Seq: 42, Time: "2026-05-01T09:00:00.005Z", Kind: "deadlettered", Source: "/s\"q\"", ID: "id\n1",
		Digest: d.String(), Transport: "kafka", Topic: "orders", Partition: 3, Offset: -7, Request: "r", Principal: "kafka:orders",
		Route: "billing", Destination: "ledger", Attempts: 5, Error: "HTTP 503 \ufffd", Replay: "job-1"}
	if got != want {
		t.Errorf("read back\n%+v\nwant\n%+v", got, want)
	}
	if b := appendEntry(nil, &full, false); bytes.Contains(b, []byte(`"source"`)) || bytes.Contains(b, []byte(`"digest"`)) {
		t.Errorf("a trail entry names its version: %s", b)
	}
	bare := sinks.Entry{Log: "l", Seq: 1, Time: time.Unix(0, 0), Kind: sinks.KindFiltered}
	if b, want := appendEntry(nil, &bare, false), `{"log":"l","seq":1,"time":"1970-01-01T00:00:00Z","kind":"filtered"}`; string(b) != want {
		t.Errorf("bare entry %s, want %s", b, want)
	}
}

// BenchmarkPageEncode streams a page of 1,000 versions with two entries
// each as GET /v1/events writes it.
func BenchmarkPageEncode(b *testing.B) {
	items := BenchItems(1000, time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC))
	bw := bufio.NewWriterSize(io.Discard, 32<<10)
	pw := pageWriter{w: bw}
	b.ReportAllocs()
	for b.Loop() {
		pw.page(items, "eyJ0IjoxfQ")
		_ = bw.Flush()
	}
	b.ReportMetric(float64(b.N*len(items))/b.Elapsed().Seconds(), "versions/s")
}

// BenchmarkPageEncodeStdlib writes the same page with encoding/json, for
// comparison.
func BenchmarkPageEncodeStdlib(b *testing.B) {
	type item struct {
		Event    *event.Event `json:"event"`
		Digest   string       `json:"digest"`
		Conflict bool         `json:"conflict"`
		Trail    []JSONEntry  `json:"trail"`
	}
	type page struct {
		Items []item `json:"items"`
		Next  string `json:"next,omitempty"`
	}
	items := BenchItems(1000, time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC))
	b.ReportAllocs()
	for b.Loop() {
		out := page{Items: make([]item, len(items)), Next: "eyJ0IjoxfQ"}
		for i := range items {
			it := &items[i]
			trail := make([]JSONEntry, len(it.Trail))
			for k, en := range it.Trail {
				trail[k] = JSONEntry{Log: en.Log, Seq: en.Seq, Time: en.Time.UTC().Format(time.RFC3339Nano), Kind: en.Kind,
					Transport: en.Transport, Topic: en.Topic, Partition: en.Partition, Offset: en.Offset, Request: en.Request,
					Principal: en.Principal, Route: en.Route, Destination: en.Destination, Attempts: en.Attempts, Error: en.Error, Replay: en.Replay}
			}
			out.Items[i] = item{Event: &it.Event, Digest: it.Digest.String(), Conflict: it.Conflict, Trail: trail}
		}
		if err := json.NewEncoder(io.Discard).Encode(out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(items))/b.Elapsed().Seconds(), "versions/s")
}
