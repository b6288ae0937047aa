package clickhouse

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"regexp"
	"time"

	"github.com/auditbus/auditbus/pkg/envconf"
	"github.com/auditbus/auditbus/sinks"
)

// Compat says how the store talks to old servers.
type Compat string

// Compat values.
const (
	// CompatAuto asks the server its version on Open and uses the legacy
	// wire path (LegacyDialer) only for servers older than 19.1.
	CompatAuto Compat = "auto"
	// CompatLegacy always uses LegacyDialer.
	CompatLegacy Compat = "legacy"
	// CompatOff never does: the driver's own path, as for modern servers.
	CompatOff Compat = "off"
)

// Config holds the store's settings. Zero fields take the defaults shown;
// ConfigFromEnv fills one from AUDITBUS_CLICKHOUSE_* variables.
type Config struct {
	// Addrs are host:port native-protocol addresses (default
	// 127.0.0.1:9000); the driver picks among them.
	Addrs []string
	// Database and Table name where the ledger goes (defaults "auditbus"
	// and "events"): its tables are named Table+"_versions",
	// "_identities", "_entries", "_trails", "_keys" and "_logs", with the
	// views feeding some of them ("_identities_mv" ...) and
	// Table+"_schema_version" beside them. Names are identifiers: letters,
	// digits and underscores, not starting with a digit.
	Database string
	Table    string
	// Log names the log this store appends entries to (default
	// sinks.DefaultLogName()): each writer of a shared database needs its
	// own. See sinks.ValidLogName.
	Log string
	// Username and Password authenticate (default user "default", no
	// password).
	Username string
	Password string
	// TLS, when set, encrypts the connection.
	TLS *tls.Config
	// Cluster, when set, adds ON CLUSTER to every DDL statement and makes
	// the tables ReplicatedReplacingMergeTree with the path
	// /clickhouse/tables/{shard}/<database>.<table> and replica {replica},
	// so the servers need those macros. The store reads and writes the
	// tables on the node it is connected to.
	Cluster string
	// Retention, when positive, is how long the ledger is kept: versions
	// by when they were first stored, entries by their time. Servers that
	// have TTLs (19.6 and later) get one; on older ones the whole days
	// older than the retention are dropped (see Store.Retain) at Open and
	// hourly while the store is open.
	Retention time.Duration
	// Timeout bounds each call (each round of a Scan), on top of its
	// context (default 30s): a server that stops answering fails the call
	// instead of hanging it.
	Timeout time.Duration
	// DialTimeout bounds connecting (default 5s).
	DialTimeout time.Duration
	// Compat selects the wire path for old servers (default CompatAuto).
	Compat Compat
	// NoCompression turns off LZ4 compression of the data blocks sent and
	// received (on by default, as in clickhouse-client).
	NoCompression bool
	// DialContext, when set, opens the connections (with TLS left to it);
	// for tests, proxies and tunnels. The legacy path wraps it.
	DialContext func(ctx context.Context, addr string) (net.Conn, error)
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// withDefaults fills zero fields and checks the names that become SQL
// identifiers, naming the bad field.
func (c Config) withDefaults() (Config, error) {
	if len(c.Addrs) == 0 {
		c.Addrs = []string{"127.0.0.1:9000"}
	}
	if c.Database == "" {
		c.Database = "auditbus"
	}
	if c.Table == "" {
		c.Table = "events"
	}
	if c.Username == "" {
		c.Username = "default"
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.Compat == "" {
		c.Compat = CompatAuto
	}
	if c.Log == "" {
		c.Log = sinks.DefaultLogName()
	}
	var errs []error
	if err := sinks.ValidLogName(c.Log); err != nil {
		errs = append(errs, fmt.Errorf("field Log: %w", err))
	}
	for _, f := range []struct{ name, v string }{{"Database", c.Database}, {"Table", c.Table}} {
		if !identRE.MatchString(f.v) {
			errs = append(errs, fmt.Errorf("field %s %q: want letters, digits and underscores, not starting with a digit", f.name, f.v))
		}
	}
	if c.Cluster != "" && !identRE.MatchString(c.Cluster) {
		errs = append(errs, fmt.Errorf("field Cluster %q: want letters, digits and underscores, not starting with a digit", c.Cluster))
	}
	for _, a := range c.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("field Addrs: %q is not host:port", a))
		}
	}
	switch c.Compat {
	case CompatAuto, CompatLegacy, CompatOff:
	default:
		errs = append(errs, fmt.Errorf("field Compat %q: want auto, legacy or off", c.Compat))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("field Retention %v: must not be negative", c.Retention))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("clickhouse: configuration: %w", err)
	}
	return c, nil
}

// EnvPrefix is the prefix of the environment variables ConfigFromEnv reads.
const EnvPrefix = "AUDITBUS_CLICKHOUSE_"

// ConfigFromEnv builds a Config from the environment:
//
//	AUDITBUS_CLICKHOUSE_ADDRS            comma-separated host:port native addresses (default 127.0.0.1:9000)
//	AUDITBUS_CLICKHOUSE_DATABASE         database (default auditbus)
//	AUDITBUS_CLICKHOUSE_TABLE            prefix of the ledger's tables (default events)
//	AUDITBUS_CLICKHOUSE_USERNAME         user (default default)
//	AUDITBUS_CLICKHOUSE_PASSWORD         password (default none)
//	AUDITBUS_CLICKHOUSE_CLUSTER          cluster name for ON CLUSTER DDL and replicated tables
//	AUDITBUS_CLICKHOUSE_RETENTION        how long records are kept, e.g. 720h (default forever)
//	AUDITBUS_CLICKHOUSE_TIMEOUT          bound on each call (default 30s)
//	AUDITBUS_CLICKHOUSE_DIAL_TIMEOUT     bound on connecting (default 5s)
//	AUDITBUS_CLICKHOUSE_COMPAT           auto (default), legacy or off: the wire path for servers before 19.1
//	AUDITBUS_CLICKHOUSE_COMPRESSION      lz4 (default) or none, for data blocks
//	AUDITBUS_CLICKHOUSE_TLS              true to use TLS (implied by the files below)
//	AUDITBUS_CLICKHOUSE_TLS_CA           PEM file of CAs to trust
//	AUDITBUS_CLICKHOUSE_TLS_CERT         PEM client certificate, for mutual TLS
//	AUDITBUS_CLICKHOUSE_TLS_KEY          PEM key of the client certificate
//	AUDITBUS_CLICKHOUSE_TLS_SERVER_NAME  name to verify the server's certificate against
//
// Errors name every bad variable and what it accepts.
func ConfigFromEnv() (Config, error) {
	return configFrom(envconf.New(EnvPrefix))
}

func configFrom(r *envconf.Reader) (Config, error) {
	c := Config{
		Addrs:       r.List("ADDRS", nil),
		Database:    r.String("DATABASE", ""),
		Table:       r.String("TABLE", ""),
		Username:    r.String("USERNAME", ""),
		Password:    r.String("PASSWORD", ""),
		Cluster:     r.String("CLUSTER", ""),
		Retention:   r.Duration("RETENTION", 0),
		Timeout:     r.Duration("TIMEOUT", 0),
		DialTimeout: r.Duration("DIAL_TIMEOUT", 0),
		Compat:      Compat(r.Enum("COMPAT", string(CompatAuto), string(CompatAuto), string(CompatLegacy), string(CompatOff))),
		TLS:         r.TLS(),
	}
	c.NoCompression = r.Enum("COMPRESSION", "lz4", "lz4", "none") == "none"
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("auditbus: clickhouse configuration: %w", err)
	}
	// Field names in withDefaults' errors map to variables here.
	var errs []error
	for _, f := range []struct{ name, v string }{{"DATABASE", c.Database}, {"TABLE", c.Table}, {"CLUSTER", c.Cluster}} {
		if f.v != "" && !identRE.MatchString(f.v) {
			errs = append(errs, fmt.Errorf("%s=%q: want letters, digits and underscores, not starting with a digit", r.Name(f.name), f.v))
		}
	}
	for _, a := range c.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port", r.Name("ADDRS"), a))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("auditbus: clickhouse configuration: %w", err)
	}
	return c, nil
}
