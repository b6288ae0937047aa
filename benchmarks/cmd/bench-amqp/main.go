// Command bench-amqp compares, in one process and on one RabbitMQ broker,
// the end-to-end throughput of auditbus's RabbitMQ transport (bus/amqp)
// with a peer: raw amqp091-go (-vs raw) or Watermill's AMQP Pub/Sub
// (-vs watermill). Every side publishes the same N events of the same size
// with publisher confirms into a durable queue of its own, while one
// consumer with the same prefetch handles them; the clock stops when the
// consumer has handled the last event.
//
// After a warm-up of each side, every round runs auditbus and then the
// peer, each on a fresh exchange and queue (deleted afterwards). It prints
// every round, each side's median and, as its last line,
// "ratio: X.XX": auditbus events/s divided by the peer's. It exits non-zero
// if a side loses, duplicates or corrupts an event, or does not finish
// within two minutes.
//
// Usage:
//
//	go run ./cmd/bench-amqp -vs raw|watermill [-url amqp://guest:guest@127.0.0.1:5672/]
//	    [-events 50000] [-size 1024] [-rounds 3] [-window 256] [-prefetch 200] [-publishers 4]
//	    [-watermill-tuned]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"

	"github.com/auditbus/auditbus/benchmarks/internal/workload"
)

func main() {
	var c workload.AMQP
	var cfg workload.Config
	vs := flag.String("vs", "", "the peer: raw or watermill")
	flag.StringVar(&c.URL, "url", "amqp://guest:guest@127.0.0.1:5672/", "broker URL")
	flag.IntVar(&c.Window, "window", 256, "publisher confirms awaited at once")
	flag.IntVar(&c.Prefetch, "prefetch", 200, "consumer prefetch")
	flag.IntVar(&c.Publishers, "publishers", 4, "publishing goroutines of the sides whose Publish waits for its batch")
	flag.IntVar(&cfg.Events, "events", 50000, "events per run")
	flag.IntVar(&cfg.Size, "size", 1024, "payload bytes per event")
	rounds := flag.Int("rounds", 3, "measured rounds; each runs both sides")
	tuned := flag.Bool("watermill-tuned", false, "give Watermill a channel pool and auditbus's prefetch instead of its defaults")
	flag.Parse()
	cfg.Batch = 100
	if err := run(*vs, *tuned, c, cfg, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench-amqp:", err)
		os.Exit(1)
	}
}

func run(vs string, tuned bool, c workload.AMQP, cfg workload.Config, rounds int) error {
	if rounds <= 0 {
		return errors.New("-rounds must be positive")
	}
	systems := []workload.Paced{workload.AuditbusAMQP(c)}
	switch vs {
	case "raw":
		systems = append(systems, workload.RawAMQP(c))
	case "watermill":
		systems = append(systems, workload.WatermillAMQP(c, tuned))
	default:
		return fmt.Errorf("-vs %q: want raw or watermill", vs)
	}
	w, err := workload.New(cfg)
	if err != nil {
		return err
	}
	fmt.Printf("bench-amqp: %d events of %d bytes, confirm window %d, prefetch %d, %d publishers of batches of 100 (raw: one sliding window); %d rounds; GOMAXPROCS=%d %s/%s %s\n",
		cfg.Events, cfg.Size, c.Window, c.Prefetch, c.Publishers, rounds, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())

	return workload.Comparison{Systems: systems, WarmupEvents: 5000, Rounds: rounds}.Run(os.Stdout, w)
}
