package clickhouse_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/clickhouse"
	"github.com/auditbus/auditbus/sinks/sinktest"
)

// addr is the ClickHouse server the tests use: deploy/test-services.sh
// starts one there.
const addr = "127.0.0.1:9000"

// needServer skips the test when no server answers, or fails it under
// CI=true, where a missing service is an error.
func needServer(t testing.TB) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		_ = c.Close()
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("ClickHouse at %s is unreachable (CI=true: deploy/test-services.sh should have started it): %v", addr, err)
	}
	t.Skipf("ClickHouse at %s is unreachable (%v); run `make test`, which starts it", addr, err)
}

// testConfig is a config for a database of the test's own, dropped when
// the test ends.
func testConfig(t testing.TB) clickhouse.Config {
	t.Helper()
	needServer(t)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	cfg := clickhouse.Config{Addrs: []string{addr}, Database: "auditbus_test_" + hex.EncodeToString(b), Log: "test"}
	t.Cleanup(func() { dropDatabase(t, cfg.Database) })
	return cfg
}

func dropDatabase(t testing.TB, db string) {
	// A benchmark's database holds a gigabyte or more; dropping it takes a
	// while on a small machine.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}})
	if err == nil {
		defer conn.Close()
		err = conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`")
	}
	if err != nil {
		t.Errorf("drop database %s: %v", db, err)
	}
}

func open(t testing.TB, cfg clickhouse.Config) *clickhouse.Store {
	t.Helper()
	s, err := clickhouse.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// configs remembers each store's config, for Reopen and OpenLog.
type configs struct {
	mu sync.Mutex
	m  map[sinks.Store]clickhouse.Config
}

func (c *configs) put(s sinks.Store, cfg clickhouse.Config) sinks.Store {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[s] = cfg
	return s
}

func (c *configs) get(s sinks.Store) clickhouse.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[s]
}

func TestConformance(t *testing.T) {
	cfgs := &configs{m: map[sinks.Store]clickhouse.Config{}}
	sinktest.TestStore(t, sinktest.Features{
		Reopen: func(t *testing.T, s sinks.Store) sinks.Store {
			cfg := cfgs.get(s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return cfgs.put(open(t, cfg), cfg)
		},
		OpenLog: func(t *testing.T, s sinks.Store, log string) sinks.Store {
			cfg := cfgs.get(s)
			cfg.Log = log
			return cfgs.put(open(t, cfg), cfg)
		},
	}, func(t *testing.T) sinks.Store {
		cfg := testConfig(t)
		return cfgs.put(open(t, cfg), cfg)
	})
}
