package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"
)

const serveUsage = `Usage: auditbus serve

Runs the router daemon: takes events from the configured transports and
from HTTP (POST /v1/events), routes them as the routes file says, records
every event in the audit store, and serves the audit query API, /healthz,
/readyz and /metrics.

Configuration comes from environment variables only (see README.md):
  AUDITBUS_LISTEN            HTTP address (default 127.0.0.1:8080)
  AUDITBUS_TLS_CERT_FILE, AUDITBUS_TLS_KEY_FILE   serve HTTPS
  AUDITBUS_INSECURE          allow a non-loopback address without auth keys
  AUDITBUS_AUTH_*            JWT keys (HS256 secret, PEM keys, JWKS file)
  AUDITBUS_DATA_DIR          embedded store directory (default ./data)
  AUDITBUS_REPLAY_DIR        replay jobs and checkpoints (default $AUDITBUS_DATA_DIR/replays)
  AUDITBUS_REPLAY_BATCH_SIZE events a replay reads and publishes at once (default 1000, at most 10000)
  AUDITBUS_REPLAY_MAX_JOBS   replay jobs running at once (default 8; 429 beyond)
  AUDITBUS_REPLAY_RETENTION  how long finished replay jobs are kept (default 7d)
  AUDITBUS_STORE             sqlite (default) or clickhouse (AUDITBUS_CLICKHOUSE_*)
  AUDITBUS_LEDGER_LOG        the log this instance appends ledger entries to (default the host name)
  AUDITBUS_SQLITE_RETENTION  keep the SQLite ledger this long, e.g. 30d or 720h (default: keep everything)
  AUDITBUS_TRANSPORTS        mem,kafka,amqp (default mem; AUDITBUS_KAFKA_*, AUDITBUS_AMQP_*)
  AUDITBUS_DEFAULT_TRANSPORT, AUDITBUS_DEFAULT_TOPIC   where POST /v1/events?topic= goes
  AUDITBUS_ROUTES            routes file (YAML)
  AUDITBUS_SIGNERS_FILE      signer registry (YAML): verify every event taken in
  AUDITBUS_MAX_BODY_BYTES    largest ingest request (default 4 MiB)
  AUDITBUS_MAX_HEADER_BYTES  largest request headers (default 64 KiB)
  AUDITBUS_QUERY_MAX_BYTES   largest audit query page; it ends early with a cursor (default 16 MiB)
                             and largest answer of GET /v1/events/{id} (409 past it)
  AUDITBUS_MAX_CONNECTIONS   HTTP connections served at once (default 1024)
  AUDITBUS_HTTP_READ_TIMEOUT, AUDITBUS_HTTP_WRITE_TIMEOUT, AUDITBUS_HTTP_IDLE_TIMEOUT   (default 30s, 60s, 60s)
  AUDITBUS_WEBHOOK_ALLOW     internal hosts and CIDRs webhooks given through the API may reach
  AUDITBUS_WEBHOOK_DENY      hosts and CIDRs no webhook may reach
  AUDITBUS_SHUTDOWN_TIMEOUT  drain time on SIGTERM (default 30s)
  AUDITBUS_LOG_LEVEL         debug, info, warn, error (default info)

With no variables at all it runs the embedded default: the mem transport,
the SQLite store under ./data and HTTP on 127.0.0.1:8080, without auth.

Exit codes: 0 stopped cleanly, 1 failed while running or draining, or
the audit store or the address could not be opened, 2 bad usage or
configuration.
`

// Main runs `auditbus serve` with args until ctx ends, and returns its exit
// code. Logs go to stderr as JSON lines.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, serveUsage) }
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "auditbus serve: unexpected argument %q; configuration comes from AUDITBUS_* variables (auditbus serve --help)\n", fs.Arg(0))
		return 2
	}
	cfg, err := ConfigFromEnv()
	if err != nil {
		fmt.Fprintf(stderr, "auditbus serve: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	d, err := Start(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "auditbus serve: %v\n", err)
		if _, ok := errors.AsType[*runtimeError](err); ok {
			return 1
		}
		return 2
	}
	served := make(chan error, 1)
	go func() { served <- d.Serve() }()
	code := 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping: draining in-flight events", "timeout", cfg.ShutdownTimeout.String())
			break wait
		case err := <-served:
			log.Error("HTTP server failed", "error", err)
			code = 1
			break wait
		case <-tick.C:
			if err := d.Err(); err != nil {
				log.Error("a route stopped", "error", err)
				code = 1
				break wait
			}
		}
	}
	dctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := d.Close(dctx); err != nil {
		log.Error("drain failed", "error", err)
		return 1
	}
	log.Info("stopped")
	return code
}
