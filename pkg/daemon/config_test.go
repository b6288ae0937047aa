package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/envconf"
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
		c.DefaultTopic != "events" || len(c.Transports) != 1 || c.ShutdownTimeout != 30*time.Second || c.Insecure {
		t.Fatalf("defaults: %+v", c)
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
	} {
		_, err := configFrom(envconf.WithLookup("AUDITBUS_", lookup(tt.env)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v: error %v, want it to contain %q", tt.env, err, tt.want)
		}
	}
}
