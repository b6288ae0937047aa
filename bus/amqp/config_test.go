package amqp

import (
	"strings"
	"testing"

	"github.com/auditbus/auditbus/pkg/envconf"
)

func TestConfigFromEnv(t *testing.T) {
	env := func(kv ...string) *envconf.Reader {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return envconf.WithLookup(EnvPrefix, func(k string) (string, bool) { v, ok := m[k]; return v, ok })
	}
	c, err := configFrom(env("AUDITBUS_AMQP_URL", "amqp://u:p@h:5672/v", "AUDITBUS_AMQP_PREFETCH", "50",
		"AUDITBUS_AMQP_QUEUE_TYPE", "Quorum", "AUDITBUS_AMQP_DEAD_LETTER_EXCHANGE", "dlx",
		"AUDITBUS_AMQP_DELIVERY_LIMIT", "3", "AUDITBUS_AMQP_CONTENT_MODE", "structured"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Prefetch != 50 || c.QueueType != Quorum || c.DeadLetterExchange != "dlx" || c.DeliveryLimit != 3 || c.Mode != Structured || c.ConfirmWindow != DefaultConfirmWindow {
		t.Errorf("config %+v", c)
	}
	bad := []struct {
		name string
		env  *envconf.Reader
		want []string // parts of the error
	}{
		{"no URL", env(), []string{"AUDITBUS_AMQP_URL is not set"}},
		{"queue type", env("AUDITBUS_AMQP_URL", "amqp://h", "AUDITBUS_AMQP_QUEUE_TYPE", "stream"), []string{"AUDITBUS_AMQP_QUEUE_TYPE", "classic, quorum"}},
		{"content mode", env("AUDITBUS_AMQP_URL", "amqp://h", "AUDITBUS_AMQP_CONTENT_MODE", "batch"), []string{"AUDITBUS_AMQP_CONTENT_MODE", "binary, structured"}},
		{"prefetch", env("AUDITBUS_AMQP_URL", "amqp://h", "AUDITBUS_AMQP_PREFETCH", "70000"), []string{"AUDITBUS_AMQP_PREFETCH", "65535"}},
		{"prefetch not a number", env("AUDITBUS_AMQP_URL", "amqp://h", "AUDITBUS_AMQP_PREFETCH", "lots"), []string{"AUDITBUS_AMQP_PREFETCH"}},
		{"scheme", env("AUDITBUS_AMQP_URL", "http://h"), []string{"AUDITBUS_AMQP_URL", "amqp:// or amqps://"}},
		{"TLS over amqp://", env("AUDITBUS_AMQP_URL", "amqp://h", "AUDITBUS_AMQP_TLS", "true"), []string{"AUDITBUS_AMQP_URL", "amqps://"}},
		{"missing CA file", env("AUDITBUS_AMQP_URL", "amqps://h", "AUDITBUS_AMQP_TLS_CA", "/nonexistent/ca.pem"), []string{"AUDITBUS_AMQP_TLS_CA"}},
		{"cert without key", env("AUDITBUS_AMQP_URL", "amqps://h", "AUDITBUS_AMQP_TLS_CERT", "/x.pem"), []string{"AUDITBUS_AMQP_TLS_CERT", "AUDITBUS_AMQP_TLS_KEY"}},
		{"delivery limit on classic", env("AUDITBUS_AMQP_URL", "amqp://h", "AUDITBUS_AMQP_DELIVERY_LIMIT", "2"), []string{"AUDITBUS_AMQP_DELIVERY_LIMIT", "quorum"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := configFrom(tt.env)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestRedact(t *testing.T) {
	if got := redact("amqp://user:secret@h:5672/"); strings.Contains(got, "secret") {
		t.Fatalf("redact left the password: %s", got)
	}
}

func TestPrefetch(t *testing.T) {
	for _, tt := range []struct{ set, batch, want int }{{0, 100, 200}, {10, 100, 100}, {500, 100, 500}, {0, 40000, 65535}} {
		c := Config{Prefetch: tt.set}
		if got := c.prefetch(tt.batch); got != tt.want {
			t.Errorf("prefetch %d with MaxBatch %d = %d, want %d", tt.set, tt.batch, got, tt.want)
		}
	}
}
