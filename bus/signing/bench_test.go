package signing

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

// benchEvent is the make bench-verify workload: 1 KiB of data, three
// signed extensions.
func benchEvent(b *testing.B) event.Event {
	e := event.New()
	e.SetID("ev-00000001")
	e.SetSource("/bench/orders")
	e.SetType("com.example.order.created")
	e.SetExtension("partitionkey", "customer-1")
	e.SetExtension("tenant", "acme")
	e.SetExtension("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if err := e.SetData("application/json", []byte(`{"pad":"`+strings.Repeat("x", 1014)+`"}`)); err != nil {
		b.Fatal(err)
	}
	return e
}

var benchExts = []string{"partitionkey", "tenant", "traceparent"}

func BenchmarkSign(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, _ := NewSigner("k", priv, benchExts...)
	e := benchEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Sign(&e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, _ := NewSigner("k", priv, benchExts...)
	e := benchEvent(b)
	if err := s.Sign(&e); err != nil {
		b.Fatal(err)
	}
	keys := Keys{"k": pub}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(&e, keys); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDigest(b *testing.B) {
	e := benchEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Digest(&e, benchExts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawEd25519(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	e := benchEvent(b)
	d, _ := Digest(&e, benchExts)
	for b.Loop() {
		if !ed25519.Verify(pub, d[:], ed25519.Sign(priv, d[:])) {
			b.Fatal("verify")
		}
	}
}
