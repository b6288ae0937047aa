package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/auditbus/auditbus/pkg/egress"
	"github.com/auditbus/auditbus/pkg/envconf"
	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/auditbus/auditbus/pkg/tracing"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/ledgertree"
)

// Config is the daemon's configuration, read from AUDITBUS_* variables by
// ConfigFromEnv. The zero-variable configuration is the embedded default:
// the mem transport, the SQLite store under ./data, HTTP on 127.0.0.1:8080.
type Config struct {
	// Listen is the HTTP address. AUDITBUS_LISTEN, default 127.0.0.1:8080.
	Listen string
	// TLSCertFile and TLSKeyFile serve HTTPS when both are set.
	// AUDITBUS_TLS_CERT_FILE, AUDITBUS_TLS_KEY_FILE.
	TLSCertFile, TLSKeyFile string
	// Insecure allows a non-loopback listener without auth keys.
	// AUDITBUS_INSECURE, default false.
	Insecure bool
	// DataDir holds the embedded store. AUDITBUS_DATA_DIR, default ./data.
	DataDir string
	// ReplayDir holds the replay jobs and their checkpoints.
	// AUDITBUS_REPLAY_DIR, default DataDir/replays.
	ReplayDir string
	// ReplayBatchSize is how many events a replay reads and publishes at
	// once. AUDITBUS_REPLAY_BATCH_SIZE, default 1000, at most 10000:
	// stores whose page reads cost much whatever their size (ClickHouse
	// before 19.x) replay faster with larger batches.
	ReplayBatchSize int
	// ReplayMaxJobs bounds the replay jobs running at once (429 beyond).
	// AUDITBUS_REPLAY_MAX_JOBS, default 8.
	ReplayMaxJobs int
	// ReplayRetention is how long a finished replay job and its files are
	// kept. AUDITBUS_REPLAY_RETENTION, a Go duration or days ("7d"),
	// default 7 days.
	ReplayRetention time.Duration
	// Transports are the enabled transports. AUDITBUS_TRANSPORTS: a
	// comma-separated list of mem, kafka, amqp; default mem.
	Transports []string
	// DefaultTransport and DefaultTopic receive POST /v1/events?topic=.
	// AUDITBUS_DEFAULT_TRANSPORT (default: the first of Transports) and
	// AUDITBUS_DEFAULT_TOPIC (default events).
	DefaultTransport, DefaultTopic string
	// Store is the audit store: sqlite or clickhouse. AUDITBUS_STORE,
	// default sqlite.
	Store string
	// LedgerLog names the log this instance appends its ledger entries
	// to, in either store: every instance writing one store needs its
	// own. AUDITBUS_LEDGER_LOG, default sinks.DefaultLogName() (the host
	// name, a pod's name on Kubernetes).
	LedgerLog string
	// SQLiteRetention, when positive, is how long the SQLite store keeps
	// the ledger: the daemon removes the whole days older than that at
	// start and hourly. AUDITBUS_SQLITE_RETENTION, a Go duration ("720h")
	// or days ("30d"); default off, keeping everything. The ClickHouse
	// store has its own, AUDITBUS_CLICKHOUSE_RETENTION.
	SQLiteRetention time.Duration
	// Routes is the routes file. AUDITBUS_ROUTES; none by default.
	Routes string
	// SignersFile is the signer registry (package signers): the keys that
	// may sign events, and for which sources and types. With it every
	// event taken in is verified and its received entry says what was
	// found; without it nothing is verified, and a route with
	// signatures: required does not start. AUDITBUS_SIGNERS_FILE; none by
	// default.
	SignersFile string
	// MaxBodyBytes bounds an ingest request. AUDITBUS_MAX_BODY_BYTES,
	// default 4 MiB.
	MaxBodyBytes int
	// ShutdownTimeout bounds the drain on SIGTERM. AUDITBUS_SHUTDOWN_TIMEOUT,
	// default 30s.
	ShutdownTimeout time.Duration
	// LogLevel is debug, info, warn or error. AUDITBUS_LOG_LEVEL, default info.
	LogLevel slog.Level
	// WebhookAllow and WebhookDeny are CIDRs, addresses and host names
	// (".example.com" for a domain) webhooks may and may not reach (see
	// package egress). AUDITBUS_WEBHOOK_ALLOW, AUDITBUS_WEBHOOK_DENY,
	// comma-separated; none by default: webhooks given through the API
	// may not reach internal addresses, the routes file's may.
	WebhookAllow, WebhookDeny []string
	// Resolver looks up the host names of webhooks, for the egress
	// policy's checks and for the connections; nil is net.DefaultResolver.
	// Not read from the environment: for programs that embed the daemon.
	Resolver *net.Resolver
	// Tracing is the OpenTelemetry setup the standard OTEL_* variables
	// give; off unless an OTLP endpoint is set.
	Tracing tracing.Config
	// LedgerSigningKeyFile holds the signed-note private key (auditbus
	// keygen --private) that signs the ledger's checkpoints.
	// AUDITBUS_LEDGER_SIGNING_KEY_FILE; without it checkpoints are
	// unsigned, which no verifier accepts.
	LedgerSigningKeyFile string
	// LedgerCheckpointInterval is the least time between two checkpoints
	// of the log while entries arrive. AUDITBUS_LEDGER_CHECKPOINT_INTERVAL,
	// default 1s.
	LedgerCheckpointInterval time.Duration
	// HTTPReadTimeout bounds reading a request, HTTPWriteTimeout writing
	// its answer, HTTPIdleTimeout a keep-alive connection between
	// requests. AUDITBUS_HTTP_READ_TIMEOUT (default 30s),
	// AUDITBUS_HTTP_WRITE_TIMEOUT (60s), AUDITBUS_HTTP_IDLE_TIMEOUT (60s).
	HTTPReadTimeout, HTTPWriteTimeout, HTTPIdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's headers (431 beyond).
	// AUDITBUS_MAX_HEADER_BYTES, default 64 KiB.
	MaxHeaderBytes int
	// MaxConnections bounds the HTTP connections open at once; more wait
	// in the listen backlog. AUDITBUS_MAX_CONNECTIONS, default 1024.
	MaxConnections int
	// PolicyFile restricts principals by subject: the topics, routes,
	// sources and types each may publish and read (see package perms).
	// AUDITBUS_POLICY_FILE; none by default. It needs authentication on.
	PolicyFile string
	// QueryMaxBytes bounds one page of the audit query in bytes: it ends
	// early with a cursor. AUDITBUS_QUERY_MAX_BYTES, default 16 MiB.
	QueryMaxBytes int
}

// transportNames are the transports the daemon knows.
var transportNames = []string{"mem", "kafka", "amqp"}

// ConfigFromEnv reads Config from the process environment. The error
// names every bad variable and what it accepts.
func ConfigFromEnv() (Config, error) {
	c, err := configFrom(envconf.New("AUDITBUS_"))
	tc, terr := tracing.ConfigFromEnv()
	c.Tracing = tc
	if terr != nil {
		err = errors.Join(err, terr)
	}
	return c, err
}

func configFrom(r *envconf.Reader) (Config, error) {
	c := Config{
		Listen:          r.String("LISTEN", "127.0.0.1:8080"),
		TLSCertFile:     r.String("TLS_CERT_FILE", ""),
		TLSKeyFile:      r.String("TLS_KEY_FILE", ""),
		Insecure:        r.Bool("INSECURE", false),
		DataDir:         r.String("DATA_DIR", "data"),
		Transports:      r.List("TRANSPORTS", []string{"mem"}),
		DefaultTopic:    r.String("DEFAULT_TOPIC", "events"),
		Store:           r.Enum("STORE", "sqlite", "sqlite", "clickhouse"),
		Routes:          r.String("ROUTES", ""),
		PolicyFile:      r.String("POLICY_FILE", ""),
		SignersFile:     r.String("SIGNERS_FILE", ""),
		MaxBodyBytes:    r.Int("MAX_BODY_BYTES", 4<<20, 1024),
		ShutdownTimeout: r.Duration("SHUTDOWN_TIMEOUT", 30*time.Second),
		WebhookAllow:    r.List("WEBHOOK_ALLOW", nil),
		WebhookDeny:     r.List("WEBHOOK_DENY", nil),

		LedgerSigningKeyFile:     r.String("LEDGER_SIGNING_KEY_FILE", ""),
		LedgerCheckpointInterval: r.Duration("LEDGER_CHECKPOINT_INTERVAL", time.Second),
	}
	c.ReplayDir = r.String("REPLAY_DIR", filepath.Join(c.DataDir, "replays"))
	c.HTTPReadTimeout = r.Duration("HTTP_READ_TIMEOUT", httpapi.DefaultReadTimeout)
	c.HTTPWriteTimeout = r.Duration("HTTP_WRITE_TIMEOUT", httpapi.DefaultWriteTimeout)
	c.HTTPIdleTimeout = r.Duration("HTTP_IDLE_TIMEOUT", httpapi.DefaultIdleTimeout)
	c.MaxHeaderBytes = r.Int("MAX_HEADER_BYTES", httpapi.DefaultMaxHeaderBytes, 4096)
	c.MaxConnections = r.Int("MAX_CONNECTIONS", httpapi.DefaultMaxConnections, 1)
	c.QueryMaxBytes = r.Int("QUERY_MAX_BYTES", httpapi.DefaultQueryMaxBytes, 64<<10)
	c.ReplayBatchSize = r.Int("REPLAY_BATCH_SIZE", 1000, 1)
	c.ReplayMaxJobs = r.Int("REPLAY_MAX_JOBS", replay.DefaultMaxJobs, 1)
	c.ReplayRetention = replay.DefaultRetention
	var errs []error
	c.LedgerLog = r.String("LEDGER_LOG", sinks.DefaultLogName())
	if err := sinks.ValidLogName(c.LedgerLog); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", r.Name("LEDGER_LOG"), err))
	}
	if v := r.String("SQLITE_RETENTION", ""); v != "" {
		var err error
		if c.SQLiteRetention, err = parseRetention(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", r.Name("SQLITE_RETENTION"), v, err))
		} else if c.Store != "sqlite" {
			errs = append(errs, fmt.Errorf("%s: applies to the sqlite store, and %s is %s (set AUDITBUS_CLICKHOUSE_RETENTION instead)",
				r.Name("SQLITE_RETENTION"), r.Name("STORE"), c.Store))
		}
	}
	if v := r.String("REPLAY_RETENTION", ""); v != "" {
		d, err := time.ParseDuration(v)
		if n, ok := strings.CutSuffix(v, "d"); ok {
			var days int
			if days, err = strconv.Atoi(n); days > 100_000 {
				days = 0 // past it, the duration would overflow
			}
			d = time.Duration(days) * 24 * time.Hour
		}
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a Go duration such as \"168h\", or days such as \"7d\"", r.Name("REPLAY_RETENTION"), v))
		}
		c.ReplayRetention = d
	}
	if _, _, err := egress.New(c.WebhookAllow, c.WebhookDeny); err != nil {
		errs = append(errs, err)
	}
	if c.LedgerCheckpointInterval <= 0 {
		errs = append(errs, fmt.Errorf("%s: %s is not positive; give a Go duration such as 1s", r.Name("LEDGER_CHECKPOINT_INTERVAL"), c.LedgerCheckpointInterval))
	}
	if c.LedgerSigningKeyFile != "" {
		if _, err := ledgertree.LoadSigner(c.LedgerSigningKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Name("LEDGER_SIGNING_KEY_FILE"), err))
		}
	}
	if c.ReplayBatchSize > sinks.MaxLimit {
		errs = append(errs, fmt.Errorf("%s: %d is more than the audit store's largest page, %d", r.Name("REPLAY_BATCH_SIZE"), c.ReplayBatchSize, sinks.MaxLimit))
	}
	for _, t := range c.Transports {
		if !slices.Contains(transportNames, t) {
			errs = append(errs, fmt.Errorf("%s: %q is not a transport (accepted: %s)", r.Name("TRANSPORTS"), t, strings.Join(transportNames, ", ")))
		}
	}
	if len(c.Transports) == 0 {
		errs = append(errs, fmt.Errorf("%s: empty; name at least one of %s", r.Name("TRANSPORTS"), strings.Join(transportNames, ", ")))
	} else {
		c.DefaultTransport = r.String("DEFAULT_TRANSPORT", c.Transports[0])
		if !slices.Contains(c.Transports, c.DefaultTransport) {
			errs = append(errs, fmt.Errorf("%s: %q is not among the enabled transports %s (%s)", r.Name("DEFAULT_TRANSPORT"),
				c.DefaultTransport, strings.Join(c.Transports, ","), r.Name("TRANSPORTS")))
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, fmt.Errorf("%s and %s: set both to serve HTTPS, or neither", r.Name("TLS_CERT_FILE"), r.Name("TLS_KEY_FILE")))
	}
	switch lvl := r.Enum("LOG_LEVEL", "info", "debug", "info", "warn", "error"); lvl {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "warn":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	}
	if err := r.Err(); err != nil {
		errs = append([]error{err}, errs...)
	}
	if len(errs) > 0 {
		return c, joinLines(errs)
	}
	return c, nil
}

// parseRetention reads a retention: a Go duration ("720h") or a whole
// number of days ("30d"), at least one day since the store removes whole
// days.
func parseRetention(v string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 1 || days > 100_000 {
			return 0, errors.New(`want a number of days such as "30d", or a Go duration such as "720h"`)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, errors.New(`want a Go duration such as "720h", or a number of days such as "30d"`)
		}
	}
	if d < 24*time.Hour {
		return 0, fmt.Errorf("%s is less than a day; the store removes whole days", d)
	}
	return d, nil
}

// joinLines joins errors one per line, as a start-up report.
func joinLines(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("bad configuration:\n  %s", strings.Join(msgs, "\n  "))
}
