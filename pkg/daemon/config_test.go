package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/envconf"
	"github.com/auditbus/auditbus/sinks"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestConfigDefaults(t *testing.T) {
	c, err := configFrom(envconf.WithLookup("AUDITBUS_", lookup(nil)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.DataDir != "data" || c.Store != "sqlite" || c.DefaultTransport != "mem" ||
		c.DefaultTopic != "events" || len(c.Transports) != 1 || c.ShutdownTimeout != 30*time.Second || c.Insecure ||
		c.LedgerLog != sinks.DefaultLogName() || c.SQLiteRetention != 0 {
		t.Fatalf("defaults: %+v", c)
	}
	// The hardening settings' defaults, as README and SECURITY.md give them.
	if c.HTTPReadTimeout != 30*time.Second || c.HTTPWriteTimeout != 60*time.Second || c.HTTPIdleTimeout != 60*time.Second ||
		c.MaxHeaderBytes != 64<<10 || c.MaxConnections != 1024 || c.MaxBodyBytes != 4<<20 || c.QueryMaxBytes != 16<<20 ||
		c.ReplayMaxJobs != 8 || c.ReplayRetention != 7*24*time.Hour || len(c.WebhookAllow) != 0 || len(c.WebhookDeny) != 0 {
		t.Fatalf("hardening defaults: %+v", c)
	}
}

func TestConfigReplayRetention(t *testing.T) {
	for v, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "1d": 24 * time.Hour, "36h": 36 * time.Hour, "5s": 5 * time.Second} {
		c, err := configFrom(envconf.WithLookup("AUDITBUS_", lookup(map[string]string{"AUDITBUS_REPLAY_RETENTION": v})))
		if err != nil || c.ReplayRetention != want {
			t.Errorf("AUDITBUS_REPLAY_RETENTION=%s: %v, %s, want %s", v, err, c.ReplayRetention, want)
		}
	}
	for _, v := range []string{"soon", "0d", "-1d", "0s", "-5m", "x7d", "200000d", "106751992d"} {
		_, err := configFrom(envconf.WithLookup("AUDITBUS_", lookup(map[string]string{"AUDITBUS_REPLAY_RETENTION": v})))
		if err == nil || !strings.Contains(err.Error(), "AUDITBUS_REPLAY_RETENTION") {
			t.Errorf("AUDITBUS_REPLAY_RETENTION=%s: %v, want an error naming the variable", v, err)
		}
	}
}

func TestConfigLedger(t *testing.T) {
	for v, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "1d": 24 * time.Hour, "720h": 720 * time.Hour, "36h30m": 36*time.Hour + 30*time.Minute} {
		c, err := configFrom(envconf.WithLookup("AUDITBUS_", lookup(map[string]string{
			"AUDITBUS_SQLITE_RETENTION": v, "AUDITBUS_LEDGER_LOG": "pod-7.eu:a/b_c",
		})))
		if err != nil || c.SQLiteRetention != want || c.LedgerLog != "pod-7.eu:a/b_c" {
			t.Errorf("AUDITBUS_SQLITE_RETENTION=%s: %v, %s (log %q), want %s", v, err, c.SQLiteRetention, c.LedgerLog, want)
		}
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"AUDITBUS_TRANSPORTS": "mem,nats"}, `AUDITBUS_TRANSPORTS: "nats" is not a transport`},
		{map[string]string{"AUDITBUS_TRANSPORTS": "kafka", "AUDITBUS_DEFAULT_TRANSPORT": "mem"}, `AUDITBUS_DEFAULT_TRANSPORT: "mem" is not among the enabled transports`},
		{map[string]string{"AUDITBUS_STORE": "postgres"}, "AUDITBUS_STORE"},
		{map[string]string{"AUDITBUS_SHUTDOWN_TIMEOUT": "soon"}, "AUDITBUS_SHUTDOWN_TIMEOUT"},
		{map[string]string{"AUDITBUS_TLS_CERT_FILE": "c.pem"}, "AUDITBUS_TLS_CERT_FILE and AUDITBUS_TLS_KEY_FILE"},
		{map[string]string{"AUDITBUS_LOG_LEVEL": "loud"}, "AUDITBUS_LOG_LEVEL"},
		{map[string]string{"AUDITBUS_INSECURE": "maybe"}, "AUDITBUS_INSECURE"},
		{map[string]string{"AUDITBUS_LEDGER_LOG": "no spaces"}, `AUDITBUS_LEDGER_LOG: log name "no spaces"`},
		{map[string]string{"AUDITBUS_LEDGER_LOG": strings.Repeat("x", 129)}, "AUDITBUS_LEDGER_LOG: log name"},
		{map[string]string{"AUDITBUS_SQLITE_RETENTION": "soon"}, `AUDITBUS_SQLITE_RETENTION="soon"`},
		{map[string]string{"AUDITBUS_SQLITE_RETENTION": "0d"}, `AUDITBUS_SQLITE_RETENTION="0d"`},
		{map[string]string{"AUDITBUS_SQLITE_RETENTION": "12h"}, "less than a day"},
		{map[string]string{"AUDITBUS_SQLITE_RETENTION": "-48h"}, `AUDITBUS_SQLITE_RETENTION="-48h"`},
		{map[string]string{"AUDITBUS_SQLITE_RETENTION": "30d", "AUDITBUS_STORE": "clickhouse"}, "AUDITBUS_CLICKHOUSE_RETENTION"},
		{map[string]string{"AUDITBUS_LEDGER_SIGNING_KEY_FILE": "/nonexistent/ledger.key"}, "AUDITBUS_LEDGER_SIGNING_KEY_FILE: open /nonexistent/ledger.key"},
		{map[string]string{"AUDITBUS_LEDGER_SIGNING_KEY_FILE": "config_test.go"}, "AUDITBUS_LEDGER_SIGNING_KEY_FILE: config_test.go: not a signed-note private key"},
		{map[string]string{"AUDITBUS_LEDGER_CHECKPOINT_INTERVAL": "0s"}, "AUDITBUS_LEDGER_CHECKPOINT_INTERVAL: 0s is not positive"},
		{map[string]string{"AUDITBUS_LEDGER_CHECKPOINT_INTERVAL": "often"}, "AUDITBUS_LEDGER_CHECKPOINT_INTERVAL"},
	} {
		_, err := configFrom(envconf.WithLookup("AUDITBUS_", lookup(tt.env)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v: error %v, want it to contain %q", tt.env, err, tt.want)
		}
	}
}
