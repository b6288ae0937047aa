// Command bench-sign-verify compares, in one process, signing and verifying
// CloudEvents with package bus/signing against raw crypto/ed25519 signing
// and verifying the same digests.
//
// The workload is N events of 1 KiB data with three extensions, all
// signed. auditbus's side runs Signer.Sign and then Verify on each event:
// the digest chain over the attributes, data and extensions, the DSSE
// envelope, its JSON and Base64, and back. The raw side runs ed25519.Sign
// and ed25519.Verify on each event's 32-byte digest, computed beforehand:
// the cryptography alone. Each round runs both sides over the events
// chunk by chunk (250 events), alternating which goes first, so that a
// change in the machine's load falls on both; a warm-up round comes first
// and the heap is collected before each round. It prints every round, the
// median of each side and, as its last line, "ratio: X.XX": auditbus
// events/s divided by raw events/s (the median of the rounds' ratios).
//
// Usage:
//
//	go run ./cmd/bench-sign-verify [-events 20000] [-size 1024] [-rounds 5]
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/signing"
	"github.com/cloudevents/sdk-go/v2/event"
)

func main() {
	events := flag.Int("events", 20000, "events per run")
	size := flag.Int("size", 1024, "data bytes per event")
	rounds := flag.Int("rounds", 5, "measured rounds; each runs both sides")
	flag.Parse()
	if err := run(*events, *size, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench-sign-verify:", err)
		os.Exit(1)
	}
}

// chunk is how many events one side handles before the other takes over.
const chunk = 250

var extensions = []string{"partitionkey", "tenant", "traceparent"}

func run(n, size, rounds int) error {
	if n <= 0 || size < 0 || rounds <= 0 {
		return errors.New("-events and -rounds must be positive, -size not negative")
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	signer, err := signing.NewSigner("bench", priv, extensions...)
	if err != nil {
		return err
	}
	keys := signing.Keys{"bench": pub}
	evs := make([]bus.Event, n)
	digests := make([][32]byte, n)
	data := []byte(`{"pad":"` + strings.Repeat("x", max(size-10, 0)) + `"}`)[:size]
	for i := range evs {
		e := event.New()
		e.SetID(fmt.Sprintf("ev-%08d", i))
		e.SetSource("/bench/orders")
		e.SetType("com.example.order.created")
		e.SetTime(time.Now())
		e.SetExtension("partitionkey", fmt.Sprintf("customer-%d", i%1000))
		e.SetExtension("tenant", "acme")
		e.SetExtension("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		if err := e.SetData("application/json", data); err != nil {
			return err
		}
		evs[i] = e
		if digests[i], err = signing.Digest(&e, extensions); err != nil {
			return err
		}
	}
	// Each side runs over a range of the events, so that a round can
	// alternate the two chunk by chunk: a change in the machine's load
	// then falls on both.
	sides := map[string]func(lo, hi int) error{
		"auditbus": func(lo, hi int) error {
			for i := lo; i < hi; i++ {
				if err := signer.Sign(&evs[i]); err != nil {
					return err
				}
				if _, err := signing.Verify(&evs[i], keys); err != nil {
					return err
				}
			}
			return nil
		},
		"raw": func(lo, hi int) error {
			for i := lo; i < hi; i++ {
				sig := ed25519.Sign(priv, digests[i][:])
				if !ed25519.Verify(pub, digests[i][:], sig) {
					return errors.New("raw ed25519 verify failed")
				}
			}
			return nil
		},
	}
	// measure runs both sides over every chunk, alternating which goes
	// first, and returns each side's events per second.
	measure := func() (map[string]float64, error) {
		runtime.GC()
		spent := map[string]time.Duration{}
		for c, lo := 0, 0; lo < n; c, lo = c+1, lo+chunk {
			hi := min(lo+chunk, n)
			order := []string{"auditbus", "raw"}
			if c%2 == 1 {
				order = []string{"raw", "auditbus"}
			}
			for _, name := range order {
				start := time.Now()
				if err := sides[name](lo, hi); err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
				spent[name] += time.Since(start)
			}
		}
		return map[string]float64{"auditbus": float64(n) / spent["auditbus"].Seconds(), "raw": float64(n) / spent["raw"].Seconds()}, nil
	}

	fmt.Printf("bench-sign-verify: %d events of %d bytes, Ed25519, %d signed extensions; %d rounds; GOMAXPROCS=%d %s/%s %s\n",
		n, size, len(extensions), rounds, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	if _, err := measure(); err != nil { // warm-up
		return err
	}
	var a, r, ratios []float64
	for i := range rounds {
		got, err := measure()
		if err != nil {
			return err
		}
		a, r = append(a, got["auditbus"]), append(r, got["raw"])
		ratios = append(ratios, got["auditbus"]/got["raw"])
		fmt.Printf("round %d: auditbus sign+verify %.0f events/s, raw ed25519 sign+verify %.0f digests/s, ratio %.3f\n",
			i+1, got["auditbus"], got["raw"], ratios[i])
	}
	fmt.Printf("auditbus (Signer.Sign + Verify): %.0f events/s (median)\n", median(a))
	fmt.Printf("raw crypto/ed25519 (Sign + Verify of the digests): %.0f digests/s (median)\n", median(r))
	fmt.Printf("rounds: ratio %.3f to %.3f\n", slices.Min(ratios), slices.Max(ratios))
	fmt.Printf("ratio: %.2f\n", median(ratios))
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
