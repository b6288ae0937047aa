package signing_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/auditbus/auditbus/bus/signing"
	"github.com/cloudevents/sdk-go/v2/event"
)

func newEvent(id string) bus.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("/shop")
	e.SetType("com.example.order.created")
	e.SetExtension("tenant", "acme")
	_ = e.SetData(event.ApplicationJSON, map[string]int{"n": 1})
	return e
}

// collector gathers what a handler and a refuse callback were given.
type collector struct {
	mu       sync.Mutex
	handled  []bus.Event
	refused  map[string]error
	batchErr []error
}

func (c *collector) handler(_ context.Context, msgs []bus.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		c.handled = append(c.handled, m.Event)
	}
	return nil
}

func (c *collector) refuse(_ context.Context, msgs []bus.Message, err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		c.refused[m.Event.ID()] = err
	}
	return nil
}

func (c *collector) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := len(c.handled) + len(c.refused) + len(c.batchErr)
		c.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %d of %d events arrived", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A bus with WithSigner signs every event it publishes; a subscription
// with VerifyHandler hands its handler the verified events and refuses an
// unsigned one, a forged one and one from an unknown key.
func TestSignAndVerifyThroughBus(t *testing.T) {
	ctx := context.Background()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := signing.NewSigner("shop", priv, "tenant")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := signing.NewSigner("intruder", otherPriv, "tenant")
	forger, _ := signing.NewSigner("shop", otherPriv, "tenant")

	t1 := mem.New()
	signed := bus.New(t1, signing.WithSigner(s))
	defer signed.Close()
	c := &collector{refused: map[string]error{}}
	if _, err := signed.Subscribe(ctx, "orders", "billing", signing.VerifyHandler(signing.Keys{"shop": pub}, c.refuse)(c.handler)); err != nil {
		t.Fatal(err)
	}

	good := newEvent("good")
	good.SetExtension("injected", "x")
	if err := signed.Publish(ctx, "orders", good); err != nil {
		t.Fatal(err)
	}
	// The others skip the signing bus: straight to the transport.
	unsigned := newEvent("unsigned")
	unknown := newEvent("unknown")
	forged := newEvent("forged")
	tampered := newEvent("tampered")
	for _, p := range []struct {
		e *bus.Event
		s *signing.Signer
	}{{&unknown, other}, {&forged, forger}, {&tampered, s}} {
		p.e.SetTime(time.Now())
		if err := p.s.Sign(p.e); err != nil {
			t.Fatal(err)
		}
	}
	tampered.SetExtension("tenant", "globex")
	if err := t1.Publish(ctx, "orders", []bus.Event{unsigned, unknown, forged, tampered}); err != nil {
		t.Fatal(err)
	}
	c.wait(t, 5)

	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.handled) != 1 || c.handled[0].ID() != "good" {
		t.Fatalf("handled %v; want only the good event", c.handled)
	}
	if ext := c.handled[0].Extensions(); len(ext) != 1 || ext["tenant"] != "acme" {
		t.Fatalf("the handler saw extensions %v; want the signed one only", ext)
	}
	for id, want := range map[string]error{"unsigned": signing.ErrUnsigned, "unknown": signing.ErrUnknownKey, "forged": signing.ErrInvalid, "tampered": signing.ErrInvalid} {
		if !errors.Is(c.refused[id], want) {
			t.Errorf("%s: refused with %v; want %v", id, c.refused[id], want)
		}
	}
}

// Without a refuse callback, a batch holding an unverifiable event fails
// and takes the subscription's OnExhausted path, whole, with the reason.
func TestVerifyWithoutRefuseUsesOnExhausted(t *testing.T) {
	ctx := context.Background()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	b := bus.New(mem.New(), signing.WithVerifier(signing.Keys{"shop": pub}, nil))
	defer b.Close()
	c := &collector{refused: map[string]error{}}
	exhausted := func(_ context.Context, msgs []bus.Message, err error) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		for range msgs {
			c.batchErr = append(c.batchErr, err)
		}
		return nil
	}
	if _, err := b.Subscribe(ctx, "orders", "audit", c.handler, bus.MaxAttempts(2), bus.RetryBackoff(time.Millisecond, time.Millisecond), bus.OnExhausted(exhausted)); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "orders", newEvent("plain")); err != nil {
		t.Fatal(err)
	}
	c.wait(t, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.handled) != 0 || len(c.batchErr) != 1 || !errors.Is(c.batchErr[0], signing.ErrUnsigned) {
		t.Fatalf("handled %d, exhausted %v; want the batch in OnExhausted with ErrUnsigned", len(c.handled), c.batchErr)
	}
}

// A batch with an event the signer cannot sign is not published.
func TestPublishMiddlewareRefusesUnsignable(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, _ := signing.NewSigner("shop", priv, "partitionkey")
	b := bus.New(mem.New(), signing.WithSigner(s))
	defer b.Close()
	err := b.Publish(context.Background(), "orders", newEvent("no-key"))
	if err == nil {
		t.Fatal("published an event lacking a signed extension")
	}
}
