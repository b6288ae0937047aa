// Command bench-router measures what the router costs beyond its slowest
// part. In one process, on the same events, it runs:
//
//	(a) a mem → mem route fanning out to 3 mem destinations, audit off;
//	(b) the audit writer alone appending the same versions and entries
//	    (received, and delivered for each of the 3 destinations) to a
//	    fresh embedded (SQLite) store, with as many concurrent writers as
//	    the route has concurrent batches;
//	(c) the same route with the audit writer on a fresh SQLite store,
//	    with the ledger's Merkle tree built beside it and a signed
//	    checkpoint every second, as the daemon runs them (-ledger=false
//	    leaves them out).
//
// A run ends when every destination has every event and, with audit on,
// every event's record is durable. It prints events/s for each, per round
// and as medians, and ends with "ratio: X.XX" = c ÷ min(a, b).
//
// With -signed every event is signed (Ed25519, DSSE, bus/signing), the
// route has signatures: required and a signer registry of the key, and
// every part verifies each event once: (a) and (c) in the route, (b)
// before appending, recording the result in the received entry as the
// route does.
//
// With -tracing it compares instead, round by round, (c) with tracing off
// and (d) the same route with tracing on: every span sampled and exported
// over OTLP/HTTP to a receiver in this process on 127.0.0.1, which counts
// them. It ends with "ratio: X.XX" = d ÷ c, and prints the spans per event.
//
// Usage:
//
//	go run ./cmd/bench-router [-events 100000] [-size 1024] [-batch 100] [-rounds 3] [-signed] [-tracing]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditbus/auditbus/benchmarks/internal/workload"
	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/ledgertree"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/mod/sumdb/note"
)

const routes = `
routes:
  - name: bench
    source: {transport: mem, topic: in}
    destinations:
      - {transport: mem, topic: d1}
      - {transport: mem, topic: d2}
      - {transport: mem, topic: d3}
    dead_letter: {transport: mem, topic: dlq}
`

// withLedger: run (c) with the ledger's tree builder and checkpoints.
var withLedger = true

// checker verifies every event in (a), (b) and (c); nil without -signed.
var checker router.SignatureChecker

// concurrency is how many batches the route handles at once: the mem
// transport's default partition count.
const concurrency = 8

func main() {
	events := flag.Int("events", 100000, "events per run")
	size := flag.Int("size", 1024, "payload bytes per event")
	batch := flag.Int("batch", 100, "events per publish call")
	rounds := flag.Int("rounds", 3, "measured rounds; each runs a, b and c")
	tracing := flag.Bool("tracing", false, "compare the route with tracing off and on (OTLP to 127.0.0.1) instead")
	flag.BoolVar(&withLedger, "ledger", true, "(c) builds the ledger's Merkle tree and signs checkpoints, as the daemon does")
	signed := flag.Bool("signed", false, "sign every event; the route requires signatures and every part verifies each event once")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measured rounds to this file, samples labelled part=a, b or c")
	flag.Parse()
	stopProfile, err := workload.StartCPUProfile(*cpuprofile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-router:", err)
		os.Exit(1)
	}
	do := run
	if *tracing {
		do = runTracing
	}
	if *signed && *tracing {
		fmt.Fprintln(os.Stderr, "bench-router: -signed and -tracing are separate comparisons; give one")
		os.Exit(2)
	}
	if *signed {
		do = runSigned
	}
	err = do(*events, *size, *batch, *rounds)
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-router:", err)
		os.Exit(1)
	}
}

func run(n, size, batch, rounds int) error {
	if n <= 0 || batch <= 0 || rounds <= 0 || size < 0 {
		return errors.New("-events, -batch and -rounds must be positive")
	}
	return compare(makeEvents(n, size), size, batch, rounds)
}

// compare runs (a), (b) and (c) on evs, rounds times, and prints the
// ratio.
func compare(evs []bus.Event, size, batch, rounds int) error {
	n := len(evs)
	fmt.Printf("bench-router: %d events of %d bytes, publish batches of %d, route to 3 mem destinations, SQLite audit store (default durability), ledger tree and checkpoints in (c): %v, signed and verified: %v; %d rounds; GOMAXPROCS=%d %s/%s %s\n",
		n, size, batch, withLedger, checker != nil, rounds, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	// Warm up every path once.
	if _, err := routeRun(evs[:min(n, 10000)], batch, false, nil); err != nil {
		return err
	}
	ctx := context.Background()
	var a, b, c []float64
	for r := 1; r <= rounds; r++ {
		var ra, rb, rc float64
		var err error
		// The labels tell the parts apart in a CPU profile (-cpuprofile):
		// pprof -tagfocus part=c.
		part(ctx, "a", func() { ra, err = routeRun(evs, batch, false, nil) })
		if err != nil {
			return fmt.Errorf("(a) route, audit off: %w", err)
		}
		part(ctx, "b", func() { rb, err = writerRun(evs, batch) })
		if err != nil {
			return fmt.Errorf("(b) audit writer alone: %w", err)
		}
		part(ctx, "c", func() { rc, err = routeRun(evs, batch, true, nil) })
		if err != nil {
			return fmt.Errorf("(c) route, audit on: %w", err)
		}
		fmt.Printf("round %d: (a) route, audit off %.0f events/s; (b) audit writer alone %.0f events/s; (c) route, audit on %.0f events/s\n", r, ra, rb, rc)
		a, b, c = append(a, ra), append(b, rb), append(c, rc)
	}
	ma, mb, mc := median(a), median(b), median(c)
	fmt.Printf("(a) route, audit off: %.0f events/s (median of %d)\n", ma, rounds)
	fmt.Printf("(b) audit writer alone: %.0f events/s (median of %d)\n", mb, rounds)
	fmt.Printf("(c) route, audit on: %.0f events/s (median of %d)\n", mc, rounds)
	fmt.Printf("ratio: %.2f\n", mc/min(ma, mb))
	return nil
}

// part runs f with the profiler label part=name, which the goroutines it
// starts inherit.
func part(ctx context.Context, name string, f func()) {
	pprof.Do(ctx, pprof.Labels("part", name), func(context.Context) { f() })
}

func makeEvents(n, size int) []bus.Event {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	at := time.Now().UTC()
	evs := make([]bus.Event, n)
	for i := range evs {
		e := event.New()
		e.SetID(fmt.Sprintf("bench-%08d", i))
		e.SetSource("/bench/router")
		e.SetType("com.example.bench")
		e.SetTime(at.Add(time.Duration(i) * time.Microsecond))
		_ = e.SetData("application/octet-stream", data)
		evs[i] = e
	}
	return evs
}

// counting is an Auditor that counts the records made durable: one per
// event the route handled.
type counting struct {
	w *sinks.Writer
	n atomic.Int64
}

func (c *counting) Write(ctx context.Context, recs []sinks.Record) error {
	err := c.w.Write(ctx, recs)
	if err == nil {
		c.n.Add(int64(len(recs)))
	}
	return err
}

// routeRun publishes evs through the route and returns events/s; a
// non-nil tracer traces the route and the audit writer.
func routeRun(evs []bus.Event, batch int, audit bool, tracer trace.Tracer) (float64, error) {
	ctx := context.Background()
	tr := mem.New()
	defer tr.Close()
	var received [3]atomic.Int64
	for i := range received {
		sub, err := tr.Subscribe(ctx, fmt.Sprintf("d%d", i+1), "sink", func(_ context.Context, msgs []bus.Message) error {
			received[i].Add(int64(len(msgs)))
			return nil
		}, bus.SubscribeConfig{})
		if err != nil {
			return 0, err
		}
		defer sub.Close()
	}
	text := routes
	if checker != nil {
		text += "    signatures: required\n"
	}
	cfgs, err := router.ParseRoutes("bench-routes.yaml", []byte(text))
	if err != nil {
		return 0, err
	}
	opts := router.Options{Transports: map[string]bus.Transport{"mem": tr}, Tracer: tracer, Signatures: checker}
	var aud *counting
	if audit {
		dir, err := os.MkdirTemp("", "bench-router-")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		store, err := sqlite.Open(ctx, dir, sqlite.Options{})
		if err != nil {
			return 0, err
		}
		defer store.Close()
		w := sinks.NewWriter(store, sinks.WriterOptions{Tracer: tracer})
		defer w.Close()
		aud = &counting{w: w}
		opts.Audit = aud
		if withLedger {
			b, err := startLedger(ctx, store)
			if err != nil {
				return 0, err
			}
			defer func() {
				// How far the tree was behind when the route was done, and
				// how long it took to catch up: not part of the rate.
				behind := time.Now()
				if err := b.Close(ctx); err != nil {
					fmt.Fprintln(os.Stderr, "bench-router: ledger tree:", err)
				}
				fmt.Printf("    ledger tree: %d leaves, caught up %.2fs after the route was done\n", b.Size(), time.Since(behind).Seconds())
			}()
		}
	}
	rt, err := router.New(cfgs, opts)
	if err != nil {
		return 0, err
	}
	if err := rt.Start(ctx); err != nil {
		return 0, err
	}
	defer rt.Close()
	runtime.GC()
	n := int64(len(evs))
	start := time.Now()
	for lo := 0; lo < len(evs); lo += batch {
		if err := tr.Publish(ctx, "in", evs[lo:min(lo+batch, len(evs))]); err != nil {
			return 0, err
		}
	}
	deadline := start.Add(5 * time.Minute)
	for received[0].Load() < n || received[1].Load() < n || received[2].Load() < n || (aud != nil && aud.n.Load() < n) {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("not done after 5 minutes: destinations %d/%d/%d of %d", received[0].Load(), received[1].Load(), received[2].Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// writerRun appends evs through a sinks.Writer into a fresh store, in
// batches, from as many goroutines as the route runs batches at once.
func writerRun(evs []bus.Event, batch int) (float64, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bench-router-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		return 0, err
	}
	defer store.Close()
	w := sinks.NewWriter(store, sinks.WriterOptions{})
	defer w.Close()
	received := time.Now()
	recs := make([]sinks.Record, len(evs))
	for i := range evs {
		recs[i] = sinks.Record{Event: evs[i], Entries: []sinks.Entry{
			{Kind: sinks.KindReceived, Time: received, Transport: "mem", Topic: "in", Partition: i % concurrency, Offset: int64(i),
				Principal: "mem:in", Route: "bench"},
			{Kind: sinks.KindDelivered, Time: received, Route: "bench", Destination: "mem:d1", Attempts: 1},
			{Kind: sinks.KindDelivered, Time: received, Route: "bench", Destination: "mem:d2", Attempts: 1},
			{Kind: sinks.KindDelivered, Time: received, Route: "bench", Destination: "mem:d3", Attempts: 1},
		}}
	}
	runtime.GC()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, concurrency)
	start := time.Now()
	for g := range concurrency {
		wg.Go(func() {
			for {
				lo := int(next.Add(int64(batch))) - batch
				if lo >= len(recs) {
					return
				}
				part := recs[lo:min(lo+batch, len(recs))]
				if checker != nil {
					for i := range part {
						part[i].Entries[0].Signature = checker.Check(&part[i].Event).Entry
					}
				}
				if err := w.Write(ctx, part); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return float64(len(evs)) / took.Seconds(), nil
}

// startLedger starts the daemon's ledger tree builder on store, signing a
// checkpoint every second with a fresh key.
func startLedger(ctx context.Context, store *sqlite.Store) (*ledgertree.Builder, error) {
	skey, _, err := ledgertree.GenerateKey("bench-router")
	if err != nil {
		return nil, err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	return ledgertree.StartBuilder(ctx, ledgertree.BuilderOptions{Store: store, Log: store.Log(), Signer: signer, Interval: time.Second})
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
