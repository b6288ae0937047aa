package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/amqp"
	"github.com/auditbus/auditbus/bus/kafka"
)

// errMemTransport explains why the mem transport is refused.
var errMemTransport = errors.New("--transport mem: the mem transport lives inside one process, so no other process can reach it; " +
	"talk to the daemon instead (auditbus publish --url, which puts events on the daemon's default transport), or use kafka or amqp")

// checkTransport reports whether name is a transport the client commands
// can open on their own.
func checkTransport(name string) error {
	switch name {
	case "kafka", "amqp":
		return nil
	case "mem":
		return errMemTransport
	}
	return fmt.Errorf("--transport %q: want kafka or amqp", name)
}

// transportSettings are what the commands change in a transport's
// configuration from the environment.
type transportSettings struct {
	// startLatest makes a new Kafka consumer group start at the end of the
	// topic.
	startLatest bool
	// poison reports a consumed message that is not a CloudEvent.
	poison func(where string, reason error)
}

// configError is a bad AUDITBUS_* variable: a usage error.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// openTransport opens the named transport (kafka or amqp) from its
// AUDITBUS_KAFKA_* or AUDITBUS_AMQP_* variables, logging warnings to
// stderr. A bad variable is a *configError.
func openTransport(name string, st transportSettings, stderr io.Writer) (bus.Transport, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	switch name {
	case "kafka":
		cfg, err := kafka.ConfigFromEnv()
		if err != nil {
			return nil, &configError{err}
		}
		cfg.Logger = log
		cfg.StartFromLatest = st.startLatest
		if st.poison != nil {
			cfg.Poison = func(_ context.Context, p kafka.Poison) error {
				st.poison(fmt.Sprintf("partition %d offset %d", p.Message.Partition, p.Message.Offset), p.Reason)
				return nil
			}
		}
		t, err := kafka.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("open kafka transport: %w", err)
		}
		return t, nil
	case "amqp":
		cfg, err := amqp.ConfigFromEnv()
		if err != nil {
			return nil, &configError{err}
		}
		cfg.Logger = log
		if st.poison != nil {
			cfg.Poison = func(_ context.Context, m amqp.PoisonMessage) {
				st.poison(fmt.Sprintf("queue %s delivery %d", m.Queue, m.Delivery.DeliveryTag), m.Err)
			}
		}
		t, err := amqp.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("open amqp transport: %w", err)
		}
		return t, nil
	}
	return nil, checkTransport(name)
}

// openFailed reports an error of openTransport for command name: a bad
// variable is a usage error, anything else a runtime error.
func openFailed(s stdio, name string, err error) int {
	var ce *configError
	if errors.As(err, &ce) {
		return usageError(s, name, "%v", err)
	}
	return failure(s, name, err)
}
