package router

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/auditbus/auditbus/pkg/cehttp"
	"github.com/auditbus/auditbus/pkg/egress"
	"go.opentelemetry.io/otel/trace"
	"gopkg.in/yaml.v3"
)

// RouteConfig is one route of a routes file, validated and with every
// default applied.
type RouteConfig struct {
	// Name identifies the route in metrics, logs and the audit store.
	Name string
	// Line is where the route starts in its file, for messages.
	Line int
	// Source is where the route reads events.
	Source SourceConfig
	// Filter selects the events the route delivers; the rest are audited
	// as filtered out. The zero Filter passes every event.
	Filter Filter
	// Destinations each receive their own duplicate of every event that
	// passes the filter; there is at least one.
	Destinations []DestinationConfig
	// Retry governs redelivery to a destination that failed.
	Retry RetryPolicy
	// CircuitBreaker applies to each destination on its own.
	CircuitBreaker BreakerPolicy
	// DeadLetter receives events that exhaust their retries, and events
	// that are not valid CloudEvents. It is nil only when the file says
	// "dead_letter: none": such events are then never acknowledged to the
	// source, which redelivers them (an HTTP ingest answers with an error),
	// so nothing is dropped but the route can stall behind them.
	DeadLetter *DestinationConfig
	// RequireSignatures is true for "signatures: required": an event that
	// is unsigned, or whose signature is invalid or made by a key the
	// signer registry does not allow for its source and type, is refused
	// (recorded as refused; over HTTP the request is answered 403, from a
	// broker the event goes to the dead letter). The default, "optional",
	// delivers such events and records what was found in their received
	// entry.
	RequireSignatures bool
}

// Values of a route's signatures field.
const (
	SignaturesRequired = "required"
	SignaturesOptional = "optional"
)

// SourceConfig is where a route reads events: a topic on a transport, or
// the daemon's HTTP ingest (POST /v1/events?route=NAME).
type SourceConfig struct {
	// Transport is kafka, amqp or mem; empty when HTTP is true. Whether the
	// daemon enables it is checked when the daemon starts.
	Transport string
	// Topic is the topic or queue read on Transport.
	Topic string
	// Group is the consumer group; by default "auditbus-" + route name.
	Group string
	// HTTP is true for routes fed by the HTTP ingest.
	HTTP bool
}

// DestinationConfig is where a route delivers: a topic on a transport, or
// an HTTP webhook (exactly one of the two).
type DestinationConfig struct {
	// Name labels the destination in metrics, logs and dead letters; by
	// default "transport:topic", or the webhook's host.
	Name string
	// Transport is kafka, amqp or mem; empty for a webhook.
	Transport string
	// Topic is the topic or queue published to on Transport.
	Topic string
	// Webhook is set for HTTP destinations.
	Webhook *WebhookConfig
}

// WebhookConfig is an HTTP destination, which receives each event in the
// CloudEvents HTTP binary content mode.
type WebhookConfig struct {
	// URL is absolute, http or https.
	URL *url.URL
	// Timeout bounds one delivery attempt; 10s by default.
	Timeout time.Duration
	// Headers are added to every request; they never include Content-Type
	// or ce-* headers, which carry the event.
	Headers http.Header
	// TLS configures https connections.
	TLS TLSConfig
}

// NewWebhook builds the client that delivers to this webhook, connecting
// only where p allows (nil: anywhere); the TLS files are read now.
func (w *WebhookConfig) NewWebhook(p *egress.Policy) (*cehttp.Webhook, error) {
	return w.newWebhook(nil, p)
}

// newWebhook is NewWebhook with a tracer for each call (nil: none).
func (w *WebhookConfig) newWebhook(tracer trace.Tracer, p *egress.Policy) (*cehttp.Webhook, error) {
	return cehttp.NewWebhook(cehttp.WebhookConfig{
		URL: w.URL.String(), Timeout: w.Timeout, Headers: w.Headers, Tracer: tracer, Egress: p,
		TLS: cehttp.TLSConfig{CAFile: w.TLS.CAFile, CertFile: w.TLS.CertFile, KeyFile: w.TLS.KeyFile, InsecureSkipVerify: w.TLS.InsecureSkipVerify},
	})
}

// TLSConfig names the files of a webhook's TLS settings; the daemon reads
// them when it starts.
type TLSConfig struct {
	CAFile             string // PEM roots to trust instead of the system's
	CertFile           string // client certificate (PEM), with KeyFile
	KeyFile            string // client key (PEM), with CertFile
	InsecureSkipVerify bool   // skip server certificate checks (tests only)
}

// RetryPolicy is exponential backoff with jitter for one destination.
type RetryPolicy struct {
	MaxAttempts    int           // attempts in all, including the first
	InitialBackoff time.Duration // wait after the first failure
	MaxBackoff     time.Duration // cap on one wait
	MaxElapsed     time.Duration // give up after this long since the first attempt
	Jitter         float64       // each wait varies by up to this fraction, 0..1
}

// BreakerPolicy is the circuit breaker kept for each destination.
type BreakerPolicy struct {
	Failures int           // consecutive failures that open the breaker
	OpenFor  time.Duration // how long it stays open before one trial delivery
}

// DefaultRetryPolicy is the retry policy of a route that sets none.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 5, InitialBackoff: 100 * time.Millisecond,
		MaxBackoff: 10 * time.Second, MaxElapsed: time.Minute, Jitter: 0.2}
}

// DefaultBreakerPolicy is the circuit breaker of a route that sets none.
func DefaultBreakerPolicy() BreakerPolicy {
	return BreakerPolicy{Failures: 5, OpenFor: 30 * time.Second}
}

// DefaultWebhookTimeout bounds a webhook delivery attempt when the route
// sets no timeout.
const DefaultWebhookTimeout = 10 * time.Second

// Transports are the transport names a route may use.
var transports = []string{"kafka", "amqp", "mem"}

var (
	routeName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
	destName  = regexp.MustCompile(`^[a-z0-9][a-z0-9_.:-]*$`)
	kafkaName = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
)

// LoadRoutes reads and validates the routes file at path, the file the
// daemon's AUDITBUS_ROUTES names. See ParseRoutes.
func LoadRoutes(path string) ([]RouteConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("router: load routes: %w", err)
	}
	return ParseRoutes(path, data)
}

// ParseRoutes parses and validates a routes file; name is used in errors.
// It reports every problem it finds, each a *ConfigError, joined with
// errors.Join. It checks all that can be checked without the daemon's
// transports; whether they are enabled, and the TLS files, are checked
// when the daemon starts.
func ParseRoutes(name string, data []byte) ([]RouteConfig, error) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, &ConfigError{File: name, Index: -1, Line: extra.Line,
			Msg: "holds more than one YAML document; write all routes in one"}
	}
	p := &parser{file: name, index: -1}
	var top *yaml.Node
	if len(doc.Content) == 1 {
		top = doc.Content[0]
	}
	if isNull(resolve(top)) {
		p.errorf(nil, "routes", "no routes; the file needs a routes list with at least one route")
		return nil, p.err()
	}
	m, ok := p.fields(top, "", "routes")
	if !ok {
		return nil, p.err()
	}
	list := resolve(m["routes"])
	switch {
	case isNull(list):
		p.errorf(top, "routes", "no routes; the file needs a routes list with at least one route")
	case list.Kind != yaml.SequenceNode:
		p.errorf(list, "routes", "must be a list of routes")
	case len(list.Content) == 0:
		p.errorf(list, "routes", "no routes; the file needs at least one")
	}
	if len(p.errs) > 0 {
		return nil, p.err()
	}
	routes := make([]RouteConfig, 0, len(list.Content))
	names := map[string]int{}
	groups := map[SourceConfig]string{}
	for i, n := range list.Content {
		r := p.parseRoute(resolve(n), i)
		routes = append(routes, r)
		if first, dup := names[r.Name]; dup && r.Name != "" {
			// A copied route shares its source too; one error says it.
			p.errorf(nil, "name", "%q is also the name of routes[%d]; route names must be unique", r.Name, first)
			continue
		}
		names[r.Name] = i
		if s := r.Source; s.Transport != "" && s.Topic != "" {
			key := SourceConfig{Transport: s.Transport, Topic: s.Topic, Group: s.Group}
			if other, dup := groups[key]; dup {
				p.errorf(nil, "source.group", "route %q reads %s topic %q with group %q too; each would see part of the events, so give one another group",
					other, s.Transport, s.Topic, s.Group)
			} else {
				groups[key] = r.Name
			}
		}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return routes, nil
}

// parseRoute parses routes[i]; errors name it by the name it gives, if any.
func (p *parser) parseRoute(n *yaml.Node, i int) RouteConfig {
	p.route, p.index, p.line = "", i, 0
	if n != nil {
		p.line = n.Line
	}
	r := RouteConfig{Line: p.line, Retry: DefaultRetryPolicy(), CircuitBreaker: DefaultBreakerPolicy()}
	if n != nil && n.Kind == yaml.MappingNode {
		// Name the route in every error, including those found before
		// its name field.
		for j := 0; j+1 < len(n.Content); j += 2 {
			if v := resolve(n.Content[j+1]); n.Content[j].Value == "name" && v.Kind == yaml.ScalarNode {
				p.route = v.Value
			}
		}
	}
	m, ok := p.fields(n, "", "name", "source", "filter", "destinations", "retry", "circuit_breaker", "dead_letter", "signatures")
	if !ok {
		return r
	}
	r.Name = p.str(m["name"], "name")
	switch {
	case isNull(resolve(m["name"])):
		p.errorf(nil, "name", "required ([a-z0-9][a-z0-9_.-]*)")
	case r.Name != "" && !routeName.MatchString(r.Name):
		p.errorf(m["name"], "name", "%q must match [a-z0-9][a-z0-9_.-]*", r.Name)
	}
	r.Source = p.source(m["source"], r.Name)
	r.Filter = p.filter(m["filter"], "filter")
	r.Destinations = p.destinations(m["destinations"])
	r.Retry = p.retry(m["retry"])
	r.CircuitBreaker = p.breaker(m["circuit_breaker"])
	r.DeadLetter = p.deadLetter(m["dead_letter"], r.Destinations)
	r.RequireSignatures = p.signatures(m["signatures"])
	return r
}

// signatures reads "signatures: required | optional" (default optional).
func (p *parser) signatures(n *yaml.Node) bool {
	switch s, _ := p.scalar(n, "signatures"); s {
	case "", SignaturesOptional:
		return false
	case SignaturesRequired:
		return true
	default:
		p.errorf(n, "signatures", "%q is neither %s nor %s", s, SignaturesRequired, SignaturesOptional)
		return false
	}
}

func (p *parser) source(n *yaml.Node, route string) SourceConfig {
	if isNull(resolve(n)) {
		p.errorf(n, "source", "required: transport and topic, or http: true")
		return SourceConfig{}
	}
	m, ok := p.fields(n, "source", "transport", "topic", "group", "http")
	if !ok {
		return SourceConfig{}
	}
	before := len(p.errs)
	s := SourceConfig{HTTP: p.boolean(m["http"], "source.http")}
	if len(p.errs) > before {
		return s
	}
	if s.HTTP {
		for _, f := range []string{"transport", "topic", "group"} {
			if !isNull(resolve(m[f])) {
				p.errorf(m[f], "source."+f, "not allowed with http: true; a source is a transport topic or the HTTP ingest, not both")
			}
		}
		return s
	}
	if isNull(resolve(m["transport"])) && isNull(resolve(m["topic"])) {
		p.errorf(n, "source", "needs transport and topic, or http: true")
		return s
	}
	s.Transport, s.Topic = p.topic(m, "source", n)
	s.Group = p.str(m["group"], "source.group")
	if s.Group == "" && route != "" {
		s.Group = "auditbus-" + route
	}
	return s
}

// topic reads the transport and topic fields of mapping m at path, which
// belongs to node n.
func (p *parser) topic(m map[string]*yaml.Node, path string, n *yaml.Node) (transport, topic string) {
	transport = p.str(m["transport"], path+".transport")
	topic = p.str(m["topic"], path+".topic")
	switch {
	case transport == "":
		p.errorf(orKey(m["transport"], n), path+".transport", "required with topic (accepted: %s)", strings.Join(transports, ", "))
	case !contains(transports, transport):
		p.errorf(m["transport"], path+".transport", "%q is not a transport (accepted: %s)", transport, strings.Join(transports, ", "))
	case topic == "":
		p.errorf(orKey(m["topic"], n), path+".topic", "required with transport")
	case transport == "kafka" && (!kafkaName.MatchString(topic) || topic == "." || topic == ".."):
		p.errorf(m["topic"], path+".topic", "%q is not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)", topic)
	case transport == "amqp" && len(topic) > 255:
		p.errorf(m["topic"], path+".topic", "is %d bytes; AMQP queue names are at most 255", len(topic))
	}
	return transport, topic
}

func (p *parser) destinations(n *yaml.Node) []DestinationConfig {
	n = resolve(n)
	switch {
	case isNull(n):
		p.errorf(n, "destinations", "required: at least one destination")
		return nil
	case n.Kind != yaml.SequenceNode:
		p.errorf(n, "destinations", "must be a list of destinations")
		return nil
	case len(n.Content) == 0:
		p.errorf(n, "destinations", "needs at least one destination")
		return nil
	}
	ds := make([]DestinationConfig, 0, len(n.Content))
	seen := map[string]int{}
	for i, dn := range n.Content {
		path := fmt.Sprintf("destinations[%d]", i)
		d := p.destination(dn, path)
		if first, dup := seen[d.Name]; dup && d.Name != "" {
			p.errorf(dn, path+".name", "%q is also the name of destinations[%d]; give one of them a name of its own", d.Name, first)
		} else {
			seen[d.Name] = i
		}
		ds = append(ds, d)
	}
	return ds
}

func (p *parser) destination(n *yaml.Node, path string) DestinationConfig {
	m, ok := p.fields(n, path, "name", "transport", "topic", "webhook")
	if !ok {
		return DestinationConfig{}
	}
	var d DestinationConfig
	hasTopic := !isNull(resolve(m["transport"])) || !isNull(resolve(m["topic"]))
	switch {
	case hasTopic && !isNull(resolve(m["webhook"])):
		p.errorf(m["webhook"], path, "has both transport/topic and webhook; a destination is one of them")
	case hasTopic:
		d.Transport, d.Topic = p.topic(m, path, n)
		d.Name = d.Transport + ":" + d.Topic
	case !isNull(resolve(m["webhook"])):
		d.Webhook = p.webhook(m["webhook"], path+".webhook")
		if d.Webhook != nil {
			d.Name = strings.ToLower(d.Webhook.URL.Host)
		}
	default:
		p.errorf(n, path, "needs transport and topic, or webhook")
	}
	if name := p.str(m["name"], path+".name"); name != "" {
		if !destName.MatchString(name) {
			p.errorf(m["name"], path+".name", "%q must match [a-z0-9][a-z0-9_.:-]*", name)
		}
		d.Name = name
	}
	return d
}

func (p *parser) webhook(n *yaml.Node, path string) *WebhookConfig {
	m, ok := p.fields(n, path, "url", "timeout", "headers", "tls")
	if !ok {
		return nil
	}
	w := &WebhookConfig{Timeout: p.duration(m["timeout"], path+".timeout", DefaultWebhookTimeout)}
	raw := p.str(m["url"], path+".url")
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		if isNull(resolve(m["url"])) {
			p.errorf(n, path+".url", "required: an absolute http or https URL")
		}
		return nil
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		p.errorf(m["url"], path+".url", "%q is not an absolute http or https URL", raw)
		return nil
	}
	w.URL = u
	w.Headers = p.headers(m["headers"], path+".headers")
	if tn := m["tls"]; !isNull(resolve(tn)) {
		w.TLS = p.tls(tn, path+".tls")
		if u.Scheme != "https" {
			p.errorf(tn, path+".tls", "set for an http URL; TLS settings need https")
		}
	}
	return w
}

func (p *parser) headers(n *yaml.Node, path string) http.Header {
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, path, "must map header names to values")
		return nil
	}
	h := http.Header{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		name, canon := k.Value, http.CanonicalHeaderKey(k.Value)
		lower := strings.ToLower(name)
		switch {
		case !validToken(name):
			p.errorf(k, path, "%q is not a valid header name", name)
		case strings.HasPrefix(lower, "ce-") || lower == "content-type" || lower == "content-length":
			p.errorf(k, path, "%q would overwrite a header that carries the event", name)
		case h[canon] != nil:
			p.errorf(k, path, "%q is set twice", canon)
		case v == nil || v.Kind != yaml.ScalarNode || isNull(v):
			p.errorf(orKey(v, k), path, "value for %q must be a single value", name)
		case strings.ContainsAny(v.Value, "\r\n\x00"):
			p.errorf(v, path, "value for %q must not contain line breaks", name)
		default:
			h[canon] = []string{v.Value}
		}
	}
	return h
}

// validToken reports whether s is an HTTP token (RFC 9110), as header
// names are.
func validToken(s string) bool {
	return s != "" && only(s, func(c byte) bool { return alnum(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 })
}

func (p *parser) tls(n *yaml.Node, path string) TLSConfig {
	m, ok := p.fields(n, path, "ca_file", "cert_file", "key_file", "insecure_skip_verify")
	if !ok {
		return TLSConfig{}
	}
	t := TLSConfig{
		CAFile:             p.str(m["ca_file"], path+".ca_file"),
		CertFile:           p.str(m["cert_file"], path+".cert_file"),
		KeyFile:            p.str(m["key_file"], path+".key_file"),
		InsecureSkipVerify: p.boolean(m["insecure_skip_verify"], path+".insecure_skip_verify"),
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		p.errorf(n, path, "cert_file and key_file go together; set both or neither")
	}
	return t
}

func (p *parser) retry(n *yaml.Node) RetryPolicy {
	r := DefaultRetryPolicy()
	if isNull(resolve(n)) {
		return r
	}
	m, ok := p.fields(n, "retry", "max_attempts", "initial_backoff", "max_backoff", "max_elapsed", "jitter")
	if !ok {
		return r
	}
	r.MaxAttempts = p.count(m["max_attempts"], "retry.max_attempts", r.MaxAttempts)
	r.InitialBackoff = p.duration(m["initial_backoff"], "retry.initial_backoff", r.InitialBackoff)
	r.MaxBackoff = p.duration(m["max_backoff"], "retry.max_backoff", r.MaxBackoff)
	r.MaxElapsed = p.duration(m["max_elapsed"], "retry.max_elapsed", r.MaxElapsed)
	if r.MaxBackoff < r.InitialBackoff {
		p.errorf(orKey(m["max_backoff"], m["initial_backoff"]), "retry.max_backoff",
			"%s is less than initial_backoff %s", r.MaxBackoff, r.InitialBackoff)
	}
	if s, ok := p.scalar(m["jitter"], "retry.jitter"); ok {
		j, err := strconv.ParseFloat(s, 64)
		if err != nil || !(j >= 0 && j <= 1) {
			p.errorf(m["jitter"], "retry.jitter", "%q is not a fraction from 0 to 1", s)
		} else {
			r.Jitter = j
		}
	}
	return r
}

func (p *parser) breaker(n *yaml.Node) BreakerPolicy {
	b := DefaultBreakerPolicy()
	if isNull(resolve(n)) {
		return b
	}
	m, ok := p.fields(n, "circuit_breaker", "failures", "open_for")
	if !ok {
		return b
	}
	b.Failures = p.count(m["failures"], "circuit_breaker.failures", b.Failures)
	b.OpenFor = p.duration(m["open_for"], "circuit_breaker.open_for", b.OpenFor)
	return b
}

func (p *parser) deadLetter(n *yaml.Node, dests []DestinationConfig) *DestinationConfig {
	n = resolve(n)
	switch {
	case isNull(n):
		p.errorf(n, "dead_letter", "required: a destination for events that exhaust their retries, or none to leave them unacknowledged at the source")
		return nil
	case n.Kind == yaml.ScalarNode && n.Value == "none":
		return nil
	case n.Kind == yaml.ScalarNode:
		p.errorf(n, "dead_letter", "%q is neither a destination nor none", n.Value)
		return nil
	}
	d := p.destination(n, "dead_letter")
	for i, o := range dests {
		if d.Name != "" && o.Name == d.Name {
			p.errorf(n, "dead_letter.name", "%q is also the name of destinations[%d]; dead letters need a destination of their own", d.Name, i)
		}
	}
	return &d
}
