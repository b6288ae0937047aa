package httpapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/auditbus/auditbus/bus"
	cliptext "github.com/auditbus/auditbus/bus/clip"
	"github.com/auditbus/auditbus/pkg/apierror"
	"github.com/auditbus/auditbus/pkg/auth"
	"github.com/auditbus/auditbus/pkg/refusal"
	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/pkg/ui"
	"github.com/auditbus/auditbus/sinks"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
)

// Defaults of Options.
const (
	// DefaultTopic is the topic POST /v1/events publishes to without ?topic=.
	DefaultTopic = "events"
	// DefaultMaxBodyBytes is the largest request body POST /v1/events reads.
	DefaultMaxBodyBytes = 4 << 20
	// ReadyTimeout bounds one run of Options.Ready.
	ReadyTimeout = 2 * time.Second
)

// Stable error codes this package answers with, besides those of packages
// cehttp and auth.
const (
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeBadQuery         = "bad_query"
	CodeUnknownRoute     = "unknown_route"
	CodeSignature        = "signature_refused"
	CodeNoRoute          = "no_route"
	CodeInvalidEvent     = "invalid_event"
	CodeTooLarge         = "too_large"
	CodeAmbiguousID      = "ambiguous_id"
	CodeAnswerTooLarge   = "answer_too_large"
	CodeUnavailable      = "unavailable"
	CodeNotReady         = "not_ready"
	CodeInternal         = "internal"
)

// Options are what a Server needs from the daemon.
type Options struct {
	// Verifier checks bearer tokens and scopes. Nil, or one without keys,
	// lets every request through (whether that is allowed is the daemon's
	// decision; see auth.CheckListen).
	Verifier *auth.Verifier
	// Store answers the audit queries and the ledger reads. Required.
	Store sinks.Store
	// Audit makes the records of ingested events durable; the daemon's
	// *sinks.Writer. Required.
	Audit router.Auditor
	// Router runs the HTTP-fed routes (?route=NAME); nil when there are
	// none.
	Router *router.Router
	// Transport is the default transport, which ?topic= publishes to, and
	// TransportName its name ("mem", "kafka", "amqp") for messages and
	// logs. Both required.
	Transport     bus.Transport
	TransportName string
	// Signatures, if set, checks the events ingested to a topic
	// (?topic=) against the signer registry; each received entry records
	// the result. Routes check their own events (router.Options).
	Signatures router.SignatureChecker
	// DefaultTopic is the topic without ?topic= (default DefaultTopic).
	DefaultTopic string
	// MaxBodyBytes bounds a request body (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Replays runs replay jobs: with it the server answers POST, GET and
	// DELETE /v1/replays and POST /v1/redrives; nil leaves them out.
	Replays *replay.Manager
	// Destinations resolves the destinations of replay requests; required
	// with Replays.
	Destinations Destinations
	// Refusals counts the events refused by their principal's permissions
	// (auditbus_events_refused_total); nil counts nothing. The daemon
	// registers one and shares it with the router.
	Refusals *refusal.Metrics
	// Ready reports whether the transports and the store are reachable; nil
	// means always ready. It is given ReadyTimeout.
	Ready func(ctx context.Context) error
	// Gatherer is what GET /metrics serves; nil serves Registerer when it is
	// a Gatherer.
	Gatherer prometheus.Gatherer
	// Registerer receives the server's own HTTP metrics; nil keeps them in
	// a registry of their own, served by GET /metrics beside Gatherer.
	Registerer prometheus.Registerer
	// Tracer, if set, starts a server span for each ingest request and a
	// producer span for each publish to a topic. Nil turns tracing off.
	Tracer trace.Tracer
	// Logger receives request logs (accepted writes with the token's
	// subject, refusals, failures); nil discards them.
	Logger *slog.Logger
	// ReadTimeout bounds reading a request, headers and body;
	// WriteTimeout, writing its answer; IdleTimeout, a keep-alive
	// connection waiting for the next request. 0 means the defaults
	// (DefaultReadTimeout, DefaultWriteTimeout, DefaultIdleTimeout).
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers: past it, 431 (default
	// DefaultMaxHeaderBytes).
	MaxHeaderBytes int
	// MaxConnections bounds the connections Serve holds open at once
	// (default DefaultMaxConnections).
	MaxConnections int
	// QueryMaxBytes bounds the JSON of one page of GET /v1/events: the
	// page ends early, with a cursor, at the version that reaches it
	// (default DefaultQueryMaxBytes). GET /v1/events/{id} answers 409
	// answer_too_large past it.
	QueryMaxBytes int
}

// Server is the HTTP API. It is an http.Handler; Serve and ListenAndServe
// run it on a listener, with TLS when given a certificate, and Shutdown
// stops it gracefully.
type Server struct {
	o   Options
	log *slog.Logger
	mux *http.ServeMux
	hs  *http.Server
	now func() time.Time
	m   *metrics
}

// New checks o and builds the server. Errors name the bad field.
func New(o Options) (*Server, error) {
	switch {
	case o.Store == nil:
		return nil, errors.New("httpapi: Options.Store is nil: the audit query needs the audit store")
	case o.Audit == nil:
		return nil, errors.New("httpapi: Options.Audit is nil: ingest needs the audit writer to record events before answering 202")
	case o.Transport == nil:
		return nil, errors.New("httpapi: Options.Transport is nil: ingest needs the default transport")
	case o.TransportName == "":
		return nil, errors.New("httpapi: Options.TransportName is empty: name the default transport (mem, kafka or amqp)")
	case o.Replays != nil && o.Destinations == nil:
		return nil, errors.New("httpapi: Options.Destinations is nil: the replay endpoints need it to resolve a request's destination")
	case o.MaxBodyBytes < 0:
		return nil, fmt.Errorf("httpapi: Options.MaxBodyBytes is %d: want the largest request body in bytes, or 0 for %d", o.MaxBodyBytes, DefaultMaxBodyBytes)
	}
	if o.DefaultTopic == "" {
		o.DefaultTopic = DefaultTopic
	}
	if err := checkTopic(o.DefaultTopic); err != nil {
		return nil, fmt.Errorf("httpapi: Options.DefaultTopic %q: %w", o.DefaultTopic, err)
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.ReadTimeout = cmp.Or(max(o.ReadTimeout, 0), DefaultReadTimeout)
	o.WriteTimeout = cmp.Or(max(o.WriteTimeout, 0), DefaultWriteTimeout)
	o.IdleTimeout = cmp.Or(max(o.IdleTimeout, 0), DefaultIdleTimeout)
	o.MaxHeaderBytes = cmp.Or(max(o.MaxHeaderBytes, 0), DefaultMaxHeaderBytes)
	o.MaxConnections = cmp.Or(max(o.MaxConnections, 0), DefaultMaxConnections)
	o.QueryMaxBytes = cmp.Or(max(o.QueryMaxBytes, 0), DefaultQueryMaxBytes)
	gatherer, err := gathererOf(&o)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, log: o.Logger, mux: http.NewServeMux(), now: time.Now, m: m}
	s.hs = httpServer(&o, s)
	s.hs.ErrorLog = slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn)

	write := o.Verifier.Require(auth.ScopeEventsWrite)
	read := o.Verifier.Require(auth.ScopeAuditRead)
	routes := []struct {
		pattern string
		h       http.Handler
	}{
		{"POST /v1/events", write(http.HandlerFunc(s.ingest))},
		{"GET /v1/events", read(http.HandlerFunc(s.list))},
		{"GET /v1/events/{id}", read(http.HandlerFunc(s.get))},
		{"GET /v1/ledger", read(http.HandlerFunc(s.ledger))},
		{"GET /v1/ledger/logs", read(http.HandlerFunc(s.logs))},
		{"GET /v1/counts", read(http.HandlerFunc(s.counts))},
		{"GET /v1/totals", read(http.HandlerFunc(s.totals))},
		{"GET " + ui.Prefix, ui.Handler()},
		{"GET /{$}", http.RedirectHandler(ui.Prefix, http.StatusFound)},
		{"GET /v1/ledger/checkpoint", read(http.HandlerFunc(s.checkpoint))},
		{"GET /v1/ledger/proof/inclusion", read(http.HandlerFunc(s.inclusion))},
		{"GET /v1/ledger/proof/consistency", read(http.HandlerFunc(s.consistency))},
		{"GET /healthz", http.HandlerFunc(s.healthz)},
		{"GET /readyz", http.HandlerFunc(s.readyz)},
		{"GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn)})},
		// The same paths without a method catch the other methods.
		{"/v1/events", notAllowed("GET, HEAD, POST")},
		{"/v1/events/{id}", notAllowed("GET, HEAD")},
		{"/v1/ledger", notAllowed("GET, HEAD")},
		{"/v1/ledger/logs", notAllowed("GET, HEAD")},
		{"/v1/counts", notAllowed("GET, HEAD")},
		{"/v1/totals", notAllowed("GET, HEAD")},
		{ui.Prefix, notAllowed("GET, HEAD")},
		{"/v1/ledger/checkpoint", notAllowed("GET, HEAD")},
		{"/v1/ledger/proof/inclusion", notAllowed("GET, HEAD")},
		{"/v1/ledger/proof/consistency", notAllowed("GET, HEAD")},
		{"/healthz", notAllowed("GET, HEAD")},
		{"/readyz", notAllowed("GET, HEAD")},
		{"/metrics", notAllowed("GET, HEAD")},
		{"/", http.HandlerFunc(notFound)},
	}
	if o.Replays != nil {
		routes = append(routes, s.replayRoutes()...)
	}
	for _, rt := range routes {
		s.mux.Handle(rt.pattern, m.instrument(rt.pattern, rt.h))
	}
	return s, nil
}

// gathererOf settles what GET /metrics serves, giving o a Registerer.
func gathererOf(o *Options) (prometheus.Gatherer, error) {
	if o.Registerer != nil {
		if o.Gatherer != nil {
			return o.Gatherer, nil
		}
		if g, ok := o.Registerer.(prometheus.Gatherer); ok {
			return g, nil
		}
		return nil, errors.New("httpapi: Options.Gatherer is nil and Options.Registerer is no Gatherer: pass the registry as both")
	}
	own := prometheus.NewRegistry()
	o.Registerer = own
	if o.Gatherer == nil {
		return own, nil
	}
	return prometheus.Gatherers{o.Gatherer, own}, nil
}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Serve answers requests on ln until Shutdown, over TLS when certFile and
// keyFile (PEM) are given, holding at most Options.MaxConnections
// connections at once. It returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener, certFile, keyFile string) error {
	if (certFile == "") != (keyFile == "") {
		_ = ln.Close()
		return fmt.Errorf("httpapi: serve on %s: TLS needs both a certificate file (%q) and a key file (%q)", ln.Addr(), certFile, keyFile)
	}
	ln = limitListener(ln, s.o.MaxConnections)
	var err error
	if certFile != "" {
		// The 431 net/http writes inside TLS stays its own plain text.
		err = s.hs.ServeTLS(ln, certFile, keyFile)
	} else {
		err = s.hs.Serve(headerErrorListener{ln})
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("httpapi: serve on %s: %w", ln.Addr(), err)
	}
	return nil
}

// ListenAndServe listens on addr ("host:port") and calls Serve.
func (s *Server) ListenAndServe(addr, certFile, keyFile string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("httpapi: listen on %q: %w", addr, err)
	}
	return s.Serve(ln, certFile, keyFile)
}

// Shutdown stops accepting connections and waits for the requests in
// flight to finish, or for ctx to end; Serve then returns nil. An ingest
// cut short answers no 202, so its client sends it again.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.hs.Shutdown(ctx); err != nil {
		return fmt.Errorf("httpapi: shutdown: %w", err)
	}
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, `{"status":"ok"}`)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.o.Ready == nil {
		writeJSON(w, http.StatusOK, `{"status":"ready"}`)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
	defer cancel()
	// A check that ignores its context still gets its answer cut off.
	done := make(chan error, 1)
	go func() { done <- s.o.Ready(ctx) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = &NotReadyError{What: fmt.Sprintf("the readiness check did not answer within %s", ReadyTimeout), Err: ctx.Err()}
	}
	if err != nil {
		// The cause may name hosts, files or queries: it goes to the
		// log, and the answer says only which part is not ready.
		what := "a part of the server is not ready"
		if nr, ok := errors.AsType[*NotReadyError](err); ok {
			what = nr.What
		}
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "not ready", slog.String("what", what), slog.Any("error", err))
		apierror.Write(w, http.StatusServiceUnavailable, CodeNotReady, "not ready: "+what+"; the server's log has the cause")
		return
	}
	writeJSON(w, http.StatusOK, `{"status":"ready"}`)
}

// NotReadyError is an Options.Ready failure: What is the fixed text
// GET /readyz answers with ("the audit store does not answer"); Err, the
// cause, goes to the log only.
type NotReadyError struct {
	What string
	Err  error
}

func (e *NotReadyError) Error() string { return e.What + ": " + e.Err.Error() }
func (e *NotReadyError) Unwrap() error { return e.Err }

// endpoints lists the API for messages about unknown paths.
const endpoints = "POST /v1/events, GET /v1/events, GET /v1/events/{id}, GET /v1/ledger, GET /v1/ledger/logs, GET /v1/counts, GET /v1/totals, GET /ui/, GET /healthz, GET /readyz and GET /metrics"

func notFound(w http.ResponseWriter, r *http.Request) {
	apierror.Write(w, http.StatusNotFound, CodeNotFound,
		fmt.Sprintf("no endpoint at %q; this server has %s", clip(r.URL.Path), endpoints))
}

func notAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		apierror.Write(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed,
			fmt.Sprintf("%q does not accept %q; use %s", clip(r.URL.Path), clip(r.Method), strings.ReplaceAll(allow, ", HEAD", "")))
	})
}

// writeJSON answers with a fixed JSON body.
func writeJSON(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body + "\n"))
}

// clip shortens what a client sent before it is echoed in a message.
func clip(s string) string { return cliptext.Text(s, 200) }
