package daemon_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/amqp"
	"github.com/auditbus/auditbus/bus/kafka"
	"github.com/auditbus/auditbus/bus/signing"
	"github.com/auditbus/auditbus/deploy/testservices"
	"github.com/auditbus/auditbus/pkg/daemon"
	"github.com/auditbus/auditbus/pkg/refusal"
	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/twmb/franz-go/pkg/kfake"
)

// sigKeys are the signer registry of these tests: shop-2026 may sign
// /shop/ events of com.example.order. types, billing-2026 /billing ones of
// any type.
type sigKeys struct {
	file          string // the registry file, for AUDITBUS_SIGNERS_FILE
	shop, billing *signing.Signer
}

func newSigKeys(t *testing.T) *sigKeys {
	t.Helper()
	dir := t.TempDir()
	k := &sigKeys{file: filepath.Join(dir, "signers.yaml")}
	gen := func(name, id string) *signing.Signer {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := signing.MarshalPublicKey(pub)
		if err := os.WriteFile(filepath.Join(dir, name+".pub"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := signing.NewSigner(id, priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	k.shop, k.billing = gen("shop", "shop-2026"), gen("billing", "billing-2026")
	err := os.WriteFile(k.file, []byte(`signers:
  - key_id: shop-2026
    public_key_file: shop.pub
    sources: [/shop/]
    types: [com.example.order.]
  - key_id: billing-2026
    public_key_file: billing.pub
    sources: [/billing]
    types: ["*"]
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sigCase is one event of the tests and what checking it finds.
type sigCase struct {
	name   string
	ev     bus.Event
	entry  string // the start of its Signature
	reason string // its refusal reason; "" for the one that verifies
}

// cases are four /shop/cart events with ids prefix-…: signed by the shop's
// key, unsigned, signed by the billing key (another source's), and signed
// by the shop's key with the data changed afterwards.
func (k *sigKeys) cases(t *testing.T, prefix string) []sigCase {
	t.Helper()
	ev := func(id string, s *signing.Signer) bus.Event {
		e := event.New()
		e.SetID(prefix + "-" + id)
		e.SetSource("/shop/cart")
		e.SetType("com.example.order.placed")
		_ = e.SetData("application/json", map[string]string{"order": id})
		if s != nil {
			if err := s.Sign(&e); err != nil {
				t.Fatal(err)
			}
		}
		return e
	}
	changed := ev("changed", k.shop)
	_ = changed.SetData("application/json", map[string]string{"order": "changed", "total": "0.01"})
	return []sigCase{
		{"signed", ev("signed", k.shop), "verified: shop-2026", ""},
		{"unsigned", ev("unsigned", nil), "unsigned", refusal.SignatureMissing},
		{"other source's key", ev("other", k.billing), `invalid: signer-not-allowed: key "billing-2026" may sign sources "/billing"`, refusal.SignerNotAllowed},
		{"changed after signing", changed, "invalid: signature-invalid: digest:", refusal.SignatureInvalid},
	}
}

// postEvent sends ev in the structured mode to POST /v1/events?query and
// returns the status and body.
func (l *live) postEvent(t *testing.T, query string, ev bus.Event) (int, string) {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, l.base+"/v1/events?"+query, strings.NewReader(string(b)))
	req.Header.Set("Authorization", "Bearer "+l.token)
	req.Header.Set("Content-Type", "application/cloudevents+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// only is the one entry of kind in trail (and of route, when given).
func only(t *testing.T, trail []sinks.Entry, kind, route string) sinks.Entry {
	t.Helper()
	var found []sinks.Entry
	for _, e := range trail {
		if e.Kind == kind && (route == "" || e.Route == route) {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s entries of route %q in the trail, want 1: %+v", len(found), kind, route, trail)
	}
	return found[0]
}

const sigRoutes = `
routes:
  - name: shop
    source: {http: true}
    signatures: required
    destinations: [{transport: mem, topic: shop-out}]
    dead_letter: {transport: mem, topic: shop-dead}
  - name: open
    source: {http: true}
    destinations: [{transport: mem, topic: open-out}]
    dead_letter: {transport: mem, topic: open-dead}
`

// Over HTTP, a route that requires signatures delivers the event its
// source's key signed, whose received entry says verified with the key
// id; it refuses the unsigned one, the one signed by another source's key
// and the one changed after signing with 403 naming the rule and the
// event, and records each as refused with the reason. An optional route
// delivers all four and says in their received entries what it found.
func TestSignaturesOverHTTP(t *testing.T) {
	k := newSigKeys(t)
	l := startLive(t, sigRoutes, "AUDITBUS_SIGNERS_FILE="+k.file)
	for _, tc := range k.cases(t, "h") {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			id := tc.ev.ID()
			code, body := l.postEvent(t, "route=shop", tc.ev)
			if tc.reason == "" {
				if code != http.StatusAccepted {
					t.Fatalf("POST ?route=shop: %d %s, want 202", code, body)
				}
				items := l.versions(t, "/shop/cart", id, 2)
				if e := only(t, items[0].Trail, sinks.KindReceived, "shop"); e.Signature != tc.entry {
					t.Errorf("received entry's signature %q, want %q", e.Signature, tc.entry)
				}
				only(t, items[0].Trail, sinks.KindDelivered, "shop")
			} else {
				want := fmt.Sprintf(`refused (%s): route \"shop\" requires signatures: event \"%s\" from \"/shop/cart\"`, tc.reason, id)
				if code != http.StatusForbidden || !strings.Contains(body, `"code":"signature_refused"`) || !strings.Contains(body, want) ||
					!strings.Contains(body, `"index":0`) {
					t.Fatalf("POST ?route=shop: %d %s; want 403 signature_refused naming %s", code, body, want)
				}
				items := l.versions(t, "/shop/cart", id, 1)
				e := only(t, items[0].Trail, sinks.KindRefused, "shop")
				if e.Principal != "svc-orders" || e.Transport != "http" || e.Request == "" ||
					!strings.HasPrefix(e.Error, "refused ("+tc.reason+")") || !strings.HasPrefix(e.Signature, tc.entry) {
					t.Errorf("refused entry %+v", e)
				}
				if got := scrape(t, l.base+"/metrics", fmt.Sprintf(`auditbus_events_refused_total{reason=%q,transport="http"}`, tc.reason)); got != 1 {
					t.Errorf("refusals of reason %s counted %v times, want 1", tc.reason, got)
				}
			}
			// The optional route takes it whatever it found.
			if code, body := l.postEvent(t, "route=open", tc.ev); code != http.StatusAccepted {
				t.Fatalf("POST ?route=open: %d %s, want 202", code, body)
			}
			n := 4
			if tc.reason != "" {
				n = 3
			}
			items := l.versions(t, "/shop/cart", id, n)
			if e := only(t, items[0].Trail, sinks.KindReceived, "open"); !strings.HasPrefix(e.Signature, tc.entry) {
				t.Errorf("open route's received entry's signature %q, want %q...", e.Signature, tc.entry)
			}
			only(t, items[0].Trail, sinks.KindDelivered, "open")
		})
	}
}

// A daemon without a signer registry does not start a route that
// requires signatures, and says what to set; a registry naming a missing
// key file stops the start naming the file and the line.
func TestSignaturesRequiredNeedARegistry(t *testing.T) {
	dir := t.TempDir()
	routes := filepath.Join(dir, "routes.yaml")
	bad := filepath.Join(dir, "signers.yaml")
	if err := os.WriteFile(routes, []byte(sigRoutes), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("signers:\n  - key_id: a\n    public_key_file: missing.pub\n    sources: [/a]\n    types: [a.]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for signers, want := range map[string]string{
		"":  `route "shop": signatures: required, but the daemon has no signer registry: set AUDITBUS_SIGNERS_FILE`,
		bad: bad + `: signer "a" (line 3): public_key_file: `,
	} {
		cfg := daemon.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), Transports: []string{"mem"}, DefaultTransport: "mem",
			DefaultTopic: "events", Store: "sqlite", Routes: routes, SignersFile: signers}
		d, err := daemon.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
		if err == nil {
			_ = d.Close(t.Context())
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Start with signers file %q: %v; want %s", signers, err, want)
		}
	}
}

// waitEntry waits until the trail of (source, id) has an entry of kind
// (and route) and returns that trail.
func (l *live) waitEntry(t *testing.T, source, id, kind, route string) []sinks.Entry {
	t.Helper()
	var trail []sinks.Entry
	waitUntil(t, fmt.Sprintf("%s %s has a %s entry of route %s", source, id, kind, route), time.Minute, func() bool {
		items, err := l.store.Get(t.Context(), source, id)
		if err != nil {
			return false
		}
		trail = nil
		found := false
		for _, it := range items {
			trail = append(trail, it.Trail...)
			for _, e := range it.Trail {
				found = found || e.Kind == kind && e.Route == route
			}
		}
		return found
	})
	return trail
}

// deadLetters collects what a dead letter receives, by event id.
type deadLetters struct {
	mu     sync.Mutex
	events map[string]bus.Event
}

func (d *deadLetters) handle(_ context.Context, msgs []bus.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range msgs {
		d.events[m.Event.ID()] = m.Event
	}
	return nil
}

func (d *deadLetters) get(id string) (bus.Event, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.events[id]
	return e, ok
}

// The three events a route that requires signatures refuses arrive on
// Kafka (kfake), on RabbitMQ and on a mem topic (fed by POST ?topic=); each
// goes to the route's dead letter with the refusal as its reason, after a
// refused entry naming the dead letter is recorded; the signed one is
// delivered and its received entry says verified. A second, optional,
// route on the same Kafka topic delivers all four and records what it
// found.
func TestSignaturesFromBrokers(t *testing.T) {
	url := testservices.SharedRabbitMQ(t)
	k := newSigKeys(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	kcfg := kafka.Config{Brokers: cluster.ListenAddrs(), Partitions: 2, AutoCreateTopics: true, Linger: time.Millisecond,
		HeartbeatInterval: 100 * time.Millisecond, SessionTimeout: 6 * time.Second, RebalanceTimeout: 2 * time.Second,
		FetchMaxWait: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	suffix := fmt.Sprint(time.Now().UnixNano())
	kIn, kDead, aIn, aDead := "sig-k-in-"+suffix, "sig-k-dead-"+suffix, "auditbus-sig-a-in."+suffix, "auditbus-sig-a-dead."+suffix

	// The test's own clients: a Kafka producer and dead-letter reader, and
	// a RabbitMQ publisher and dead-letter reader, bound before the daemon
	// publishes there.
	kt, err := kafka.New(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kt.Close() })
	at, err := amqp.New(amqp.Config{URL: url, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = at.Close() })
	dead := map[string]*deadLetters{}
	for _, d := range []struct {
		name  string
		tr    bus.Transport
		topic string
	}{{"kafka", kt, kDead}, {"amqp", at, aDead}} {
		dl := &deadLetters{events: map[string]bus.Event{}}
		dead[d.name] = dl
		sub, err := d.tr.Subscribe(t.Context(), d.topic, "check", dl.handle, bus.SubscribeConfig{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Close() })
	}
	t.Cleanup(func() {
		testservices.DeleteRabbitMQ(url, aDead, amqp.QueueName(aDead, "check"))
		testservices.DeleteRabbitMQ(url, aIn, amqp.QueueName(aIn, "auditbus-a-shop"))
	})
	dead["mem"] = dead["kafka"] // the mem route parks in the Kafka dead letter

	l := startLive(t, fmt.Sprintf(`
routes:
  - name: k-shop
    source: {transport: kafka, topic: %[1]s}
    signatures: required
    destinations: [{transport: mem, topic: k-out}]
    dead_letter: {name: k-dead, transport: kafka, topic: %[2]s}
  - name: k-open
    source: {transport: kafka, topic: %[1]s}
    signatures: optional
    destinations: [{transport: mem, topic: k-open-out}]
    dead_letter: {transport: mem, topic: k-open-dead}
  - name: a-shop
    source: {transport: amqp, topic: %[3]q}
    signatures: required
    destinations: [{transport: mem, topic: a-out}]
    dead_letter: {name: a-dead, transport: amqp, topic: %[4]q}
  - name: m-shop
    source: {transport: mem, topic: sig-m-in}
    signatures: required
    destinations: [{transport: mem, topic: m-out}]
    dead_letter: {name: m-dead, transport: kafka, topic: %[2]s}
`, kIn, kDead, aIn, aDead), "AUDITBUS_SIGNERS_FILE="+k.file, "AUDITBUS_TRANSPORTS=mem,kafka,amqp", "AUDITBUS_DEFAULT_TRANSPORT=mem",
		"AUDITBUS_KAFKA_BROKERS="+cluster.ListenAddrs()[0], "AUDITBUS_KAFKA_PARTITIONS=2", "AUDITBUS_KAFKA_LINGER=1ms",
		"AUDITBUS_KAFKA_SESSION_TIMEOUT=6s", "AUDITBUS_KAFKA_HEARTBEAT_INTERVAL=200ms", "AUDITBUS_KAFKA_REBALANCE_TIMEOUT=3s",
		"AUDITBUS_KAFKA_FETCH_MAX_WAIT=100ms", "AUDITBUS_AMQP_URL="+url)

	for _, src := range []struct{ transport, route, dead string }{
		{"kafka", "k-shop", "k-dead"}, {"amqp", "a-shop", "a-dead"}, {"mem", "m-shop", "m-dead"},
	} {
		t.Run(src.transport, func(t *testing.T) {
			cases := k.cases(t, src.transport)
			evs := make([]bus.Event, len(cases))
			for i := range cases {
				evs[i] = cases[i].ev
			}
			switch src.transport {
			case "kafka":
				err = kt.Publish(t.Context(), kIn, evs)
			case "amqp":
				err = at.Publish(t.Context(), aIn, evs)
			case "mem":
				for _, e := range evs {
					if code, body := l.postEvent(t, "topic=sig-m-in", e); code != http.StatusAccepted {
						t.Fatalf("POST ?topic=sig-m-in: %d %s", code, body)
					}
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range cases {
				id := tc.ev.ID()
				if tc.reason == "" {
					trail := l.waitEntry(t, "/shop/cart", id, sinks.KindDelivered, src.route)
					if e := only(t, trail, sinks.KindReceived, src.route); e.Signature != tc.entry || e.Transport != src.transport {
						t.Errorf("%s: received entry %+v, want signature %q", tc.name, e, tc.entry)
					}
					if _, parked := dead[src.transport].get(id); parked {
						t.Errorf("%s: dead-lettered", tc.name)
					}
					continue
				}
				trail := l.waitEntry(t, "/shop/cart", id, sinks.KindRefused, src.route)
				e := only(t, trail, sinks.KindRefused, src.route)
				wantErr := fmt.Sprintf("refused (%s): route %q requires signatures: event %q", tc.reason, src.route, id)
				if e.Transport != src.transport || e.Destination != src.dead || !strings.HasPrefix(e.Error, wantErr) ||
					!strings.HasPrefix(e.Signature, tc.entry) || e.Principal != src.transport+":"+e.Topic {
					t.Errorf("%s: refused entry %+v; want %s, dead letter %s, signature %q", tc.name, e, wantErr, src.dead, tc.entry)
				}
				for _, x := range trail {
					if x.Route == src.route && x.Kind != sinks.KindRefused {
						t.Errorf("%s: a refused event has a %s entry too", tc.name, x.Kind)
					}
				}
				var parked bus.Event
				waitUntil(t, tc.name+" in the dead letter", time.Minute, func() (ok bool) {
					parked, ok = dead[src.transport].get(id)
					return ok
				})
				if r, _ := parked.Extensions()["deadletterreason"].(string); r != e.Error {
					t.Errorf("%s: dead letter reason %q, want the refused entry's %q", tc.name, r, e.Error)
				}
				if got := scrape(t, l.base+"/metrics", fmt.Sprintf(`auditbus_events_refused_total{reason=%q,transport=%q}`, tc.reason, src.transport)); got != 1 {
					t.Errorf("%s: refusals counted %v times, want 1", tc.name, got)
				}
				if src.transport == "mem" {
					// The HTTP reception before the route says what it found too.
					if e := only(t, trail, sinks.KindReceived, ""); e.Transport != "http" || !strings.HasPrefix(e.Signature, tc.entry) {
						t.Errorf("%s: HTTP received entry %+v", tc.name, e)
					}
				}
			}
			if src.transport != "kafka" {
				return
			}
			for _, tc := range cases {
				trail := l.waitEntry(t, "/shop/cart", tc.ev.ID(), sinks.KindDelivered, "k-open")
				if e := only(t, trail, sinks.KindReceived, "k-open"); !strings.HasPrefix(e.Signature, tc.entry) {
					t.Errorf("%s: the optional route's received entry says %q, want %q", tc.name, e.Signature, tc.entry)
				}
			}
		})
	}
}
