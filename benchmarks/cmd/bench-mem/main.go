// Command bench-mem compares, in one process, the end-to-end throughput of
// auditbus over its in-process transport with Watermill's GoChannel Pub/Sub
// on the same workload: N events of the same size and ids, published in the
// same batches by one goroutine while one consumer handles them.
//
// Each side is warmed up once with a small run; then every round runs
// auditbus and then Watermill, each on a freshly built system and messages
// with the heap collected beforehand (see package workload for the other
// fairness rules). It prints every round, the median of each side and, as
// its last line, "ratio: X.XX": auditbus events/s divided by Watermill
// events/s. It exits non-zero if a side loses, duplicates or corrupts an
// event, or does not finish within two minutes.
//
// Usage:
//
//	go run ./cmd/bench-mem [-events 200000] [-size 1024] [-batch 100] [-rounds 3]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"

	"github.com/auditbus/auditbus/benchmarks/internal/workload"
)

const warmupEvents = 20000

func main() {
	var cfg workload.Config
	flag.IntVar(&cfg.Events, "events", 200000, "events per run")
	flag.IntVar(&cfg.Size, "size", 1024, "payload bytes per event")
	flag.IntVar(&cfg.Batch, "batch", 100, "events per publish call")
	rounds := flag.Int("rounds", 3, "measured rounds; each runs both sides")
	flag.Parse()
	if err := run(cfg, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench-mem:", err)
		os.Exit(1)
	}
}

func run(cfg workload.Config, rounds int) error {
	if rounds <= 0 {
		return errors.New("-rounds must be positive")
	}
	// One workload for every round: both sides always publish the same ids
	// and payload bytes.
	w, err := workload.New(cfg)
	if err != nil {
		return err
	}

	fmt.Printf("bench-mem: %d events of %d bytes, publish batches of %d, 1 consumer; %d rounds; GOMAXPROCS=%d %s/%s %s\n",
		cfg.Events, cfg.Size, cfg.Batch, rounds, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	return workload.Comparison{
		Systems:      []workload.Paced{{System: workload.Auditbus}, {System: workload.Watermill}},
		WarmupEvents: warmupEvents,
		Rounds:       rounds,
		ListRounds:   true,
	}.Run(os.Stdout, w)
}
