package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/pkg/cehttp"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/google/uuid"
)

var publishHelp = helpText{
	usage: `Usage:
  auditbus publish --source S --type T [--data D | --data-file F] [flags]
  auditbus publish --file F | -          JSON events from a file or stdin

Publishes CloudEvents 1.0 events, to a daemon's HTTP ingest
(POST /v1/events, the default) or straight to a Kafka or RabbitMQ topic
(--transport). One event comes from the attribute flags; several come as
structured JSON events, one per line or as one JSON array, from --file or
from stdin ("-"). Events without an id get a UUIDv7.

It prints the id of every accepted event, one per line. A refusal prints
the server's HTTP status and JSON error as sent and exits 1; with several
requests, the ids printed are those accepted before it.

The daemon is at --url (env AUDITBUS_URL, default http://127.0.0.1:8080)
with the token from --token (env AUDITBUS_TOKEN; scope events:write).
--transport kafka reads AUDITBUS_KAFKA_* (AUDITBUS_KAFKA_BROKERS at least),
--transport amqp reads AUDITBUS_AMQP_* (AUDITBUS_AMQP_URL at least).
`,
	after: `
Without --datacontenttype, --data that is valid JSON is application/json,
other UTF-8 text is text/plain; charset=utf-8, anything else
application/octet-stream.

Examples:
  auditbus publish --source /orders --type com.example.order.created \
      --subject 42 --data '{"total":9.5}'
  auditbus publish --topic orders --source /orders --type com.example.ping
  auditbus publish --route billing --file events.jsonl
  jq -c '.[]' events.json | auditbus publish -
  AUDITBUS_KAFKA_BROKERS=localhost:9092 auditbus publish --transport kafka \
      --topic orders --source /orders --type com.example.order.created --ext partitionkey=42
  auditbus publish --sign-key shop.key --key-id shop-2026 --sign-ext partitionkey \
      --source /shop --type com.example.order.created --ext partitionkey=42

With --sign-key and --key-id every event is signed as the CloudEvents
extension "Verifiable CloudEvents with DSSE" says (dssematerial and
signedextattrs), after it gets its id and time; --sign-ext names an
extension the signature also covers (repeat for several). The key is a
PEM Ed25519 or ECDSA P-256 private key (auditbus keygen --pem).

Exit codes: 0 every event accepted, 1 refused or failed (the server's
error is shown), 2 usage error (bad flag, bad event in the input, bad
AUDITBUS_* variable, a key that cannot sign).
`,
}

// publishFlags are auditbus publish's flags.
type publishFlags struct {
	daemon                           daemonFlags
	transport, topic, route          string
	id, source, typ, subject, schema string
	data, dataFile, contentType, at  string
	exts                             multiFlag
	file                             string
	batch                            int
	sign                             signFlags
}

// singleEventFlags are the flags that describe one event; they do not mix
// with --file.
var singleEventFlags = []string{"id", "source", "type", "subject", "dataschema", "data", "data-file", "datacontenttype", "ext", "time"}

// maxRequestBytes bounds the events sent in one batch request, well under
// the daemon's default body limit of 4 MiB.
const maxRequestBytes = 1 << 20

func runPublish(ctx context.Context, args []string, s stdio) int {
	var f publishFlags
	fs := newFlagSet("publish", s.errOut)
	f.daemon.register(fs)
	fs.StringVar(&f.transport, "transport", "", "publish straight to this transport, kafka or amqp, instead of to the daemon")
	fs.StringVar(&f.topic, "topic", "", "topic to publish to (required with --transport; for the daemon, a topic of its default transport)")
	fs.StringVar(&f.route, "route", "", "daemon only: hand the events to this route")
	fs.StringVar(&f.id, "id", "", "event id (default: a new UUIDv7)")
	fs.StringVar(&f.source, "source", "", "event source, a URI-reference such as /orders (required for one event)")
	fs.StringVar(&f.typ, "type", "", "event type, such as com.example.order.created (required for one event)")
	fs.StringVar(&f.subject, "subject", "", "event subject")
	fs.StringVar(&f.schema, "dataschema", "", "event dataschema, an absolute URI")
	fs.StringVar(&f.data, "data", "", "event data, as given")
	fs.StringVar(&f.dataFile, "data-file", "", "read the event data from this file (- for stdin)")
	fs.StringVar(&f.contentType, "datacontenttype", "", "media type of the data (default: guessed, see below)")
	fs.Var(&f.exts, "ext", "extension attribute `name=value`; repeat for several")
	fs.StringVar(&f.at, "time", "", "event time, RFC 3339 (default: now)")
	fs.StringVar(&f.file, "file", "", "read structured JSON events from this file (- for stdin): one per line, or a JSON array")
	fs.IntVar(&f.batch, "batch", 100, "most events per request or transport publish")
	f.sign.register(fs)
	pos, code, ok := parseArgs(fs, args, publishHelp, s)
	if !ok {
		return code
	}
	set := setFlags(fs)
	switch {
	case len(pos) == 1 && pos[0] == "-" && f.file == "":
		f.file = "-"
	case len(pos) > 0:
		return usageError(s, "publish", "unexpected argument %q: events come from the flags, from --file, or from stdin (-)", pos[0])
	}
	if err := f.check(set); err != nil {
		return usageError(s, "publish", "%v", err)
	}
	signer, err := f.sign.signer()
	if err != nil {
		return usageError(s, "publish", "%v", err)
	}
	var src eventSource
	if f.file != "" {
		r, closeFn, err := openInput(f.file, s.in)
		if err != nil {
			return usageError(s, "publish", "--file: %v", err)
		}
		defer closeFn()
		src = newJSONEvents(r, f.file)
	} else {
		e, err := f.event(s.in)
		if err != nil {
			return usageError(s, "publish", "%v", err)
		}
		src = &oneEvent{e: &e}
	}
	if signer != nil {
		src = &signedEvents{src: src, s: signer}
	}
	var send func(ctx context.Context, events []event.Event) error
	var target string
	if f.transport != "" {
		t, err := openTransport(f.transport, transportSettings{}, s.errOut)
		if err != nil {
			return openFailed(s, "publish", err)
		}
		b := bus.New(t)
		defer b.Close()
		target = fmt.Sprintf("%s topic %q", f.transport, f.topic)
		send = func(ctx context.Context, events []event.Event) error {
			ctx, cancel := context.WithTimeout(ctx, f.daemon.timeout)
			defer cancel()
			return b.Publish(ctx, f.topic, events...)
		}
	} else {
		c, err := f.daemon.client(set)
		if err != nil {
			return usageError(s, "publish", "%v", err)
		}
		q := url.Values{}
		if f.topic != "" {
			q.Set("topic", f.topic)
		}
		if f.route != "" {
			q.Set("route", f.route)
		}
		endpoint := c.endpoint(q, "v1", "events")
		target = redactURL(c.base)
		send = func(ctx context.Context, events []event.Event) error { return postEvents(ctx, c, endpoint, events) }
	}
	return publishAll(ctx, src, f.batch, send, target, s)
}

// check reports flags that do not go together.
func (f *publishFlags) check(set map[string]bool) error {
	if f.batch < 1 {
		return fmt.Errorf("--batch %d: must be at least 1", f.batch)
	}
	if f.file != "" {
		for _, name := range singleEventFlags {
			if set[name] {
				return fmt.Errorf("--%s describes one event and does not go with --file or -, whose events are complete JSON", name)
			}
		}
	} else {
		if f.source == "" {
			return errors.New("--source is required (or give JSON events with --file or -)")
		}
		if f.typ == "" {
			return errors.New("--type is required (or give JSON events with --file or -)")
		}
		if set["data"] && set["data-file"] {
			return errors.New("--data and --data-file both give the data; use one")
		}
	}
	if f.transport != "" {
		if err := checkTransport(f.transport); err != nil {
			return err
		}
		if f.topic == "" {
			return fmt.Errorf("--topic is required with --transport %s", f.transport)
		}
		if f.route != "" {
			return errors.New("--route names a route of the daemon; it does not go with --transport")
		}
		for _, name := range []string{"url", "token"} {
			if set[name] {
				return fmt.Errorf("--%s is for the daemon; it does not go with --transport", name)
			}
		}
	} else if f.topic != "" && f.route != "" {
		return errors.New("--topic and --route both say where events go; use one")
	}
	return nil
}

// event builds the one event the flags describe.
func (f *publishFlags) event(stdin io.Reader) (event.Event, error) {
	e := event.New()
	ec := e.Context.(*event.EventContextV1)
	ec.ID = f.id
	if ec.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return e, fmt.Errorf("make an event id: %w", err)
		}
		ec.ID = id.String()
	}
	src := types.ParseURIRef(f.source)
	if src == nil {
		return e, fmt.Errorf("--source %q: not a URI-reference", f.source)
	}
	ec.Source = *src
	ec.Type = f.typ
	if f.subject != "" {
		ec.Subject = &f.subject
	}
	if f.schema != "" {
		u := types.ParseURI(f.schema)
		if u == nil || !u.IsAbs() {
			return e, fmt.Errorf("--dataschema %q: want an absolute URI", f.schema)
		}
		ec.DataSchema = u
	}
	if f.at != "" {
		t, err := time.Parse(time.RFC3339Nano, f.at)
		if err != nil {
			return e, fmt.Errorf("--time %q: want RFC 3339, such as 2026-05-01T10:00:00Z", f.at)
		}
		ec.Time = &types.Timestamp{Time: t}
	}
	for _, kv := range f.exts {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return e, fmt.Errorf("--ext %q: want name=value", kv)
		}
		if strings.TrimFunc(name, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' }) != "" {
			return e, fmt.Errorf("--ext %q: extension names are lower-case letters a-z and digits 0-9 only", kv)
		}
		if err := ec.SetExtension(name, value); err != nil {
			return e, fmt.Errorf("--ext %q: %v", kv, err)
		}
	}
	var data []byte
	var err error
	switch {
	case f.dataFile == "-":
		if data, err = io.ReadAll(stdin); err != nil {
			return e, fmt.Errorf("--data-file -: read stdin: %w", err)
		}
	case f.dataFile != "":
		if data, err = os.ReadFile(f.dataFile); err != nil {
			return e, fmt.Errorf("--data-file: %w", err)
		}
	default:
		data = []byte(f.data)
	}
	if len(data) > 0 || f.contentType != "" {
		ct := f.contentType
		if ct == "" {
			ct = guessContentType(data)
		}
		ec.DataContentType = &ct
		e.DataEncoded = data
	}
	if err := bus.Validate(&e); err != nil {
		return e, err
	}
	return e, nil
}

// guessContentType is the media type of data given without one.
func guessContentType(data []byte) string {
	switch {
	case json.Valid(data):
		return "application/json"
	case utf8.Valid(data):
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// eventSource yields the events to publish. Next returns io.EOF at the end.
type eventSource interface {
	Next() (event.Event, error)
}

// oneEvent is the event the flags describe.
type oneEvent struct{ e *event.Event }

func (o *oneEvent) Next() (event.Event, error) {
	if o.e == nil {
		return event.Event{}, io.EOF
	}
	e := *o.e
	o.e = nil
	return e, nil
}

// jsonEvents reads structured JSON events, one after the other (one per
// line, say) or in one JSON array, without holding more than one at once.
type jsonEvents struct {
	br    *bufio.Reader
	dec   *json.Decoder
	name  string
	n     int  // events read so far
	array bool // the input is a JSON array
}

func newJSONEvents(r io.Reader, name string) *jsonEvents {
	return &jsonEvents{br: bufio.NewReaderSize(r, 64<<10), name: name}
}

// start looks at the first byte that is not white space to tell a JSON
// array from a stream of objects.
func (j *jsonEvents) start() error {
	for {
		c, err := j.br.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: read: %w", j.inputName(), err)
		}
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			_ = j.br.UnreadByte()
			j.array = c == '['
			break
		}
	}
	j.dec = json.NewDecoder(j.br)
	if j.array {
		if _, err := j.dec.Token(); err != nil {
			return j.fail("read JSON", err)
		}
	}
	return nil
}

// Next decodes the next event, gives it an id if it has none and checks
// it. The error names the input and the event's position.
func (j *jsonEvents) Next() (event.Event, error) {
	if j.dec == nil {
		if err := j.start(); err != nil {
			return event.Event{}, err
		}
	}
	if j.array && !j.dec.More() {
		if _, err := j.dec.Token(); err != nil {
			return event.Event{}, fmt.Errorf("%s: after event %d: the JSON array is not closed: %w", j.inputName(), j.n, err)
		}
		if _, err := j.dec.Token(); err != io.EOF {
			return event.Event{}, fmt.Errorf("%s: after event %d: unexpected content after the JSON array of events", j.inputName(), j.n)
		}
		return event.Event{}, io.EOF
	}
	var raw json.RawMessage
	j.n++
	if err := j.dec.Decode(&raw); err != nil {
		if err == io.EOF && !j.array {
			return event.Event{}, io.EOF
		}
		return event.Event{}, j.fail("read JSON", err)
	}
	if raw[0] != '{' {
		return event.Event{}, j.fail("decode", errors.New("want a JSON object: a structured CloudEvent"))
	}
	var e event.Event
	if err := json.Unmarshal(raw, &e); err != nil {
		return event.Event{}, j.fail("decode", errors.New(strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")))
	}
	if ec, ok := e.Context.(*event.EventContextV1); ok && ec.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return e, fmt.Errorf("make an event id: %w", err)
		}
		ec.ID = id.String()
	}
	if err := bus.Validate(&e); err != nil {
		return e, j.fail("check", err)
	}
	return e, nil
}

func (j *jsonEvents) inputName() string {
	if j.name == "-" {
		return "stdin"
	}
	return j.name
}

func (j *jsonEvents) fail(op string, err error) error {
	return fmt.Errorf("%s: event %d: %s: %w", j.inputName(), j.n, op, err)
}

// openInput opens a file, or stdin for "-".
func openInput(name string, stdin io.Reader) (io.Reader, func(), error) {
	if name == "-" {
		return stdin, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { _ = f.Close() }, nil
}

// publishAll sends the events of src in batches and prints the id of
// every accepted event.
func publishAll(ctx context.Context, src eventSource, batch int, send func(context.Context, []event.Event) error, target string, s stdio) int {
	out := bufio.NewWriter(s.out)
	defer out.Flush()
	var pending []event.Event
	size, accepted := 0, 0
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if err := send(ctx, pending); err != nil {
			if accepted > 0 {
				err = fmt.Errorf("%w\n%d events were accepted before (their ids are printed); the %d of this request were not", err, accepted, len(pending))
			}
			return err
		}
		for i := range pending {
			fmt.Fprintln(out, pending[i].ID())
		}
		accepted += len(pending)
		pending, size = pending[:0], 0
		return out.Flush()
	}
	for {
		e, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			// The batch holding the bad event is not sent: input shorter
			// than --batch is all or nothing.
			if accepted > 0 {
				fmt.Fprintf(s.errOut, "auditbus publish: %d events before the batch holding it were accepted (their ids are printed)\n", accepted)
			}
			return usageError(s, "publish", "%v", err)
		}
		n := bus.EventSize(&e)
		if len(pending) > 0 && (len(pending) >= batch || size+n > maxRequestBytes) {
			if err := flush(); err != nil {
				return failure(s, "publish", err)
			}
		}
		pending = append(pending, e)
		size += n
	}
	if err := flush(); err != nil {
		return failure(s, "publish", err)
	}
	if accepted == 0 {
		return usageError(s, "publish", "the input holds no events")
	}
	if accepted > 1 {
		fmt.Fprintf(s.errOut, "auditbus publish: %d events accepted by %s\n", accepted, target)
	}
	return exitOK
}

// postEvents sends events to the daemon's ingest: one in binary content
// mode, several as a batch. It checks that the daemon accepted them all.
func postEvents(ctx context.Context, c *client, endpoint string, events []event.Event) error {
	var req *http.Request
	var err error
	if len(events) == 1 {
		req, err = cehttp.NewRequest(ctx, endpoint, &events[0], nil)
	} else {
		var body []byte
		if body, err = json.Marshal(events); err == nil {
			req, err = http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		}
		if req != nil {
			req.Header.Set("Content-Type", "application/cloudevents-batch+json")
		}
	}
	if err != nil {
		return fmt.Errorf("POST %s: %w", endpoint, err)
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var answer struct {
		Accepted *int `json:"accepted"`
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return fmt.Errorf("POST %s: read the answer: %w", redactURL(req.URL), err)
	}
	if json.Unmarshal(body, &answer) != nil || answer.Accepted == nil {
		return fmt.Errorf("POST %s: HTTP %d, but the answer is not {\"accepted\": n}: %s", redactURL(req.URL), resp.StatusCode, bytes.TrimSpace(body))
	}
	if *answer.Accepted != len(events) {
		return fmt.Errorf("POST %s: sent %d events, the daemon says it accepted %d", redactURL(req.URL), len(events), *answer.Accepted)
	}
	return nil
}
