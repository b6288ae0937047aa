package clickhouse

import (
	"context"
	"crypto/tls"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	schema "github.com/auditbus/auditbus/schemas/clickhouse"
	"github.com/auditbus/auditbus/sinks"
)

// Store is the ClickHouse audit store. It is safe for concurrent use.
type Store struct {
	cfg  Config
	n    names
	name string // for errors: "clickhouse <addrs> <db>.<table>"
	conn driver.Conn
	ver  serverVersion
	feat features

	// versionsMu makes Appends insert their versions one at a time; it
	// guards added, the last version's added_ns, and versionCommits'
	// list. entriesMu makes them insert their entries one at a time; it
	// guards seq, the last seq of the store's log, dirty, set when an
	// append's entries failed, and keyCommits' list. See Append.
	versionsMu, entriesMu sync.Mutex
	seq                   uint64
	dirty                 bool
	added                 int64
	// versionCommits and keyCommits are what the last commits of each
	// turn stored (see lookup.go); epoch counts failed appends and
	// recoveries. The counters are read without the mutexes when a lookup
	// begins.
	versionCommits commits[vkey]
	keyCommits     commits[[16]byte]
	epoch          atomic.Uint64

	// mu lets Close wait for calls in progress: they hold it shared.
	mu     sync.RWMutex
	closed atomic.Bool
	stop   chan struct{}
	done   chan struct{}
}

var (
	_ sinks.Store          = (*Store)(nil)
	_ sinks.VersionCounter = (*Store)(nil)
	_ sinks.Scanner        = (*Store)(nil)
)

// Open connects to ClickHouse, creates the database and tables or migrates
// them (refusing, with an error wrapping sinks.ErrSchemaTooNew, a schema
// written by a newer build), applies the retention and reads the last seq
// of the store's log. Errors name the store and its addresses.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	s, err := openAt(ctx, cfg, 0)
	if err != nil {
		return nil, err
	}
	err = s.applyRetention(ctx)
	if err == nil {
		s.seq, err = s.lastSeq(ctx)
	}
	if err != nil {
		_ = s.conn.Close()
		return nil, fmt.Errorf("%s: open: %w", s.name, err)
	}
	if cfg.Retention > 0 && !s.feat.ttl {
		go s.retentionLoop()
	} else {
		close(s.done)
	}
	return s, nil
}

// openAt connects and applies the migrations up to schema version upTo
// only, or all of them for 0: tests build older databases with it, and
// use the store it returns for its connection only.
func openAt(ctx context.Context, cfg Config, upTo int) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, n: namesOf(cfg), stop: make(chan struct{}), done: make(chan struct{})}
	s.name = fmt.Sprintf("clickhouse %s %s.%s", strings.Join(cfg.Addrs, ","), cfg.Database, cfg.Table)
	if err := s.connect(ctx); err != nil {
		return nil, err
	}
	ms, err := loadMigrations(schema.Migrations, s.n, s.feat)
	if upTo > 0 && upTo < len(ms) {
		ms = ms[:upTo]
	}
	if err == nil {
		err = migrate(ctx, s.conn, s.n, ms, s.name)
	}
	if err != nil {
		_ = s.conn.Close()
		return nil, err
	}
	return s, nil
}

// connect opens the connection pool on the wire path Compat selects and
// reads the server's version and features.
func (s *Store) connect(ctx context.Context) error {
	legacy := s.cfg.Compat == CompatLegacy
	for {
		conn, err := clickhouse.Open(s.options(legacy))
		if err == nil {
			err = conn.Ping(ctx)
		}
		var v string
		if err == nil {
			err = conn.QueryRow(ctx, "SELECT version()").Scan(&v)
		}
		if err == nil {
			s.ver, err = parseVersion(v)
		}
		if err != nil {
			if conn != nil {
				_ = conn.Close()
			}
			return fmt.Errorf("%s: connect: %w", s.name, err)
		}
		s.feat = featuresOf(s.ver)
		if s.cfg.Compat == CompatAuto && s.feat.legacyWire && !legacy {
			// Reconnect on the legacy path; the first pool only asked.
			_ = conn.Close()
			legacy = true
			continue
		}
		s.feat.legacyWire = legacy
		s.conn = conn
		return nil
	}
}

func (s *Store) options(legacy bool) *clickhouse.Options {
	o := &clickhouse.Options{
		Addr:            s.cfg.Addrs,
		Auth:            clickhouse.Auth{Username: s.cfg.Username, Password: s.cfg.Password},
		TLS:             s.cfg.TLS,
		DialContext:     s.cfg.DialContext,
		DialTimeout:     s.cfg.DialTimeout,
		ReadTimeout:     s.cfg.Timeout,
		MaxOpenConns:    8,
		MaxIdleConns:    8,
		ConnMaxLifetime: time.Hour,
		ClientInfo:      clickhouse.ClientInfo{Products: []struct{ Name, Version string }{{Name: "auditbus", Version: "1"}}},
	}
	if !s.cfg.NoCompression {
		o.Compression = &clickhouse.Compression{Method: clickhouse.CompressionLZ4}
	}
	if legacy {
		dial := s.cfg.DialContext
		if dial == nil {
			dial = defaultDialer(s.cfg.DialTimeout, s.cfg.TLS)
		}
		o.DialContext = LegacyDialer(dial)
	}
	return o
}

// defaultDialer dials like the driver does on its own: TCP, then TLS when
// configured (a custom DialContext replaces both in the driver).
func defaultDialer(timeout time.Duration, cfg *tls.Config) func(ctx context.Context, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if cfg == nil {
		return func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	}
	td := &tls.Dialer{NetDialer: d, Config: cfg}
	return func(ctx context.Context, addr string) (net.Conn, error) { return td.DialContext(ctx, "tcp", addr) }
}

// String names the store in errors: addresses, database and table.
func (s *Store) String() string { return s.name }

// ServerVersion is the server's major.minor version, as read at Open.
func (s *Store) ServerVersion() string { return s.ver.String() }

// Legacy reports whether the store uses LegacyDialer's wire path.
func (s *Store) Legacy() bool { return s.feat.legacyWire }

// Conn is the store's connection pool, for tools and tests that need SQL
// the Store interface does not offer. Closing the store closes it.
func (s *Store) Conn() driver.Conn { return s.conn }

// begin guards a call: it fails after Close and bounds ctx by Timeout.
func (s *Store) begin(ctx context.Context) (context.Context, func(), error) {
	s.mu.RLock()
	if s.closed.Load() {
		s.mu.RUnlock()
		return nil, nil, sinks.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	return ctx, func() { cancel(); s.mu.RUnlock() }, nil
}

// Close closes the connections once calls in progress return; later calls
// fail with sinks.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.conn.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", s.name, err)
	}
	return nil
}

const nsPerHour = int64(time.Hour)

// hourOf is the hour column of a time in ns: whole hours since 1970,
// clamped to UInt32. It never decreases as ns grows, so a bound on time_ns
// gives a bound on hour.
func hourOf(ns int64) uint32 {
	h := ns / nsPerHour
	if ns < 0 && ns%nsPerHour != 0 {
		h--
	}
	return uint32(min(max(h, 0), math.MaxUint32))
}
