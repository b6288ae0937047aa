package router_test

import (
	"encoding/json"
	"fmt"
	"log"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/auditbus/auditbus/pkg/router"
)

func mustFilter(t testing.TB, text string) router.Filter {
	t.Helper()
	f, err := router.ParseFilter([]byte(text))
	if err != nil {
		t.Fatalf("ParseFilter(%q): %v", text, err)
	}
	return f
}

// order is the event most cases filter: every context attribute set, and
// extensions of each CloudEvents type.
func order(t testing.TB) *event.Event {
	t.Helper()
	e := event.New()
	e.SetID("A-1")
	e.SetSource("https://shop.example.com/orders?region=eu")
	e.SetType("com.example.order.created")
	e.SetSubject("orders/42.priority")
	e.SetDataSchema("https://schemas.example.com/order.json")
	e.SetTime(time.Date(2024, 5, 1, 14, 30, 0, 123000000, time.FixedZone("CEST", 2*3600)))
	if err := e.SetData("application/json", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{
		"region": "eu", "priority": 42, "express": true, "blob": []byte{1, 2, 3},
		"callback": &url.URL{Scheme: "https", Host: "cb.example.com", Path: "/x"},
		"due":      time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC),
	} {
		e.SetExtension(k, v)
	}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	return &e
}

func TestFilterMatch(t *testing.T) {
	tests := []struct {
		name, filter string
		want         bool
	}{
		{"empty filter", ``, true},
		{"empty mapping", `{}`, true},
		{"empty list", `[]`, true},
		{"null", `null`, true},

		{"exact type", `{exact: {type: com.example.order.created}}`, true},
		{"exact is not prefix", `{exact: {type: com.example.order}}`, false},
		{"exact is case-sensitive", `{exact: {type: com.example.Order.created}}`, false},
		{"exact id", `{exact: {id: A-1}}`, true},
		{"exact specversion", `{exact: {specversion: "1.0"}}`, true},
		{"exact datacontenttype", `{exact: {datacontenttype: application/json}}`, true},
		{"exact source with query", `{exact: {source: "https://shop.example.com/orders?region=eu"}}`, true},
		{"prefix source", `{prefix: {source: "https://shop.example.com/"}}`, true},
		{"suffix dataschema", `{suffix: {dataschema: /order.json}}`, true},
		{"exact subject", `{exact: {subject: orders/42.priority}}`, true},
		{"every key must match", `{exact: {type: com.example.order.created, subject: orders/43}}`, false},
		{"every key matches", `{exact: {type: com.example.order.created, subject: orders/42.priority}}`, true},

		{"prefix type", `{prefix: {type: com.example.}}`, true},
		{"prefix equal to value", `{prefix: {type: com.example.order.created}}`, true},
		{"prefix longer than value", `{prefix: {type: com.example.order.created.v2}}`, false},
		{"prefix case-sensitive", `{prefix: {type: COM.}}`, false},
		{"suffix type", `{suffix: {type: .created}}`, true},
		{"suffix mismatch", `{suffix: {type: .deleted}}`, false},

		{"time in UTC RFC 3339", `{exact: {time: "2024-05-01T12:30:00.123Z"}}`, true},
		{"time in its own zone does not match", `{exact: {time: "2024-05-01T14:30:00.123+02:00"}}`, false},
		{"time prefix by day", `{prefix: {time: "2024-05-01T"}}`, true},
		{"time suffix", `{suffix: {time: ".123Z"}}`, true},

		{"string extension", `{exact: {region: eu}}`, true},
		{"integer extension", `{exact: {priority: "42"}}`, true},
		{"integer extension prefix", `{prefix: {priority: "4"}}`, true},
		{"boolean extension", `{exact: {express: "true"}}`, true},
		{"binary extension in base64", `{exact: {blob: AQID}}`, true},
		{"URI extension", `{exact: {callback: "https://cb.example.com/x"}}`, true},
		{"timestamp extension", `{exact: {due: "2024-05-02T00:00:00Z"}}`, true},
		{"extension value is case-sensitive", `{exact: {region: EU}}`, false},

		{"absent extension: exact", `{exact: {tenant: acme}}`, false},
		{"absent extension: prefix", `{prefix: {tenant: a}}`, false},
		{"absent extension: suffix", `{suffix: {tenant: e}}`, false},
		{"not of absent extension", `{not: {exact: {tenant: acme}}}`, true},
		{"one absent attribute fails the expression", `{exact: {type: com.example.order.created, tenant: acme}}`, false},

		{"all true", `{all: [{prefix: {type: com.example.}}, {exact: {region: eu}}]}`, true},
		{"all with one false", `{all: [{prefix: {type: com.example.}}, {exact: {region: us}}]}`, false},
		{"any with one true", `{any: [{exact: {region: us}}, {exact: {region: eu}}]}`, true},
		{"any all false", `{any: [{exact: {region: us}}, {exact: {region: ap}}]}`, false},
		{"not true", `{not: {exact: {region: eu}}}`, false},
		{"not false", `{not: {exact: {region: us}}}`, true},
		{"not not", `{not: {not: {exact: {region: eu}}}}`, true},
		{"nested", routeFilter, true},
		{"top-level list means all", `[{prefix: {type: com.example.}}, {exact: {region: us}}]`, false},
		{"top-level list of one", `[{exact: {region: eu}}]`, true},
		{"JSON", `{"all": [{"exact": {"type": "com.example.order.created"}}, {"not": {"suffix": {"subject": ".low"}}}]}`, true},
		{"YAML anchors", `
any:
  - &eu {exact: {region: eu}}
  - not: *eu
`, true},
	}
	e := order(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFilter(t, tt.filter)
			if got := f.Match(e); got != tt.want {
				t.Errorf("%s.Match = %v, want %v", f, got, tt.want)
			}
		})
	}
}

func TestFilterAbsentContextAttributes(t *testing.T) {
	e := event.New()
	e.SetID("1")
	e.SetSource("/s")
	e.SetType("t")
	for _, attr := range []string{"subject", "time", "dataschema", "datacontenttype"} {
		for _, d := range []string{"exact", "prefix", "suffix"} {
			f := mustFilter(t, fmt.Sprintf("{%s: {%s: x}}", d, attr))
			if f.Match(&e) {
				t.Errorf("%s matched an event without %s", f, attr)
			}
			if n := mustFilter(t, fmt.Sprintf("{not: {%s: {%s: x}}}", d, attr)); !n.Match(&e) {
				t.Errorf("%s did not match an event without %s", n, attr)
			}
		}
	}
}

func TestFilterSpecVersion03(t *testing.T) {
	e := event.New(event.CloudEventsVersionV03)
	e.SetID("1")
	e.SetSource("urn:example:shop")
	e.SetType("com.example.order.created")
	e.SetDataSchema("https://schemas.example.com/order.json")
	e.SetExtension("region", "eu")
	for _, text := range []string{
		`{exact: {specversion: "0.3"}}`,
		`{exact: {source: "urn:example:shop"}}`,
		`{suffix: {dataschema: /order.json}}`,
		`{exact: {region: eu}}`,
	} {
		if f := mustFilter(t, text); !f.Match(&e) {
			t.Errorf("%s did not match a 0.3 event", f)
		}
	}
}

func TestFilterNilEvent(t *testing.T) {
	if !(router.Filter{}).Match(nil) {
		t.Error("the zero Filter must match a nil event")
	}
	if mustFilter(t, `{not: {exact: {type: x}}}`).Match(nil) || mustFilter(t, `{exact: {type: x}}`).Match(&event.Event{}) {
		t.Error("a non-empty filter matched an event without attributes")
	}
}

// TestFilterStringForms checks that a filter sees each extension type in
// the SDK's canonical string form.
func TestFilterStringForms(t *testing.T) {
	values := []any{
		"plain", int32(-7), 2147483647, true, false, []byte("hello, world"), []byte{},
		&url.URL{Scheme: "https", Host: "h.example.com:8443", Path: "/a b/ü", RawQuery: "q=1", Fragment: "f g"},
		types.URIRef{URL: url.URL{Path: "relative/path"}},
		time.Date(2024, 1, 2, 3, 4, 5, 600, time.FixedZone("X", -5*3600)),
	}
	for _, v := range values {
		e := event.New()
		e.SetID("1")
		e.SetSource("/s")
		e.SetType("t")
		e.SetExtension("ext", v)
		if err := e.Validate(); err != nil {
			t.Fatalf("SetExtension(%v): %v", v, err)
		}
		want, err := types.Format(e.Extensions()["ext"])
		if err != nil {
			t.Fatal(err)
		}
		if want == "" {
			continue // an empty value can never match
		}
		q, _ := json.Marshal(want)
		if f := mustFilter(t, fmt.Sprintf(`{"exact": {"ext": %s}}`, q)); !f.Match(&e) {
			t.Errorf("%T %v: %s did not match", v, v, f)
		}
	}
}

// sourceForms are URI references whose string form the filter must
// reproduce exactly.
var sourceForms = []string{
	"/orders", "orders", "urn:example:orders", "mailto:ops@example.com",
	"https://example.com", "https://example.com/", "https://example.com/a/b?x=1&y=2#frag",
	"https://user:pw@example.com/p", "http://[::1]:8080/p", "https://example.com/a%2Fb",
	"https://example.com/a b", "https://exa%41mple.com/", "//example.com/net-path",
	"?only=query", "#only-fragment", "./a:b", "a/b:c", "https://example.com/%E2%82%AC",
	"https://example.com?", "file:///tmp/x", "https://example.com/#a%20b",
}

func TestFilterSourceForms(t *testing.T) {
	for _, s := range sourceForms {
		checkSource(t, s)
	}
}

func FuzzFilterSourceForm(f *testing.F) {
	for _, s := range sourceForms {
		f.Add(s)
	}
	f.Fuzz(checkSource)
}

func checkSource(t *testing.T, s string) {
	ref := types.ParseURIRef(s)
	if ref == nil {
		return
	}
	want := ref.String()
	if want == "" || !utf8.ValidString(want) {
		return // a filter value is non-empty UTF-8 text
	}
	e := event.New()
	e.SetID("1")
	e.SetType("t")
	e.Context.(*event.EventContextV1).Source = *ref
	q, _ := json.Marshal(want)
	if f := mustFilter(t, fmt.Sprintf(`{"exact": {"source": %s}}`, q)); !f.Match(&e) {
		t.Errorf("source %q (string form %q): %s did not match", s, want, f)
	}
}

func TestFilterString(t *testing.T) {
	for text, want := range map[string]string{
		``:                               `{}`,
		`{exact: {type: a, source: /b}}`: `{"exact":{"source":"/b","type":"a"}}`,
		`[{prefix: {type: a}}, {not: {suffix: {subject: z}}}]`: `{"all":[{"prefix":{"type":"a"}},{"not":{"suffix":{"subject":"z"}}}]}`,
	} {
		if got := mustFilter(t, text).String(); got != want {
			t.Errorf("ParseFilter(%q).String() = %s, want %s", text, got, want)
		}
	}
	if !mustFilter(t, `{}`).IsZero() || mustFilter(t, `{exact: {type: a}}`).IsZero() {
		t.Error("IsZero is wrong")
	}
}

func TestParseFilterErrors(t *testing.T) {
	tests := []struct{ filter, want string }{
		{`{regex: {type: x}}`, `filter: unknown dialect "regex" (accepted: exact, prefix, suffix, all, any, not) (line 1)`},
		{`{sql: "type = 'x'"}`, `filter: the sql dialect is not supported (accepted: exact, prefix, suffix, all, any, not) (line 1)`},
		{`{all: []}`, `filter.all: needs at least one filter expression (line 1)`},
		{`{any: []}`, `filter.any: needs at least one filter expression (line 1)`},
		{`{any: {exact: {type: a}}}`, `filter.any: must be a list of filter expressions (line 1)`},
		{"all:\n  - exact: {type: a}\n  - prefix: {type: 5}\n", `filter.all[1].prefix: value for "type" must be a string; quote it: "5" (line 3)`},
		{`{prefix: {type: [a, b]}}`, `filter.prefix: value for "type" must be a string (line 1)`},
		{`{exact: {type: null}}`, `filter.exact: value for "type" must be a string (line 1)`},
		{`{exact: {express: true}}`, `filter.exact: value for "express" must be a string; quote it: "true" (line 1)`},
		{`{exact: {type: ""}}`, `filter.exact: value for "type" must not be empty (line 1)`},
		{`{exact: {Type: a}}`, `filter.exact: "Type" is not a valid attribute name (lowercase letters a-z and digits 0-9 only) (line 1)`},
		{`{suffix: {my-ext: a}}`, `filter.suffix: "my-ext" is not a valid attribute name (lowercase letters a-z and digits 0-9 only) (line 1)`},
		{`{exact: {"": a}}`, `filter.exact: "" is not a valid attribute name (lowercase letters a-z and digits 0-9 only) (line 1)`},
		{`{exact: {data: a}}`, `filter.exact: "data" is the event payload, not an attribute; filters see attributes only (line 1)`},
		{"exact:\n  type: a\n  type: b\n", `filter.exact: "type" appears twice (lines 2 and 3) (line 3)`},
		{`{exact: {}}`, `filter.exact: needs at least one attribute (line 1)`},
		{`{exact: com.example}`, `filter.exact: must map attribute names to values, e.g. {type: com.example.order} (line 1)`},
		{`{exact: {type: a}, prefix: {source: b}}`, `filter: one dialect per filter expression, found "exact" and "prefix"; combine them with all (line 1)`},
		{`{not: [{exact: {type: a}}]}`, `filter.not: must be a filter expression such as {prefix: {type: com.example.}} (line 1)`},
		{`{all: [{}]}`, `filter.all[0]: empty filter expression; name one dialect (exact, prefix, suffix, all, any, not) (line 1)`},
		{`just text`, `filter: must be a filter expression such as {prefix: {type: com.example.}} (line 1)`},
		{"any:\n  - exact: {Type: a}\n  - nope: {}\n", "filter.any[0].exact: \"Type\" is not a valid attribute name (lowercase letters a-z and digits 0-9 only) (line 2)\n" +
			"filter.any[1]: unknown dialect \"nope\" (accepted: exact, prefix, suffix, all, any, not) (line 3)"},
		{`{all: [`, `router: parse filter: yaml: line 1: did not find expected node content`},
	}
	for _, tt := range tests {
		f, err := router.ParseFilter([]byte(tt.filter))
		if err == nil {
			t.Errorf("ParseFilter(%q) = %s, want error %q", tt.filter, f, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("ParseFilter(%q):\n got %s\nwant %s", tt.filter, err, tt.want)
		}
	}
}

func TestFilterMatchAllocations(t *testing.T) {
	e := order(t)
	for _, text := range benchFilters {
		f := mustFilter(t, text[1])
		if n := testing.AllocsPerRun(100, func() { f.Match(e) }); n != 0 {
			t.Errorf("%s: %v allocations per Match, want 0", text[0], n)
		}
	}
}

// routeFilter is a route's filter of several dialects, nested.
const routeFilter = `
all:
  - prefix: {type: com.example.order.}
  - not: {exact: {source: /test}}
  - any:
      - exact: {region: us}
      - suffix: {subject: .priority}
`

var benchFilters = [][2]string{
	{"exact-type", `{exact: {type: com.example.order.created}}`},
	{"prefix-source", `{prefix: {source: "https://shop.example.com/"}}`},
	{"suffix-subject", `{suffix: {subject: .priority}}`},
	{"time", `{prefix: {time: "2024-05-01T"}}`},
	{"extension-string", `{exact: {region: eu}}`},
	{"extension-int", `{exact: {priority: "42"}}`},
	{"route", routeFilter},
}

func BenchmarkFilter(b *testing.B) {
	e := order(b)
	for _, bf := range benchFilters {
		f := mustFilter(b, bf[1])
		b.Run(bf[0], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !f.Match(e) {
					b.Fatal("no match")
				}
			}
		})
	}
}

func ExampleFilter() {
	f, err := router.ParseFilter([]byte(`
all:
  - prefix: {type: com.example.order.}
  - not: {exact: {source: /test}}
`))
	if err != nil {
		log.Fatal(err)
	}
	e := event.New()
	e.SetID("1")
	e.SetSource("/shop")
	e.SetType("com.example.order.created")
	fmt.Println(f.Match(&e))

	e.SetSource("/test")
	fmt.Println(f.Match(&e))

	e.SetSource("/shop")
	e.SetType("com.example.invoice.created")
	fmt.Println(f.Match(&e))
	fmt.Println(f)
	// Output:
	// true
	// false
	// false
	// {"all":[{"prefix":{"type":"com.example.order."}},{"not":{"exact":{"source":"/test"}}}]}
}

// The errors name where the problem is.
func ExampleParseFilter_error() {
	_, err := router.ParseFilter([]byte(`{all: [{exact: {type: a}}, {prefix: {type: 5}}]}`))
	fmt.Println(strings.ReplaceAll(err.Error(), "; ", ";\n"))
	// Output:
	// filter.all[1].prefix: value for "type" must be a string;
	// quote it: "5" (line 1)
}
