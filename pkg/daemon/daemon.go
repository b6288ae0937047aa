// Package daemon assembles `auditbus serve`: it reads the configuration,
// opens the transports and the audit store, runs the routes and the HTTP
// API, and on SIGTERM drains everything in order.
package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/amqp"
	"github.com/auditbus/auditbus/bus/kafka"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/auditbus/auditbus/pkg/auth"
	"github.com/auditbus/auditbus/pkg/egress"
	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/auditbus/auditbus/pkg/perms"
	"github.com/auditbus/auditbus/pkg/refusal"
	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/pkg/signers"
	"github.com/auditbus/auditbus/pkg/tracing"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/clickhouse"
	"github.com/auditbus/auditbus/sinks/ledgertree"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Daemon is a running `auditbus serve`.
type Daemon struct {
	cfg    Config
	log    *slog.Logger
	store  sinks.Store
	writer *sinks.Writer
	trs    map[string]bus.Transport
	router *router.Router
	// replays runs the replay jobs; nil until started.
	replays *replay.Manager
	drains  []bus.Subscription
	api     *httpapi.Server
	ln      net.Listener
	// stopRetention ends the retention loop, which closes retained.
	stopRetention context.CancelFunc
	retained      chan struct{}
	// tracing exports spans; it is flushed last, after the writer.
	tracing *tracing.Provider
	// tree extends the log's Merkle tree and signs its checkpoints; it
	// closes after the writer, before the store.
	tree *ledgertree.Builder
	// routing is the context the routes' handlers run under. Start's
	// context does not end it: Main's ends at SIGTERM, and the batches in
	// flight must then finish (delivered, audited, acknowledged), not be
	// cut short with their events delivered and not yet audited. Close
	// ends it when its own context ends, the drain time being up.
	routing    context.Context
	endRouting context.CancelFunc
}

// retentionEvery is how often the SQLite store's retention runs.
const retentionEvery = time.Hour

// Start opens everything cfg names and starts serving. Close it to drain.
// The end of ctx does not stop the routes (Close does), so that a batch in
// flight when ctx ends still finishes. Errors name the setting or file at
// fault.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (_ *Daemon, err error) {
	d := &Daemon{cfg: cfg, log: log, trs: map[string]bus.Transport{}}
	d.routing, d.endRouting = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			d.shutdown(context.Background())
		}
	}()
	var routes []router.RouteConfig
	if cfg.Routes != "" {
		if routes, err = router.LoadRoutes(cfg.Routes); err != nil {
			return nil, err
		}
	}
	// A nil *signers.Registry must not become a non-nil interface: the
	// router and the ingest skip verification only on a nil checker.
	var sigs router.SignatureChecker
	if cfg.SignersFile != "" {
		reg, err := signers.Load(cfg.SignersFile)
		if err != nil {
			return nil, err
		}
		sigs = reg
		log.Info("signer registry loaded: every event taken in is verified", "file", cfg.SignersFile, "keys", reg.KeyIDs())
	}
	authCfg, err := auth.ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	if cfg.PolicyFile != "" {
		if authCfg.Policy, err = perms.LoadPolicy(cfg.PolicyFile); err != nil {
			return nil, fmt.Errorf("AUDITBUS_POLICY_FILE: %w", err)
		}
	}
	verifier, err := auth.New(authCfg)
	if err != nil {
		return nil, err
	}
	if err := auth.CheckListen(cfg.Listen, verifier.Configured(), cfg.Insecure); err != nil {
		return nil, err
	}
	if cfg.PolicyFile != "" && !verifier.Configured() {
		return nil, fmt.Errorf("AUDITBUS_POLICY_FILE %q: the policy restricts principals by their token, and authentication is off; "+
			"set AUDITBUS_AUTH_* keys (or AUDITBUS_AUTH_MACAROON_KEY_FILE), or unset AUDITBUS_POLICY_FILE", cfg.PolicyFile)
	}
	warnAuth(log, cfg, authCfg, verifier)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerBuildInfo(reg)

	version, _, _ := buildInfo()
	if d.tracing, err = tracing.New(ctx, cfg.Tracing, version); err != nil {
		return nil, err
	}
	tr := d.tracing.Tracer()
	if tr != nil {
		tracing.LogErrors(log, time.Minute)
		log.Info("tracing on", "endpoint", cfg.Tracing.Endpoint, "protocol", cfg.Tracing.Protocol,
			"service", cfg.Tracing.ServiceName, "sampler", cfg.Tracing.SamplerName)
	}

	if d.store, err = openStore(ctx, cfg); err != nil {
		return nil, err
	}
	if err := d.startTree(ctx, reg); err != nil {
		return nil, err
	}
	d.writer = sinks.NewWriter(d.store, sinks.WriterOptions{Metrics: newWriterMetrics(reg, log), Tracer: tr})
	if cfg.SQLiteRetention > 0 {
		rctx, stop := context.WithCancel(context.Background())
		d.stopRetention, d.retained = stop, make(chan struct{})
		go d.retain(rctx)
	}

	// The poison callbacks need the router, which needs the transports.
	var rt *router.Router
	poison := func(ctx context.Context, p router.Poison) error {
		if rt == nil {
			return errors.New("the router is not running yet")
		}
		return rt.Poison(ctx, p)
	}
	if err := d.openTransports(cfg, poison); err != nil {
		return nil, err
	}
	kt, _ := d.trs["kafka"].(*kafka.Transport)
	at, _ := d.trs["amqp"].(*amqp.Transport)
	if kt != nil || at != nil {
		registerBrokerMetrics(reg, kt, at, log)
	}
	strict, trusted, err := egress.New(cfg.WebhookAllow, cfg.WebhookDeny)
	if err != nil {
		return nil, err
	}
	strict, trusted = strict.WithResolver(cfg.Resolver), trusted.WithResolver(cfg.Resolver)
	refusals := refusal.NewMetrics(reg, append([]string{httpapi.TransportHTTP}, cfg.Transports...)...)
	rt, err = router.New(routes, router.Options{
		Transports: d.trs, Audit: d.writer, Metrics: router.NewMetrics(reg), Logger: log, Egress: trusted, Tracer: tr,
		Signatures: sigs, Refusals: refusals,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Routes, err)
	}
	d.router = rt
	if err := d.drainMemTopics(d.routing, routes); err != nil {
		return nil, err
	}
	if err := rt.Start(d.routing); err != nil {
		return nil, err
	}

	dests := newDestinations(d.trs, rt, cfg.ReplayDir, strict, trusted)
	if d.replays, err = replay.NewManager(replay.Options{
		Dir: cfg.ReplayDir, Store: d.store, Resolve: dests.Resolve, Audit: d.writer, BatchSize: cfg.ReplayBatchSize, Logger: log, Tracer: tr,
		Metrics: replay.NewMetrics(reg),
		MaxJobs: cfg.ReplayMaxJobs, Retention: cfg.ReplayRetention, Removed: dests.forget,
	}); err != nil {
		return nil, fmt.Errorf("AUDITBUS_REPLAY_DIR %q: %w", cfg.ReplayDir, err)
	}
	d.resumeReplays()

	api, err := httpapi.New(httpapi.Options{
		Refusals: refusals,
		Verifier: verifier, Store: d.store, Audit: d.writer, Router: rt, Replays: d.replays, Destinations: dests,
		Transport: d.trs[cfg.DefaultTransport], TransportName: cfg.DefaultTransport, DefaultTopic: cfg.DefaultTopic, Signatures: sigs,
		MaxBodyBytes: int64(cfg.MaxBodyBytes), Ready: d.ready,
		Gatherer: reg, Registerer: reg, Logger: log, Tracer: tr,
		ReadTimeout: cfg.HTTPReadTimeout, WriteTimeout: cfg.HTTPWriteTimeout, IdleTimeout: cfg.HTTPIdleTimeout,
		MaxHeaderBytes: cfg.MaxHeaderBytes, MaxConnections: cfg.MaxConnections, QueryMaxBytes: cfg.QueryMaxBytes,
	})
	if err != nil {
		return nil, err
	}
	if d.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, &runtimeError{fmt.Errorf("AUDITBUS_LISTEN %q: %w", cfg.Listen, err)}
	}
	d.api = api
	log.Info("auditbus serving", "addr", d.ln.Addr().String(), "tls", cfg.TLSCertFile != "", "store", cfg.Store, "ledger_log", cfg.LedgerLog,
		"transports", cfg.Transports, "routes", len(routes), "auth", verifier.Configured())
	return d, nil
}

// Addr is the address the HTTP API listens on.
func (d *Daemon) Addr() net.Addr { return d.ln.Addr() }

// Serve serves HTTP until Close; it returns nil after a Close.
func (d *Daemon) Serve() error {
	return d.api.Serve(d.ln, d.cfg.TLSCertFile, d.cfg.TLSKeyFile)
}

// Err reports a route that stopped on its own.
func (d *Daemon) Err() error { return d.router.Err() }

// Close stops intake, lets every batch in flight finish (delivered,
// audited, acknowledged), flushes the audit writer and closes the
// transports and the store, giving up when ctx ends: whatever was not
// acknowledged by then is delivered again by its source after a restart.
func (d *Daemon) Close(ctx context.Context) error {
	// Once the drain time is up, the batches still in flight are cut short
	// and left to their sources.
	defer context.AfterFunc(ctx, d.endRouting)()
	done := make(chan error, 1)
	go func() { done <- d.shutdown(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("drain did not finish within AUDITBUS_SHUTDOWN_TIMEOUT (%s); unacknowledged events will be delivered again: %w", d.cfg.ShutdownTimeout, ctx.Err())
	}
}

func (d *Daemon) shutdown(ctx context.Context) error {
	var errs []error
	if d.api != nil {
		errs = append(errs, d.api.Shutdown(ctx))
	} else if d.ln != nil {
		errs = append(errs, d.ln.Close())
	}
	if d.replays != nil {
		// Jobs stop at a batch boundary with their checkpoint saved, and
		// stay running on disk: the next start resumes them.
		errs = append(errs, d.replays.Close())
	}
	if d.router != nil {
		errs = append(errs, d.router.Close())
	}
	for _, s := range d.drains {
		errs = append(errs, s.Close())
	}
	for name, t := range d.trs {
		if err := t.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s transport: %w", name, err))
		}
	}
	if d.writer != nil {
		errs = append(errs, d.writer.Close())
	}
	if d.tree != nil {
		errs = append(errs, d.tree.Close(ctx))
	}
	if d.stopRetention != nil {
		d.stopRetention()
		<-d.retained
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	errs = append(errs, d.tracing.Shutdown(ctx))
	d.endRouting()
	return errors.Join(errs...)
}

// resumeReplays continues the replay jobs that were running when the
// daemon last stopped, each from its checkpoint. A job whose destination
// is gone is marked failed and logged; the daemon starts regardless.
func (d *Daemon) resumeReplays() {
	jobs, err := d.replays.Resume()
	for _, j := range jobs {
		d.log.Info("replay job resumed from its checkpoint", "job", j.ID, "name", j.Request.Name,
			"destination", j.Request.Destination.String(), "done", j.Progress.Done, "total", j.Progress.Total)
	}
	if err != nil {
		d.log.Error("replay jobs could not be resumed; they are marked failed", "error", err)
	}
}

// ready checks that the store answers and every route runs.
func (d *Daemon) ready(ctx context.Context) error {
	if _, err := d.store.Query(ctx, sinks.Query{Limit: 1}); err != nil {
		return &httpapi.NotReadyError{What: "the audit store does not answer", Err: err}
	}
	if err := d.router.Err(); err != nil {
		return &httpapi.NotReadyError{What: "a route stopped", Err: err}
	}
	return nil
}

// retain removes the days of the ledger older than cfg.SQLiteRetention
// from the store, at once and then every retentionEvery, until ctx ends.
// A failed run is logged and tried again at the next.
func (d *Daemon) retain(ctx context.Context) {
	defer close(d.retained)
	tick := time.NewTicker(retentionEvery)
	defer tick.Stop()
	for {
		cutoff := time.Now().Add(-d.cfg.SQLiteRetention).UTC()
		n, err := d.store.Retain(ctx, cutoff)
		switch {
		case err != nil && ctx.Err() == nil:
			d.log.Warn("audit store retention failed; it runs again within the hour", "retention", d.cfg.SQLiteRetention.String(), "error", err)
		case n > 0:
			d.log.Info("audit store retention removed whole days", "days", n, "before", cutoff.Format(time.DateOnly))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// openStore opens the audit store cfg names. It returns a nil interface on
// error, never a typed nil the shutdown would call Close on. A store that
// is configured but cannot be opened is a *runtimeError naming the store,
// where it is and the variable to check.
func openStore(ctx context.Context, cfg Config) (sinks.Store, error) {
	switch cfg.Store {
	case "clickhouse":
		chCfg, err := clickhouse.ConfigFromEnv()
		if err != nil {
			return nil, err
		}
		chCfg.Log = cfg.LedgerLog
		s, err := clickhouse.Open(ctx, chCfg)
		if err != nil {
			return nil, storeError("clickhouse", strings.Join(chCfg.Addrs, ","), "AUDITBUS_CLICKHOUSE_ADDRS and the other AUDITBUS_CLICKHOUSE_* variables", err)
		}
		return s, nil
	default:
		path := filepath.Join(cfg.DataDir, sqlite.FileName)
		if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
			return nil, storeError("sqlite", path, "AUDITBUS_DATA_DIR", err)
		}
		s, err := sqlite.Open(ctx, cfg.DataDir, sqlite.Options{Log: cfg.LedgerLog})
		if err != nil {
			return nil, storeError("sqlite", path, "AUDITBUS_DATA_DIR", err)
		}
		return s, nil
	}
}

// storeError is an audit store that could not be opened, in one line.
func storeError(store, where, vars string, err error) error {
	cause := strings.Join(strings.Fields(err.Error()), " ")
	return &runtimeError{fmt.Errorf("the audit store %s at %s could not be opened (check %s): %s", store, where, vars, cause)}
}

// runtimeError is a Start failure that is not a bad setting but the world
// refusing: a store that does not answer, an address in use. Main exits 1
// on it, and 2 on the rest.
type runtimeError struct{ err error }

func (e *runtimeError) Error() string { return e.err.Error() }
func (e *runtimeError) Unwrap() error { return e.err }

func (d *Daemon) openTransports(cfg Config, poison func(context.Context, router.Poison) error) error {
	for _, name := range cfg.Transports {
		var t bus.Transport
		var err error
		switch name {
		case "mem":
			t = mem.New()
		case "kafka":
			var kc kafka.Config
			if kc, err = kafka.ConfigFromEnv(); err != nil {
				return err
			}
			kc.Logger = d.log
			kc.Poison = func(ctx context.Context, p kafka.Poison) error {
				m := p.Message
				return poison(ctx, router.Poison{
					Transport: "kafka", Topic: m.Topic, Group: p.Group, Partition: m.Partition, Offset: m.Offset,
					ID: fmt.Sprintf("%s/%d/%d", m.Topic, m.Partition, m.Offset), Payload: m.Value, Reason: p.Reason,
				})
			}
			t, err = kafka.New(kc)
		case "amqp":
			var ac amqp.Config
			if ac, err = amqp.ConfigFromEnv(); err != nil {
				return err
			}
			ac.Logger = d.log
			ac.Poison = func(ctx context.Context, p amqp.PoisonMessage) {
				id := p.Delivery.MessageId
				if id == "" {
					sum := sha256.Sum256(p.Delivery.Body)
					id = hex.EncodeToString(sum[:16])
				}
				err := poison(ctx, router.Poison{
					Transport: "amqp", Topic: p.Topic, Group: p.Group, ID: p.Queue + "/" + id, Payload: p.Delivery.Body, Reason: p.Err,
				})
				if err != nil {
					// The AMQP transport acknowledges poison messages
					// whatever the callback does; say loudly what is lost.
					d.log.Error("poison message could not be dead-lettered; it is dropped", "topic", p.Topic, "queue", p.Queue, "id", id, "error", err)
				}
			}
			t, err = amqp.New(ac)
		}
		if err != nil {
			return fmt.Errorf("%s transport: %w", name, err)
		}
		d.trs[name] = t
	}
	return nil
}

// drainMemTopics subscribes a drain to every mem topic that routes or the
// ingest write to but no route reads. The mem transport keeps nothing and
// refuses topics nobody reads; such events live on in the audit store only.
func (d *Daemon) drainMemTopics(ctx context.Context, routes []router.RouteConfig) error {
	t, ok := d.trs["mem"]
	if !ok {
		return nil
	}
	read := map[string]bool{}
	var written []string
	if d.cfg.DefaultTransport == "mem" {
		written = append(written, d.cfg.DefaultTopic)
	}
	for _, r := range routes {
		if r.Source.Transport == "mem" {
			read[r.Source.Topic] = true
		}
		for _, dc := range r.Destinations {
			if dc.Transport == "mem" {
				written = append(written, dc.Topic)
			}
		}
		if r.DeadLetter != nil && r.DeadLetter.Transport == "mem" {
			written = append(written, r.DeadLetter.Topic)
		}
	}
	for _, topic := range written {
		if read[topic] {
			continue
		}
		read[topic] = true
		sub, err := t.Subscribe(ctx, topic, "auditbus-drain", func(context.Context, []bus.Message) error { return nil }, bus.SubscribeConfig{})
		if err != nil {
			return fmt.Errorf("mem topic %q: %w", topic, err)
		}
		d.drains = append(d.drains, sub)
		d.log.Info("mem topic has no route reading it; its events are kept in the audit store only", "topic", topic)
	}
	return nil
}

// warnAuth logs what authentication leaves open: everything when it is
// off, tokens from any issuer, principals nobody restricted.
func warnAuth(log *slog.Logger, cfg Config, authCfg auth.Config, v *auth.Verifier) {
	switch {
	case !v.Configured():
		log.Warn("authentication is off: no AUDITBUS_AUTH_* keys are set; the API is open to anyone who can reach " + cfg.Listen)
		return
	case len(authCfg.Keys) > 0 && (authCfg.Issuer == "" || len(authCfg.Audience) == 0):
		log.Warn("tokens are accepted whoever issued them and whatever audience they name: set AUDITBUS_AUTH_ISSUER and AUDITBUS_AUTH_AUDIENCE so a token minted for another service is refused",
			"issuer_checked", authCfg.Issuer != "", "audience_checked", len(authCfg.Audience) > 0)
	}
	if authCfg.Policy.Len() == 0 {
		log.Warn("no principal is restricted: without AUDITBUS_POLICY_FILE, a token without permission claims (auditbus_source_prefixes, ...) or caveats may publish any source and type to any topic or route, and read every event")
	} else {
		log.Info("permissions policy loaded", "policy_file", cfg.PolicyFile, "principals", authCfg.Policy.Len())
	}
}
