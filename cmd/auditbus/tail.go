package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/amqp"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/rabbitmq/amqp091-go"
)

var tailHelp = helpText{
	usage: `Usage:
  auditbus tail --transport kafka|amqp --topic T [flags]

Subscribes to a topic of a Kafka or RabbitMQ transport and prints its
events as they arrive, until Ctrl-C (SIGINT) or SIGTERM, or until --count
events have been printed. Once it follows the topic it says so on stderr.

Each event is one line: time, type, source, id, subject, data size and
the start of the data; --json prints each as a structured CloudEvent, one
JSON object a line.

By default it joins a new consumer group of its own, auditbus-tail-<random>,
so it takes nothing from the groups of real consumers, and sees events
published from now on (--from-beginning: the whole topic, Kafka only).
Its Kafka group's offsets are left to expire as Kafka does; its RabbitMQ
queue (<topic>.<group>) is deleted when it stops. With --group it consumes
as a member of that group, sharing (and acknowledging) its events.

--transport kafka reads AUDITBUS_KAFKA_* (AUDITBUS_KAFKA_BROKERS at least),
--transport amqp reads AUDITBUS_AMQP_* (AUDITBUS_AMQP_URL at least).
Messages on the topic that are not CloudEvents are reported on stderr and
skipped.
`,
	after: `
Examples:
  AUDITBUS_KAFKA_BROKERS=localhost:9092 auditbus tail --transport kafka --topic orders
  auditbus tail --transport kafka --topic orders --from-beginning --json | jq .type
  AUDITBUS_AMQP_URL=amqp://guest:guest@localhost:5672/ auditbus tail --transport amqp --topic orders --count 1

Exit codes: 0 stopped by a signal or after --count events, 1 the
subscription failed, 2 usage error (bad flag, bad AUDITBUS_* variable).
`,
}

// tailFlags are auditbus tail's flags.
type tailFlags struct {
	transport, topic, group string
	fromBeginning, json     bool
	count, preview          int
}

// errCountReached stops the batch that holds events past --count.
var errCountReached = errors.New("--count events printed")

func runTail(ctx context.Context, args []string, s stdio) int {
	var f tailFlags
	fs := newFlagSet("tail", s.errOut)
	fs.StringVar(&f.transport, "transport", "", "transport to subscribe to: kafka or amqp (required)")
	fs.StringVar(&f.topic, "topic", "", "topic to follow (required)")
	fs.StringVar(&f.group, "group", "", "consumer group to join (default: a new auditbus-tail-<random>)")
	fs.BoolVar(&f.fromBeginning, "from-beginning", false, "kafka: a new group starts at the beginning of the topic, not its end")
	fs.BoolVar(&f.json, "json", false, "print structured CloudEvents, one JSON object a line")
	fs.IntVar(&f.count, "count", 0, "stop after this many events (0: run until stopped)")
	fs.IntVar(&f.preview, "preview", 60, "characters of data shown per line (0: none)")
	pos, code, ok := parseArgs(fs, args, tailHelp, s)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageError(s, "tail", "unexpected argument %q", pos[0])
	}
	if err := f.check(); err != nil {
		return usageError(s, "tail", "%v", err)
	}
	throwaway := f.group == ""
	if throwaway {
		f.group = "auditbus-tail-" + randomSuffix()
	}
	p := &eventPrinter{out: bufio.NewWriter(s.out), json: f.json, preview: f.preview, count: f.count}
	poison := func(where string, reason error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		fmt.Fprintf(s.errOut, "auditbus tail: skipped a message that is not a CloudEvent (%s): %v\n", where, reason)
	}
	t, err := openTransport(f.transport, transportSettings{startLatest: !f.fromBeginning, poison: poison}, s.errOut)
	if err != nil {
		return openFailed(s, "tail", err)
	}
	b := bus.New(t)
	defer b.Close()
	if throwaway && f.transport == "amqp" {
		defer func() {
			if err := deleteAMQPQueue(amqp.QueueName(f.topic, f.group)); err != nil {
				fmt.Fprintf(s.errOut, "auditbus tail: %v\n", err)
			}
		}()
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.stop = cancel
	sub, err := b.Subscribe(ctx, f.topic, f.group, p.handle, bus.MaxBatch(min(max(f.count, 1), bus.DefaultMaxBatch)))
	if err != nil {
		return failure(s, "tail", err)
	}
	fmt.Fprintf(s.errOut, "auditbus tail: following %s topic %q as group %q; Ctrl-C stops\n", f.transport, f.topic, f.group)
	select {
	case <-ctx.Done():
	case <-sub.Done():
	}
	_ = sub.Close()
	<-sub.Done()
	if err := p.err(); err != nil {
		return failure(s, "tail", err)
	}
	if err := sub.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return failure(s, "tail", err)
	}
	return exitOK
}

// check reports bad or missing flags.
func (f *tailFlags) check() error {
	if f.transport == "" {
		return errors.New("--transport is required: kafka or amqp")
	}
	if err := checkTransport(f.transport); err != nil {
		return err
	}
	if f.topic == "" {
		return errors.New("--topic is required")
	}
	if f.count < 0 {
		return fmt.Errorf("--count %d: must be 0 (no limit) or more", f.count)
	}
	if f.preview < 0 {
		return fmt.Errorf("--preview %d: must be 0 or more", f.preview)
	}
	if f.fromBeginning && f.transport == "amqp" {
		return errors.New("--from-beginning: a RabbitMQ queue keeps no history; a new group's queue holds events published after it is bound")
	}
	return nil
}

// randomSuffix is 8 random hex digits.
func randomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// eventPrinter prints the events of a subscription. Handlers of several
// partitions may call it at once.
type eventPrinter struct {
	mu      sync.Mutex
	out     *bufio.Writer
	json    bool
	preview int
	count   int // stop after this many; 0 for no limit
	n       int
	werr    error
	stop    func()
}

// handle prints a batch. Past --count it stops the subscription and
// leaves the batch unacknowledged, so that a shared group keeps the events
// it did not print.
func (p *eventPrinter) handle(_ context.Context, msgs []bus.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr != nil {
		return p.werr
	}
	for i := range msgs {
		if p.count > 0 && p.n >= p.count {
			p.stop()
			if err := p.out.Flush(); err != nil {
				p.werr = fmt.Errorf("write to stdout: %w", err)
			}
			return errCountReached
		}
		if err := p.write(&msgs[i].Event); err != nil {
			p.werr = fmt.Errorf("write to stdout: %w", err)
			p.stop()
			return p.werr
		}
		p.n++
	}
	if err := p.out.Flush(); err != nil {
		p.werr = fmt.Errorf("write to stdout: %w", err)
		p.stop()
		return p.werr
	}
	if p.count > 0 && p.n >= p.count {
		p.stop()
	}
	return nil
}

func (p *eventPrinter) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.werr
}

// write prints one event.
func (p *eventPrinter) write(e *event.Event) error {
	if p.json {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode event %q: %w", e.ID(), err)
		}
		p.out.Write(b)
		return p.out.WriteByte('\n')
	}
	_, err := p.out.WriteString(eventLine(e, p.preview) + "\n")
	return err
}

// eventLine is an event in one line: time, type, source, id, subject,
// data size and the start of the data.
func eventLine(e *event.Event, preview int) string {
	var b strings.Builder
	if t := e.Time(); !t.IsZero() {
		b.WriteString(t.UTC().Format(timeColumn))
	} else {
		b.WriteString("-")
	}
	subject := e.Subject()
	if subject == "" {
		subject = "-"
	}
	for _, f := range []string{e.Type(), e.Source(), e.ID(), subject} {
		b.WriteString("  ")
		b.WriteString(oneLine(f, 0))
	}
	data := e.Data()
	b.WriteString("  ")
	b.WriteString(strconv.Itoa(len(data)))
	b.WriteString("B")
	if len(data) > 0 && preview > 0 {
		b.WriteString("  ")
		if utf8.Valid(data) {
			b.WriteString(oneLine(string(data), preview))
		} else {
			b.WriteString("(binary)")
		}
	}
	return b.String()
}

// oneLine makes s fit one line: runs of white space become one space,
// other control characters are escaped, and with limit > 0 it is cut to
// limit characters with an ellipsis.
func oneLine(s string, limit int) string {
	var b strings.Builder
	n := 0
	space := false
	for _, r := range strings.TrimSpace(s) {
		if limit > 0 && n >= limit {
			b.WriteString("…")
			break
		}
		switch {
		case unicode.IsSpace(r):
			if space {
				continue
			}
			space = true
			b.WriteByte(' ')
		case unicode.IsControl(r):
			space = false
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			space = false
			b.WriteRune(r)
		}
		n++
	}
	return b.String()
}

// deleteAMQPQueue deletes the queue tail made for its own group, with the
// broker settings of AUDITBUS_AMQP_*.
func deleteAMQPQueue(queue string) error {
	cfg, err := amqp.ConfigFromEnv()
	if err != nil {
		return err
	}
	conn, err := amqp091.DialConfig(cfg.URL, amqp091.Config{TLSClientConfig: cfg.TLS, Dial: amqp091.DefaultDial(10 * time.Second)})
	if err != nil {
		return fmt.Errorf("delete queue %q: connect: %w", queue, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("delete queue %q: open channel: %w", queue, err)
	}
	if _, err := ch.QueueDelete(queue, false, false, false); err != nil {
		return fmt.Errorf("delete queue %q: %w", queue, err)
	}
	return nil
}
