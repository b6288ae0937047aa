package kafka

import (
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/envconf"
	kafkago "github.com/segmentio/kafka-go"
)

func env(m map[string]string) *envconf.Reader {
	return envconf.WithLookup("AUDITBUS_KAFKA_", func(k string) (string, bool) { v, ok := m[k]; return v, ok })
}

func TestConfigFromEnv(t *testing.T) {
	c, err := configFrom(env(map[string]string{
		"AUDITBUS_KAFKA_BROKERS": "k1:9092, k2:9092", "AUDITBUS_KAFKA_MODE": "structured", "AUDITBUS_KAFKA_ACKS": "leader",
		"AUDITBUS_KAFKA_LINGER": "5ms", "AUDITBUS_KAFKA_SASL_MECHANISM": "scram-sha-512",
		"AUDITBUS_KAFKA_SASL_USERNAME": "u", "AUDITBUS_KAFKA_SASL_PASSWORD": "p", "AUDITBUS_KAFKA_START_OFFSET": "latest",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Brokers, ",") != "k1:9092,k2:9092" || c.Mode != Structured || c.RequiredAcks != kafkago.RequireOne ||
		c.Linger != 5*time.Millisecond || c.SASL == nil || c.SASL.Name() != "SCRAM-SHA-512" || !c.StartFromLatest || !c.AutoCreateTopics {
		t.Fatalf("config %+v", c)
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	_, err := configFrom(env(map[string]string{
		"AUDITBUS_KAFKA_ACKS": "two", "AUDITBUS_KAFKA_COMPRESSION": "brotli", "AUDITBUS_KAFKA_SASL_MECHANISM": "plain",
		"AUDITBUS_KAFKA_PARTITIONS": "0",
	}))
	for _, want := range []string{
		"AUDITBUS_KAFKA_BROKERS is not set",
		`AUDITBUS_KAFKA_ACKS="two": accepted values: all, leader, none`,
		`AUDITBUS_KAFKA_COMPRESSION="brotli": accepted values: none, gzip, snappy, lz4, zstd`,
		"AUDITBUS_KAFKA_SASL_USERNAME is not set",
		`AUDITBUS_KAFKA_PARTITIONS="0": want a whole number >= 1`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "Brokers is empty") {
		t.Fatalf("New without brokers: %v", err)
	}
}
