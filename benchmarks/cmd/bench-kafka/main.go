// Command bench-kafka compares, in one process, the end-to-end throughput
// of auditbus's Kafka transport (bus/kafka) with a peer: raw kafka-go used
// the way bus/kafka uses it (-vs raw) or Watermill's Kafka Pub/Sub
// (-vs watermill). The broker is kfake, an in-process Kafka wire-protocol
// broker, started once for the whole run with one broker; every trial gets
// a topic of its own with 4 partitions. One goroutine publishes the same N
// events of the same size in batches, each call returning once the broker
// acknowledged them, while one consumer-group member handles them; the
// clock stops when it has handled the last event.
//
// After a warm-up of each side, every round runs auditbus and then the
// peer. It prints every round, each side's median and, as its last line,
// "ratio: X.XX": auditbus events/s divided by the peer's. It exits non-zero
// if a side loses, duplicates or corrupts an event, or does not finish
// within two minutes.
//
// Usage:
//
//	go run ./cmd/bench-kafka -vs raw|watermill [-events 100000] [-size 1024]
//	    [-batch 100] [-rounds 3] [-cpuprofile file]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/auditbus/auditbus/benchmarks/internal/workload"
	"github.com/twmb/franz-go/pkg/kfake"
)

const partitions = 4

func main() {
	var cfg workload.Config
	vs := flag.String("vs", "", "the peer: raw or watermill")
	flag.IntVar(&cfg.Events, "events", 100000, "events per run")
	flag.IntVar(&cfg.Size, "size", 1024, "payload bytes per event")
	flag.IntVar(&cfg.Batch, "batch", 100, "events per publish call")
	rounds := flag.Int("rounds", 3, "measured rounds; each runs both sides")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (broker included) to this file")
	flag.Parse()
	if err := run(*vs, cfg, *rounds, *cpuprofile); err != nil {
		fmt.Fprintln(os.Stderr, "bench-kafka:", err)
		os.Exit(1)
	}
}

func run(vs string, cfg workload.Config, rounds int, cpuprofile string) error {
	if rounds <= 0 {
		return errors.New("-rounds must be positive")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(partitions))
	if err != nil {
		return fmt.Errorf("start kfake: %w", err)
	}
	defer cluster.Close()
	k := workload.Kafka{Brokers: cluster.ListenAddrs(), Partitions: partitions}
	systems := []workload.Paced{workload.AuditbusKafka(k)}
	switch vs {
	case "raw":
		systems = append(systems, workload.RawKafka(k))
	case "watermill":
		systems = append(systems, workload.WatermillKafka(k))
	default:
		return fmt.Errorf("-vs %q: want raw or watermill", vs)
	}
	w, err := workload.New(cfg)
	if err != nil {
		return err
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("bench-kafka: %d events of %d bytes, publish batches of %d by 1 goroutine, 1 consumer; kfake in-process, 1 broker, %d partitions; %d rounds; GOMAXPROCS=%d %s/%s %s\n",
		cfg.Events, cfg.Size, cfg.Batch, partitions, rounds, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	// The warm-up runs the full workload on each side: the in-process
	// broker's heap grows to hold a whole run, and a smaller warm-up left
	// that growth (and its GC work) to whichever side ran first in round 1.
	return workload.Comparison{Systems: systems, WarmupEvents: cfg.Events, Rounds: rounds}.Run(os.Stdout, w)
}
