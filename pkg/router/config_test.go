package router_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/auditbus/auditbus/pkg/router"
)

const fullRoutes = `
routes:
  - name: orders
    source:
      transport: kafka
      topic: orders
      group: billing-team
    filter:
      all:
        - prefix: {type: com.example.order.}
        - not: {exact: {source: /test}}
    destinations:
      - name: billing
        transport: amqp
        topic: billing
      - name: audit-hook
        webhook:
          url: https://hooks.example.com/events
          timeout: 5s
          headers: {X-Team: payments, x-count: 3}
          tls: {ca_file: ca.pem, cert_file: c.pem, key_file: k.pem, insecure_skip_verify: true}
      - transport: mem
        topic: copies
    retry:
      <<: &base {max_attempts: 3, jitter: 0.1}
      initial_backoff: 50ms
      max_backoff: 2s
      max_elapsed: 30s
      jitter: 0.5
    circuit_breaker:
      failures: 2
      open_for: 1m
    dead_letter:
      transport: mem
      topic: dead-letter
  - name: ingest
    source: {http: true}
    destinations:
      - webhook: {url: "http://Sink.Example.com:8080/in"}
    retry: {<<: *base}
    dead_letter: none
`

func TestParseRoutesFull(t *testing.T) {
	routes, err := router.ParseRoutes("routes.yaml", []byte(fullRoutes))
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 2 {
		t.Fatalf("got %d routes", len(routes))
	}
	o := routes[0]
	if o.Name != "orders" || o.Line != 3 {
		t.Errorf("name %q line %d", o.Name, o.Line)
	}
	if want := (router.SourceConfig{Transport: "kafka", Topic: "orders", Group: "billing-team"}); o.Source != want {
		t.Errorf("source = %+v, want %+v", o.Source, want)
	}
	if got, want := o.Filter.String(), `{"all":[{"prefix":{"type":"com.example.order."}},{"not":{"exact":{"source":"/test"}}}]}`; got != want {
		t.Errorf("filter = %s, want %s", got, want)
	}
	if len(o.Destinations) != 3 {
		t.Fatalf("destinations = %+v", o.Destinations)
	}
	if d := o.Destinations[0]; d != (router.DestinationConfig{Name: "billing", Transport: "amqp", Topic: "billing"}) {
		t.Errorf("destinations[0] = %+v", d)
	}
	hook := o.Destinations[1]
	if hook.Name != "audit-hook" || hook.Transport != "" || hook.Webhook == nil {
		t.Fatalf("destinations[1] = %+v", hook)
	}
	w := hook.Webhook
	if w.URL.String() != "https://hooks.example.com/events" || w.Timeout != 5*time.Second {
		t.Errorf("webhook url %s timeout %s", w.URL, w.Timeout)
	}
	if want := (http.Header{"X-Team": {"payments"}, "X-Count": {"3"}}); !reflect.DeepEqual(w.Headers, want) {
		t.Errorf("headers = %v, want %v", w.Headers, want)
	}
	if want := (router.TLSConfig{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", InsecureSkipVerify: true}); w.TLS != want {
		t.Errorf("tls = %+v", w.TLS)
	}
	if d := o.Destinations[2]; d.Name != "mem:copies" {
		t.Errorf("default destination name = %q, want mem:copies", d.Name)
	}
	if want := (router.RetryPolicy{MaxAttempts: 3, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 2 * time.Second,
		MaxElapsed: 30 * time.Second, Jitter: 0.5}); o.Retry != want {
		t.Errorf("retry = %+v, want %+v", o.Retry, want)
	}
	if want := (router.BreakerPolicy{Failures: 2, OpenFor: time.Minute}); o.CircuitBreaker != want {
		t.Errorf("circuit breaker = %+v", o.CircuitBreaker)
	}
	if o.DeadLetter == nil || *o.DeadLetter != (router.DestinationConfig{Name: "mem:dead-letter", Transport: "mem", Topic: "dead-letter"}) {
		t.Errorf("dead letter = %+v", o.DeadLetter)
	}

	in := routes[1]
	if in.Source != (router.SourceConfig{HTTP: true}) || !in.Filter.IsZero() || in.DeadLetter != nil {
		t.Errorf("ingest route = %+v", in)
	}
	if d := in.Destinations[0]; d.Name != "sink.example.com:8080" || d.Webhook.Timeout != router.DefaultWebhookTimeout {
		t.Errorf("webhook defaults: name %q timeout %s", d.Name, d.Webhook.Timeout)
	}
	retry := router.DefaultRetryPolicy()
	retry.MaxAttempts, retry.Jitter = 3, 0.1 // from the merged anchor
	if in.Retry != retry || in.CircuitBreaker != router.DefaultBreakerPolicy() {
		t.Errorf("defaults not applied: %+v %+v", in.Retry, in.CircuitBreaker)
	}
}

func TestParseRoutesDefaults(t *testing.T) {
	routes, err := router.ParseRoutes("r.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	r := routes[0]
	want := router.RouteConfig{
		Name: "orders", Line: 2,
		Source:         router.SourceConfig{Transport: "mem", Topic: "orders", Group: "auditbus-orders"},
		Destinations:   []router.DestinationConfig{{Name: "mem:billing", Transport: "mem", Topic: "billing"}},
		Retry:          router.RetryPolicy{MaxAttempts: 5, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second, MaxElapsed: time.Minute, Jitter: 0.2},
		CircuitBreaker: router.BreakerPolicy{Failures: 5, OpenFor: 30 * time.Second},
		DeadLetter:     &router.DestinationConfig{Name: "mem:dl", Transport: "mem", Topic: "dl"},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got  %+v\nwant %+v", r, want)
	}
}

func TestRoutesExample(t *testing.T) {
	routes, err := router.LoadRoutes(filepath.Join("..", "..", "deploy", "routes.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 1 {
		t.Fatalf("got %d routes", len(routes))
	}
	r := routes[0]
	if r.Source.Transport != "mem" || r.DeadLetter == nil || r.DeadLetter.Transport != "mem" || len(r.Destinations) != 2 {
		t.Errorf("example route = %+v", r)
	}
	for _, d := range r.Destinations {
		if d.Transport != "mem" {
			t.Errorf("destination %q is on %q; the example runs on mem alone", d.Name, d.Transport)
		}
	}
	e := event.New()
	e.SetID("1")
	e.SetSource("/shop")
	e.SetType("com.example.order.created")
	e.SetExtension("region", "eu")
	if !r.Filter.Match(&e) {
		t.Errorf("%s rejected an order from the eu", r.Filter)
	}
	e.SetSource("/test")
	if r.Filter.Match(&e) {
		t.Errorf("%s passed a test event", r.Filter)
	}
}

func TestLoadRoutesMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := router.LoadRoutes(path)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadRoutes(%q) = %v", path, err)
	}
}

// minimal is the smallest valid route; error cases add one line to it
// (line 7) or replace a line of it.
const minimal = `routes:
  - name: orders
    source: {transport: mem, topic: orders}
    destinations:
      - {transport: mem, topic: billing}
    dead_letter: {transport: mem, topic: dl}
`

func TestParseRoutesErrors(t *testing.T) {
	replace := func(old, new string) string {
		if !strings.Contains(minimal, old) {
			panic(old)
		}
		return strings.Replace(minimal, old, new, 1)
	}
	const pre = `routes.yaml: route "orders" `
	tests := []struct{ name, yaml, want string }{
		// The file.
		{"empty file", ``, `routes.yaml: routes: no routes; the file needs a routes list with at least one route`},
		{"no routes", "routes:\n", `routes.yaml: line 1: routes: no routes; the file needs a routes list with at least one route`},
		{"empty routes", "routes: []\n", `routes.yaml: line 1: routes: no routes; the file needs at least one`},
		{"routes not a list", "routes: {name: x}\n", `routes.yaml: line 1: routes: must be a list of routes`},
		{"unknown top-level field", minimal + "rotues: []\n", `routes.yaml: line 7: rotues: unknown field (accepted: routes)`},
		{"not a mapping", "- a\n", `routes.yaml: line 1: must be a mapping with the fields routes`},
		{"two documents", minimal + "---\nroutes: []\n", `routes.yaml: line 7: holds more than one YAML document; write all routes in one`},
		{"syntax", "routes: [\n", `routes.yaml: yaml: line 1: did not find expected node content`},

		// The route.
		{"route not a mapping", "routes:\n  - orders\n", `routes.yaml: routes[0] (line 2): must be a mapping with the fields name, source, filter, destinations, retry, circuit_breaker, dead_letter, signatures`},
		{"unknown field", minimal + "    colour: red\n", pre + `(line 7): colour: unknown field (accepted: name, source, filter, destinations, retry, circuit_breaker, dead_letter, signatures)`},
		{"field twice", minimal + "    name: again\n", `routes.yaml: route "again" (line 7): name: set twice (lines 2 and 7)`},
		{"no name", replace("  - name: orders\n    source:", "  - source:"), `routes.yaml: routes[0] (line 2): name: required ([a-z0-9][a-z0-9_.-]*)`},
		{"empty name", replace("name: orders", `name: ""`), `routes.yaml: routes[0] (line 2): name: must not be empty`},
		{"bad name", replace("name: orders", "name: Orders"), `routes.yaml: route "Orders" (line 2): name: "Orders" must match [a-z0-9][a-z0-9_.-]*`},
		{"duplicate name", minimal + strings.TrimPrefix(minimal, "routes:\n"), `routes.yaml: route "orders" (line 7): name: "orders" is also the name of routes[0]; route names must be unique`},
		{"shared consumer group", "routes:\n" +
			"  - {name: a, source: {transport: mem, topic: orders, group: g}, destinations: [{transport: mem, topic: x}], dead_letter: none}\n" +
			"  - {name: b, source: {transport: mem, topic: orders, group: g}, destinations: [{transport: mem, topic: x}], dead_letter: none}\n",
			`routes.yaml: route "b" (line 3): source.group: route "a" reads mem topic "orders" with group "g" too; each would see part of the events, so give one another group`},

		// The source.
		{"no source", replace("    source: {transport: mem, topic: orders}\n", ""), pre + `(line 2): source: required: transport and topic, or http: true`},
		{"empty source", replace("{transport: mem, topic: orders}", "{}"), pre + `(line 3): source: needs transport and topic, or http: true`},
		{"source is http and topic", replace("{transport: mem, topic: orders}", "{http: true, topic: orders}"), pre + `(line 3): source.topic: not allowed with http: true; a source is a transport topic or the HTTP ingest, not both`},
		{"http not a boolean", replace("{transport: mem, topic: orders}", "{http: maybe}"), pre + `(line 3): source.http: "maybe" must be true or false`},
		{"unknown transport", replace("{transport: mem, topic: orders}", "{transport: nats, topic: orders}"), pre + `(line 3): source.transport: "nats" is not a transport (accepted: kafka, amqp, mem)`},
		{"topic without transport", replace("{transport: mem, topic: orders}", "{topic: orders}"), pre + `(line 3): source.transport: required with topic (accepted: kafka, amqp, mem)`},
		{"transport without topic", replace("{transport: mem, topic: orders}", "{transport: mem}"), pre + `(line 3): source.topic: required with transport`},
		{"bad kafka topic", replace("{transport: mem, topic: orders}", "{transport: kafka, topic: 'orders/eu'}"), pre + `(line 3): source.topic: "orders/eu" is not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)`},
		{"long amqp queue", replace("{transport: mem, topic: orders}", "{transport: amqp, topic: "+strings.Repeat("q", 256)+"}"), pre + `(line 3): source.topic: is 256 bytes; AMQP queue names are at most 255`},
		{"source a list", replace("{transport: mem, topic: orders}", "[mem, orders]"), pre + `(line 3): source: must be a mapping with the fields transport, topic, group, http`},

		// Destinations.
		{"no destinations", replace("    destinations:\n      - {transport: mem, topic: billing}\n", ""), pre + `(line 2): destinations: required: at least one destination`},
		{"empty destinations", replace("    destinations:\n      - {transport: mem, topic: billing}\n", "    destinations: []\n"), pre + `(line 4): destinations: needs at least one destination`},
		{"destination neither", replace("{transport: mem, topic: billing}", "{name: x}"), pre + `(line 5): destinations[0]: needs transport and topic, or webhook`},
		{"destination both", replace("{transport: mem, topic: billing}", "{transport: mem, topic: billing, webhook: {url: 'https://h'}}"), pre + `(line 5): destinations[0]: has both transport/topic and webhook; a destination is one of them`},
		{"duplicate destination", replace("      - {transport: mem, topic: billing}\n", "      - {transport: mem, topic: billing}\n      - {transport: mem, topic: billing}\n"),
			pre + `(line 6): destinations[1].name: "mem:billing" is also the name of destinations[0]; give one of them a name of its own`},
		{"bad destination name", replace("{transport: mem, topic: billing}", "{name: Billing Team, transport: mem, topic: billing}"), pre + `(line 5): destinations[0].name: "Billing Team" must match [a-z0-9][a-z0-9_.:-]*`},
		{"destination field unknown", replace("{transport: mem, topic: billing}", "{transport: mem, queue: billing}"), pre + `(line 5): destinations[0].queue: unknown field (accepted: name, transport, topic, webhook)` + "\n" +
			pre + `(line 5): destinations[0].topic: required with transport`},

		// Webhooks.
		{"timeout not a duration", replace("      - {transport: mem, topic: billing}\n", "      - {transport: mem, topic: billing}\n      - webhook:\n          url: https://hooks.example.com/events\n          timeout: 5 seconds\n"),
			pre + `(line 8): destinations[1].webhook.timeout: "5 seconds" is not a duration (e.g. 5s)`},
		{"timeout zero", replace("{transport: mem, topic: billing}", "{webhook: {url: 'https://h', timeout: 0s}}"), pre + `(line 5): destinations[0].webhook.timeout: must be positive, not 0s`},
		{"no url", replace("{transport: mem, topic: billing}", "{webhook: {timeout: 1s}}"), pre + `(line 5): destinations[0].webhook.url: required: an absolute http or https URL`},
		{"ftp url", replace("{transport: mem, topic: billing}", "{webhook: {url: 'ftp://h/x'}}"), pre + `(line 5): destinations[0].webhook.url: "ftp://h/x" is not an absolute http or https URL`},
		{"relative url", replace("{transport: mem, topic: billing}", "{webhook: {url: /events}}"), pre + `(line 5): destinations[0].webhook.url: "/events" is not an absolute http or https URL`},
		{"ce header", replace("{transport: mem, topic: billing}", "{webhook: {url: 'https://h', headers: {Ce-Id: x}}}"), pre + `(line 5): destinations[0].webhook.headers: "Ce-Id" would overwrite a header that carries the event`},
		{"content-type header", replace("{transport: mem, topic: billing}", "{webhook: {url: 'https://h', headers: {content-type: x}}}"), pre + `(line 5): destinations[0].webhook.headers: "content-type" would overwrite a header that carries the event`},
		{"bad header name", replace("{transport: mem, topic: billing}", "{webhook: {url: 'https://h', headers: {'X Team': x}}}"), pre + `(line 5): destinations[0].webhook.headers: "X Team" is not a valid header name`},
		{"header twice", replace("{transport: mem, topic: billing}", "{webhook: {url: 'https://h', headers: {X-A: 1, x-a: 2}}}"), pre + `(line 5): destinations[0].webhook.headers: "X-A" is set twice`},
		{"header list", replace("{transport: mem, topic: billing}", "{webhook: {url: 'https://h', headers: {X-A: [1, 2]}}}"), pre + `(line 5): destinations[0].webhook.headers: value for "X-A" must be a single value`},
		{"header line break", replace("{transport: mem, topic: billing}", `{webhook: {url: 'https://h', headers: {X-A: "a\nb"}}}`), pre + `(line 5): destinations[0].webhook.headers: value for "X-A" must not contain line breaks`},
		{"tls on http", replace("{transport: mem, topic: billing}", "{webhook: {url: 'http://h', tls: {ca_file: ca.pem}}}"), pre + `(line 5): destinations[0].webhook.tls: set for an http URL; TLS settings need https`},
		{"cert without key", replace("{transport: mem, topic: billing}", "{webhook: {url: 'https://h', tls: {cert_file: c.pem}}}"), pre + `(line 5): destinations[0].webhook.tls: cert_file and key_file go together; set both or neither`},
		{"tls unknown field", replace("{transport: mem, topic: billing}", "{webhook: {url: 'https://h', tls: {verify: false}}}"), pre + `(line 5): destinations[0].webhook.tls.verify: unknown field (accepted: ca_file, cert_file, key_file, insecure_skip_verify)`},

		// Retry and circuit breaker.
		{"max_attempts zero", minimal + "    retry: {max_attempts: 0}\n", pre + `(line 7): retry.max_attempts: "0" is not a whole number >= 1`},
		{"max_attempts words", minimal + "    retry: {max_attempts: five}\n", pre + `(line 7): retry.max_attempts: "five" is not a whole number >= 1`},
		{"backoff order", minimal + "    retry: {initial_backoff: 2s, max_backoff: 1s}\n", pre + `(line 7): retry.max_backoff: 1s is less than initial_backoff 2s`},
		{"initial above default max", minimal + "    retry: {initial_backoff: 20s}\n", pre + `(line 7): retry.max_backoff: 10s is less than initial_backoff 20s`},
		{"max_elapsed", minimal + "    retry: {max_elapsed: -1m}\n", pre + `(line 7): retry.max_elapsed: must be positive, not -1m`},
		{"jitter above 1", minimal + "    retry: {jitter: 1.5}\n", pre + `(line 7): retry.jitter: "1.5" is not a fraction from 0 to 1`},
		{"jitter NaN", minimal + "    retry: {jitter: .nan}\n", pre + `(line 7): retry.jitter: ".nan" is not a fraction from 0 to 1`},
		{"retry unknown field", minimal + "    retry: {attempts: 3}\n", pre + `(line 7): retry.attempts: unknown field (accepted: max_attempts, initial_backoff, max_backoff, max_elapsed, jitter)`},
		{"retry scalar", minimal + "    retry: 3\n", pre + `(line 7): retry: must be a mapping with the fields max_attempts, initial_backoff, max_backoff, max_elapsed, jitter`},
		{"breaker failures", minimal + "    circuit_breaker: {failures: x}\n", pre + `(line 7): circuit_breaker.failures: "x" is not a whole number >= 1`},
		{"breaker open_for", minimal + "    circuit_breaker: {open_for: soon}\n", pre + `(line 7): circuit_breaker.open_for: "soon" is not a duration (e.g. 5s)`},

		// Dead letter.
		{"no dead letter", replace("    dead_letter: {transport: mem, topic: dl}\n", ""), pre + `(line 2): dead_letter: required: a destination for events that exhaust their retries, or none to leave them unacknowledged at the source`},
		{"dead letter word", replace("{transport: mem, topic: dl}", "nowhere"), pre + `(line 6): dead_letter: "nowhere" is neither a destination nor none`},
		{"dead letter is a destination", replace("{transport: mem, topic: dl}", "{transport: mem, topic: billing}"), pre + `(line 6): dead_letter.name: "mem:billing" is also the name of destinations[0]; dead letters need a destination of their own`},
		{"dead letter incomplete", replace("{transport: mem, topic: dl}", "{transport: mem}"), pre + `(line 6): dead_letter.topic: required with transport`},

		// Filter.
		{"filter", minimal + "    filter:\n      all:\n        - exact: {type: a}\n        - prefix: {type: 5}\n", pre + `(line 10): filter.all[1].prefix: value for "type" must be a string; quote it: "5"`},
		{"filter dialect", minimal + "    filter: {regex: x}\n", pre + `(line 7): filter: unknown dialect "regex" (accepted: exact, prefix, suffix, all, any, not)`},

		// Several problems are all reported.
		{"several", "routes:\n  - source: {transport: mem}\n    destinations: []\n    dead_letter: none\n  - name: b\n    source: {http: true}\n    destinations: [{transport: x, topic: y}]\n    dead_letter: none\n",
			"routes.yaml: routes[0] (line 2): name: required ([a-z0-9][a-z0-9_.-]*)\n" +
				"routes.yaml: routes[0] (line 2): source.topic: required with transport\n" +
				"routes.yaml: routes[0] (line 3): destinations: needs at least one destination\n" +
				`routes.yaml: route "b" (line 7): destinations[0].transport: "x" is not a transport (accepted: kafka, amqp, mem)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			routes, err := router.ParseRoutes("routes.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("parsed %+v, want error\n%s", routes, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("\n got %s\nwant %s", err, tt.want)
			}
			var ce *router.ConfigError
			if !errors.As(err, &ce) && !strings.Contains(tt.want, "yaml: line") {
				t.Errorf("%v is not a *ConfigError", err)
			}
		})
	}
}
