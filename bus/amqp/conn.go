package amqp

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/backoff"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// link is one live connection. dead is closed once it has closed.
type link struct {
	conn *amqp091.Connection
	dead chan struct{}
}

func (l *link) isDead() bool { return isClosed(l.dead) }

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// connection keeps one AMQP connection up: it dials, watches the
// connection and, when it drops, reconnects with backoff until the
// transport closes. Users take the current link with get and open their
// own channels on it.
type connection struct {
	role   string
	cfg    *Config
	closed <-chan struct{} // the transport's

	mu      sync.Mutex
	cur     *link         // nil while reconnecting
	changed chan struct{} // closed when cur changes, then replaced

	reconnects atomic.Int64
	done       chan struct{} // closed when the watcher has stopped
}

// dialConnection makes the first connection; from then on the connection
// reconnects by itself.
func dialConnection(role string, cfg *Config, closed <-chan struct{}) (*connection, error) {
	c := &connection{role: role, cfg: cfg, closed: closed, changed: make(chan struct{}), done: make(chan struct{})}
	l, err := c.dial()
	if err != nil {
		return nil, fmt.Errorf("auditbus: amqp connect (%s) to %s: %w", role, redact(cfg.URL), err)
	}
	c.cur = l
	c.state(StateChange{State: Connected})
	go c.watch(l)
	return c, nil
}

func (c *connection) dial() (*link, error) {
	props := amqp091.NewConnectionProperties()
	props.SetClientConnectionName("auditbus " + c.role)
	conn, err := amqp091.DialConfig(c.cfg.URL, amqp091.Config{
		TLSClientConfig: c.cfg.TLS,
		Heartbeat:       c.cfg.Heartbeat,
		Properties:      props,
	})
	if err != nil {
		return nil, err
	}
	return &link{conn: conn, dead: make(chan struct{})}, nil
}

// get returns the live connection, waiting while reconnecting.
func (c *connection) get(ctx context.Context, stop <-chan struct{}) (*link, error) {
	for {
		c.mu.Lock()
		l, changed := c.cur, c.changed
		c.mu.Unlock()
		if l != nil && !l.isDead() {
			return l, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-stop:
			return nil, bus.ErrClosed
		case <-c.closed:
			return nil, bus.ErrClosed
		}
	}
}

// set replaces the current link and wakes everyone waiting for a change.
func (c *connection) set(l *link) {
	c.mu.Lock()
	c.cur = l
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// watch waits for l to close, then reconnects, until the transport closes.
func (c *connection) watch(l *link) {
	defer close(c.done)
	for {
		notify := l.conn.NotifyClose(make(chan *amqp091.Error, 1))
		var closeErr *amqp091.Error
		select {
		case closeErr = <-notify:
		case <-c.closed:
			// The watcher closes the connection itself, so that one dialled
			// just as the transport closed is not left open.
			_ = l.conn.Close()
			<-notify
		}
		close(l.dead)
		c.set(nil)
		select {
		case <-c.closed:
			c.state(StateChange{State: Closed})
			return
		default:
		}
		var err error
		if closeErr != nil {
			err = closeErr
		}
		c.state(StateChange{State: Disconnected, Err: err})
		if l = c.reconnect(); l == nil {
			c.state(StateChange{State: Closed})
			return
		}
		c.reconnects.Add(1)
		c.set(l)
		c.state(StateChange{State: Connected})
	}
}

// reconnect dials with backoff until it connects (returning the link) or
// the transport closes (returning nil).
func (c *connection) reconnect() *link {
	// Jitter keeps the connections of many processes that lost the same
	// broker from coming back in lockstep.
	wait := backoff.Policy{Initial: c.cfg.ReconnectBackoff, Max: c.cfg.MaxReconnectBackoff, Jitter: backoff.DefaultJitter}
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for attempt := 1; ; attempt++ {
		timer.Reset(wait.Delay(attempt))
		select {
		case <-timer.C:
		case <-c.closed:
			return nil
		}
		l, err := c.dial()
		if err == nil {
			select {
			case <-c.closed:
				_ = l.conn.Close()
				return nil
			default:
			}
			return l
		}
		c.state(StateChange{State: ReconnectFailed, Err: err})
	}
}

// state logs a change and reports it to Config.OnState.
func (c *connection) state(s StateChange) {
	s.Role = c.role
	s.Reconnects = c.reconnects.Load()
	attrs := []any{slog.String("role", c.role), slog.String("broker", redact(c.cfg.URL)), slog.Int64("reconnects", s.Reconnects)}
	if s.Err != nil {
		attrs = append(attrs, slog.String("error", s.Err.Error()))
	}
	switch s.State {
	case Disconnected, ReconnectFailed:
		c.cfg.Logger.Warn("auditbus amqp: connection "+s.State.String(), attrs...)
	default:
		c.cfg.Logger.Info("auditbus amqp: connection "+s.State.String(), attrs...)
	}
	if c.cfg.OnState != nil {
		c.cfg.OnState(s)
	}
}

// wait waits until the watcher, told by the transport's closed channel,
// has closed the connection.
func (c *connection) wait() { <-c.done }
