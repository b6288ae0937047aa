package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/auditbus/auditbus/pkg/envconf"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Config is the transport's connection, producer and consumer settings.
// ConfigFromEnv fills it from AUDITBUS_KAFKA_* variables; the zero value
// plus Brokers is usable, with the defaults below.
type Config struct {
	// Brokers are the bootstrap brokers, host:port. Required.
	// AUDITBUS_KAFKA_BROKERS (comma-separated).
	Brokers []string
	// ClientID names this client to the brokers. AUDITBUS_KAFKA_CLIENT_ID,
	// default "auditbus".
	ClientID string
	// Mode is how events are written; both modes are read whatever it is.
	// AUDITBUS_KAFKA_MODE: binary (default) or structured.
	Mode Mode

	// TLS, if set, encrypts broker connections. AUDITBUS_KAFKA_TLS (true),
	// AUDITBUS_KAFKA_TLS_CA (PEM bundle), AUDITBUS_KAFKA_TLS_CERT and
	// AUDITBUS_KAFKA_TLS_KEY (client certificate for mTLS),
	// AUDITBUS_KAFKA_TLS_SERVER_NAME.
	TLS *tls.Config
	// SASL, if set, authenticates to the brokers.
	// AUDITBUS_KAFKA_SASL_MECHANISM (plain, scram-sha-256, scram-sha-512),
	// AUDITBUS_KAFKA_SASL_USERNAME, AUDITBUS_KAFKA_SASL_PASSWORD.
	SASL sasl.Mechanism

	// BatchSize is the most messages the producer sends per partition in one
	// request. AUDITBUS_KAFKA_BATCH_SIZE, default 1000.
	BatchSize int
	// BatchBytes bounds a produce request. AUDITBUS_KAFKA_BATCH_BYTES,
	// default 1 MiB (the brokers' default message.max.bytes).
	BatchBytes int64
	// Linger is how long the producer waits to fill a batch before sending.
	// A Publish call brings its own batch, so the wait only gathers events
	// from concurrent calls; it also bounds one publisher's call rate.
	// AUDITBUS_KAFKA_LINGER, default 200µs; see LowLatency.
	Linger time.Duration
	// RequiredAcks is how many replicas acknowledge a write before Publish
	// returns. AUDITBUS_KAFKA_ACKS: all (default), leader or none.
	RequiredAcks kafkago.RequiredAcks
	// Compression of produced batches. AUDITBUS_KAFKA_COMPRESSION: none
	// (default), gzip, snappy, lz4 or zstd.
	Compression kafkago.Compression

	// AutoCreateTopics creates a missing topic on first use, with Partitions
	// and ReplicationFactor. AUDITBUS_KAFKA_AUTO_CREATE_TOPICS, default true.
	AutoCreateTopics bool
	// Partitions of created topics. AUDITBUS_KAFKA_PARTITIONS, default 3.
	Partitions int
	// ReplicationFactor of created topics.
	// AUDITBUS_KAFKA_REPLICATION_FACTOR, default 1.
	ReplicationFactor int

	// StartFromLatest makes a new consumer group start at the end of the
	// topic instead of its beginning. AUDITBUS_KAFKA_START_OFFSET: earliest
	// (default) or latest.
	StartFromLatest bool
	// SessionTimeout, HeartbeatInterval and RebalanceTimeout tune group
	// membership. AUDITBUS_KAFKA_SESSION_TIMEOUT (default 10s),
	// AUDITBUS_KAFKA_HEARTBEAT_INTERVAL (3s), AUDITBUS_KAFKA_REBALANCE_TIMEOUT
	// (10s).
	SessionTimeout    time.Duration
	HeartbeatInterval time.Duration
	RebalanceTimeout  time.Duration
	// FetchMaxWait bounds how long a fetch waits for new messages.
	// AUDITBUS_KAFKA_FETCH_MAX_WAIT, default 250ms.
	FetchMaxWait time.Duration

	// Poison receives messages that are not valid CloudEvents. If it returns
	// nil the message is committed and consumption goes on; an error retries
	// it like a handler error. Nil logs the message's position and reason at
	// error level and goes on.
	Poison func(ctx context.Context, p Poison) error
	// Logger for connection and consumer events; default slog.Default().
	Logger *slog.Logger
}

// Poison is a consumed message that is not a valid CloudEvent.
type Poison struct {
	Group   string
	Message kafkago.Message // as read: topic, partition, offset, key, headers, value
	Reason  error
}

// LowLatency returns c tuned for latency over throughput: the producer
// lingers only 50µs to fill batches, so concurrent publishers share fewer
// produce requests.
func (c Config) LowLatency() Config {
	c.Linger = 50 * time.Microsecond
	return c
}

func (c Config) withDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = "auditbus"
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 1 << 20
	}
	if c.Linger <= 0 {
		c.Linger = 200 * time.Microsecond
	}
	if c.RequiredAcks == 0 {
		c.RequiredAcks = kafkago.RequireAll
	}
	if c.Partitions <= 0 {
		c.Partitions = 3
	}
	if c.ReplicationFactor <= 0 {
		c.ReplicationFactor = 1
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 3 * time.Second
	}
	if c.RebalanceTimeout <= 0 {
		c.RebalanceTimeout = 10 * time.Second
	}
	if c.FetchMaxWait <= 0 {
		c.FetchMaxWait = 250 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// ConfigFromEnv reads AUDITBUS_KAFKA_* (see Config's fields). The error
// names every bad variable.
func ConfigFromEnv() (Config, error) { return configFrom(envconf.New("AUDITBUS_KAFKA_")) }

func configFrom(r *envconf.Reader) (Config, error) {
	c := Config{
		Brokers:           r.List("BROKERS", nil),
		ClientID:          r.String("CLIENT_ID", "auditbus"),
		BatchSize:         r.Int("BATCH_SIZE", 1000, 1),
		BatchBytes:        int64(r.Int("BATCH_BYTES", 1<<20, 1024)),
		Linger:            r.Duration("LINGER", 200*time.Microsecond),
		AutoCreateTopics:  r.Bool("AUTO_CREATE_TOPICS", true),
		Partitions:        r.Int("PARTITIONS", 3, 1),
		ReplicationFactor: r.Int("REPLICATION_FACTOR", 1, 1),
		StartFromLatest:   r.Enum("START_OFFSET", "earliest", "earliest", "latest") == "latest",
		SessionTimeout:    r.Duration("SESSION_TIMEOUT", 10*time.Second),
		HeartbeatInterval: r.Duration("HEARTBEAT_INTERVAL", 3*time.Second),
		RebalanceTimeout:  r.Duration("REBALANCE_TIMEOUT", 10*time.Second),
		FetchMaxWait:      r.Duration("FETCH_MAX_WAIT", 250*time.Millisecond),
		TLS:               r.TLS(),
	}
	if len(c.Brokers) == 0 {
		r.Required("BROKERS", "list the Kafka bootstrap brokers as host:port, comma-separated")
	}
	if r.Enum("MODE", "binary", "binary", "structured") == "structured" {
		c.Mode = Structured
	}
	c.RequiredAcks = map[string]kafkago.RequiredAcks{"all": kafkago.RequireAll, "leader": kafkago.RequireOne, "none": kafkago.RequireNone}[r.Enum("ACKS", "all", "all", "leader", "none")]
	c.Compression = map[string]kafkago.Compression{"none": 0, "gzip": compress.Gzip, "snappy": compress.Snappy, "lz4": compress.Lz4, "zstd": compress.Zstd}[r.Enum("COMPRESSION", "none", "none", "gzip", "snappy", "lz4", "zstd")]
	if mech := r.Enum("SASL_MECHANISM", "", "plain", "scram-sha-256", "scram-sha-512"); mech != "" {
		user := r.Required("SASL_USERNAME", "SASL needs a user name")
		pass := r.Required("SASL_PASSWORD", "SASL needs a password")
		var err error
		switch mech {
		case "plain":
			c.SASL = plain.Mechanism{Username: user, Password: pass}
		case "scram-sha-256":
			c.SASL, err = scram.Mechanism(scram.SHA256, user, pass)
		case "scram-sha-512":
			c.SASL, err = scram.Mechanism(scram.SHA512, user, pass)
		}
		if err != nil {
			return c, fmt.Errorf("auditbus: kafka config: AUDITBUS_KAFKA_SASL_MECHANISM=%s: %w", mech, err)
		}
	}
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("auditbus: kafka config:\n%w", err)
	}
	return c, nil
}

func (c Config) validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("auditbus: kafka: Config.Brokers is empty: name at least one bootstrap broker (host:port)")
	}
	return nil
}
