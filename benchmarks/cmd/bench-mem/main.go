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
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/auditbus/auditbus/benchmarks/internal/workload"
)

const (
	runTimeout   = 2 * time.Minute
	warmupEvents = 20000
)

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
	systems := []workload.System{workload.Auditbus, workload.Watermill}
	// One workload for every round: both sides always publish the same ids
	// and payload bytes.
	w, err := workload.New(cfg)
	if err != nil {
		return err
	}

	fmt.Printf("bench-mem: %d events of %d bytes, publish batches of %d, 1 consumer; %d rounds; GOMAXPROCS=%d %s/%s %s\n",
		cfg.Events, cfg.Size, cfg.Batch, rounds, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())

	warm := cfg
	warm.Events = min(cfg.Events, warmupEvents)
	ww, err := workload.New(warm)
	if err != nil {
		return err
	}
	for _, s := range systems {
		if _, err := once(s, ww); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}

	rates := make([][]float64, len(systems))
	for r := 1; r <= rounds; r++ {
		var line strings.Builder
		fmt.Fprintf(&line, "round %d:", r)
		for i, s := range systems {
			res, err := once(s, w)
			if err != nil {
				return fmt.Errorf("round %d: %w", r, err)
			}
			rates[i] = append(rates[i], res.PerSecond())
			fmt.Fprintf(&line, " %s %.0f events/s (%v);", s.Name, res.PerSecond(), res.Elapsed.Round(time.Millisecond))
		}
		fmt.Println(strings.TrimSuffix(line.String(), ";"))
	}

	medians := make([]float64, len(systems))
	for i, s := range systems {
		medians[i] = median(rates[i])
		all := make([]string, len(rates[i]))
		for j, v := range rates[i] {
			all[j] = fmt.Sprintf("%.0f", v)
		}
		fmt.Printf("%s: %.0f events/s (median of %d; rounds: %s)\n", s.Name, medians[i], rounds, strings.Join(all, ", "))
	}
	fmt.Printf("ratio: %.2f\n", medians[0]/medians[1])
	return nil
}

// once sets up, runs, verifies and closes one trial of s on w. On failure it
// returns without closing: a stuck system may not close, and the process
// exits anyway.
func once(s workload.System, w *workload.Workload) (workload.Result, error) {
	tr, err := s.Setup(w)
	if err != nil {
		return workload.Result{}, err
	}
	ctx, cancel := context.WithTimeoutCause(context.Background(), runTimeout,
		fmt.Errorf("timed out after %v", runTimeout))
	defer cancel()
	res, err := tr.Run(ctx)
	if err != nil {
		return res, err
	}
	if err := tr.Verify(); err != nil {
		return res, err
	}
	if err := tr.Close(); err != nil {
		return res, fmt.Errorf("%s: close: %w", s.Name, err)
	}
	return res, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
