// Command bench-replay measures replay throughput: a pkg/replay job that
// reads N stored events from the audit store (ClickHouse by default, the
// local server of AUDITBUS_CLICKHOUSE_*; or SQLite with -store sqlite),
// publishes them to a Kafka topic with no rate limit and records a
// replayed entry for each on its original version, against raw kafka-go
// publishing the same N events, already in memory, in the same run.
//
// The broker is kfake, an in-process Kafka wire-protocol broker with 4
// partitions per topic. The replay publishes through bus/kafka in binary
// mode (batches of -page events, 1,000 by default as in the daemon, read
// from the store ten batches a page, with the total counted beside it as
// every job does). The raw side is a
// kafka.Writer with bus/kafka's producer settings (batch size 1,000, 1 MiB,
// linger 200µs, acks=all, Murmur2 partitioner) writing calls of -page
// messages built before
// timing with exactly the headers and bytes the replay's copies carry
// (the stored attributes and extensions, the replay extensions, the data
// as the value). Each round times the replay and then the raw publish,
// each to a topic of its own created beforehand, and then reads the same
// store pages as the replay from the store alone (the ceiling the store
// sets). One warm-up round (-warmup) runs first untimed, so the heap, the
// server's caches and kfake have grown before anything is measured. Per
// round the ratio of the replay's events/s to the raw publish's is
// printed: the two run back to back, so a round's pair shares the
// machine's state, which on a shared two-core machine drifts from one
// second to the next. The medians of the rounds and the ratio of the
// medians follow, and last "ratio: X.XX", the median of the rounds'
// ratios.
//
// Usage:
//
//	go run ./cmd/bench-replay [-store clickhouse|sqlite] [-events 100000]
//	    [-size 256] [-keys 100] [-rounds 5] [-warmup 1] [-page 1000] [-cpuprofile file]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/auditbus/auditbus/benchmarks/internal/workload"
	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/kafka"
	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/clickhouse"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

const partitions = 4

func main() {
	store := flag.String("store", "clickhouse", "the audit store replayed from: clickhouse (AUDITBUS_CLICKHOUSE_*) or sqlite")
	events := flag.Int("events", 100000, "events stored and replayed per round")
	size := flag.Int("size", 256, "bytes of JSON data per event")
	keys := flag.Int("keys", 100, "partition keys the events spread over")
	rounds := flag.Int("rounds", 5, "measured rounds; each runs the replay, then the raw publish, then the store read alone")
	warmup := flag.Int("warmup", 1, "untimed rounds before the measured ones")
	page := flag.Int("page", 1000, "events the replay reads and publishes at once (the daemon's AUDITBUS_REPLAY_BATCH_SIZE), and the raw side's call size")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	stopProfile, err := workload.StartCPUProfile(*cpuprofile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-replay:", err)
		os.Exit(1)
	}
	err = run(*store, *events, *size, *keys, *rounds, *warmup, *page)
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-replay:", err)
		os.Exit(1)
	}
}

func run(storeName string, n, size, keys, rounds, warmup, page int) error {
	switch {
	case n <= 0 || size < 16 || keys <= 0 || rounds <= 0 || warmup < 0:
		return errors.New("-events, -keys and -rounds must be positive, -warmup not negative and -size at least 16")
	case page <= 0 || page > sinks.MaxLimit:
		return fmt.Errorf("-page %d: want 1 to %d", page, sinks.MaxLimit)
	}
	ctx := context.Background()
	store, drop, err := openStore(ctx, storeName)
	if err != nil {
		return err
	}
	defer func() {
		if err := drop(); err != nil {
			fmt.Fprintln(os.Stderr, "bench-replay: clean up:", err)
		}
	}()
	fmt.Printf("bench-replay: %d events of %d data bytes over %d keys, from %s, pages of %d; kfake in-process, 1 broker, %d partitions; %d rounds after %d warm-up; GOMAXPROCS=%d %s/%s %s\n",
		n, size, keys, store, page, partitions, rounds, warmup, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())

	loadStart := time.Now()
	if err := load(ctx, store, n, size, keys); err != nil {
		return err
	}
	fmt.Printf("stored %d events in %.2fs\n", n, time.Since(loadStart).Seconds())
	stored, err := readAll(ctx, store)
	if err != nil {
		return err
	}
	if len(stored) != n {
		return fmt.Errorf("the store returns %d events, want %d", len(stored), n)
	}

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DefaultNumPartitions(partitions))
	if err != nil {
		return fmt.Errorf("start kfake: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	tr, err := kafka.New(kafka.Config{Brokers: brokers, Partitions: partitions, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer tr.Close()
	raw := &kafkago.Writer{
		Addr: kafkago.TCP(brokers...), Balancer: &kafkago.Murmur2Balancer{}, BatchSize: 1000, BatchBytes: 1 << 20,
		BatchTimeout: 200 * time.Microsecond, RequiredAcks: kafkago.RequireAll, MaxAttempts: 3,
		Transport: &kafkago.Transport{ClientID: "auditbus"},
	}
	defer raw.Close()
	admin := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second}

	dir, err := os.MkdirTemp("", "bench-replay-jobs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The replay records a replayed entry per copy on its original, as
	// in the daemon, through a writer of its own.
	audit := sinks.NewWriter(store, sinks.WriterOptions{})
	defer audit.Close()
	m, err := replay.NewManager(replay.Options{Dir: dir, Store: store, Audit: audit, BatchSize: page})
	if err != nil {
		return err
	}
	defer m.Close()

	// Every round's topics exist before the first: a producer that cached
	// the cluster's metadata would not see a topic created later at once.
	var topics []string
	for r := 1 - warmup; r <= rounds; r++ {
		topics = append(topics, fmt.Sprintf("replay-%d", r+warmup), fmt.Sprintf("raw-%d", r+warmup))
	}
	if err := createTopics(ctx, admin, topics...); err != nil {
		return err
	}
	var ours, theirs, reads, ratios []float64
	for r := 1 - warmup; r <= rounds; r++ {
		replayTopic, rawTopic := fmt.Sprintf("replay-%d", r+warmup), fmt.Sprintf("raw-%d", r+warmup)
		start := time.Now()
		j, err := m.Start(ctx, replay.Request{Destination: replay.TopicTarget("kafka", tr, replayTopic)})
		if err != nil {
			return err
		}
		if j, err = m.Wait(ctx, j.ID); err != nil {
			return err
		}
		took := time.Since(start)
		if j.State != replay.Done || j.Progress.Done != int64(n) || j.Progress.Total != int64(n) {
			return fmt.Errorf("round %d: the replay ended %s with %d of %d events done (total %d): %s", r, j.State, j.Progress.Done, n, j.Progress.Total, j.Error)
		}
		replayRate := float64(n) / took.Seconds()

		// The raw side's messages carry what this round's copies carry.
		msgs, err := rawMessages(stored, rawTopic, j)
		if err != nil {
			return err
		}
		start = time.Now()
		for lo := 0; lo < n; lo += page {
			if err := raw.WriteMessages(ctx, msgs[lo:min(lo+page, n)]...); err != nil {
				return fmt.Errorf("raw kafka-go publish: %w", err)
			}
		}
		rawRate := float64(n) / time.Since(start).Seconds()
		// The ceiling the store sets: reading the replay's store pages,
		// nothing else.
		start = time.Now()
		if got, err := readPages(ctx, store, replay.ReadPage(page), nil); err != nil || got != n {
			return fmt.Errorf("read the store in pages of %d: %d events, %v", replay.ReadPage(page), got, err)
		}
		readRate := float64(n) / time.Since(start).Seconds()
		// kfake keeps every message in memory: dropping the round's topics
		// keeps the heap, and with it the collector's work, the same from
		// round to round.
		if err := deleteTopics(ctx, admin, replayTopic, rawTopic); err != nil {
			return err
		}
		if r <= 0 {
			fmt.Printf("warm-up: replay %.0f events/s (%.2fs), raw kafka-go publish %.0f events/s, store read alone %.0f events/s\n",
				replayRate, took.Seconds(), rawRate, readRate)
			continue
		}
		ours, theirs, reads = append(ours, replayRate), append(theirs, rawRate), append(reads, readRate)
		ratios = append(ratios, replayRate/rawRate)
		fmt.Printf("round %d: replay %.0f events/s (%.2fs), raw kafka-go publish %.0f events/s, ratio %.2f; store read alone %.0f events/s\n",
			r, replayRate, took.Seconds(), rawRate, replayRate/rawRate, readRate)
	}
	a, b := median(ours), median(theirs)
	fmt.Printf("replay from %s: %.0f events/s (median)\n", storeName, a)
	fmt.Printf("raw kafka-go publish: %.0f events/s (median)\n", b)
	fmt.Printf("%s read alone, pages of %d: %.0f events/s (median)\n", storeName, replay.ReadPage(page), median(reads))
	fmt.Printf("ratio of the medians: %.2f\n", a/b)
	fmt.Printf("ratio: %.2f\n", median(ratios))
	return nil
}

// median returns the median of xs (the lower middle one of an even count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// openStore opens the store to replay from, in a table (ClickHouse) or
// directory (SQLite) of its own; drop removes it.
func openStore(ctx context.Context, name string) (sinks.Store, func() error, error) {
	switch name {
	case "clickhouse":
		cfg, err := clickhouse.ConfigFromEnv()
		if err != nil {
			return nil, nil, err
		}
		if cfg.Database == "" {
			cfg.Database = "auditbus"
		}
		cfg.Table = fmt.Sprintf("bench_replay_%d", time.Now().UnixNano())
		s, err := clickhouse.Open(ctx, cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("%w (is ClickHouse running? make services starts it; AUDITBUS_CLICKHOUSE_* say where)", err)
		}
		return s, func() error {
			// Every table the store made (the ledger's, its views, the
			// counts), the views first: they write into the others.
			rows, err := s.Conn().Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND (name = ? OR startsWith(name, ?)) "+
				"ORDER BY engine = 'MaterializedView' DESC", cfg.Database, cfg.Table, cfg.Table+"_")
			if err != nil {
				return errors.Join(err, s.Close())
			}
			var names []string
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					return errors.Join(err, rows.Close(), s.Close())
				}
				names = append(names, n)
			}
			errs := []error{rows.Err(), rows.Close()}
			for _, n := range names {
				errs = append(errs, s.Conn().Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS `%s`.`%s`", cfg.Database, n)))
			}
			return errors.Join(append(errs, s.Close())...)
		}, nil
	case "sqlite":
		dir, err := os.MkdirTemp("", "bench-replay-sqlite-")
		if err != nil {
			return nil, nil, err
		}
		s, err := sqlite.Open(ctx, dir, sqlite.Options{})
		if err != nil {
			return nil, nil, errors.Join(err, os.RemoveAll(dir))
		}
		return s, func() error { return errors.Join(s.Close(), os.RemoveAll(dir)) }, nil
	}
	return nil, nil, fmt.Errorf("-store %q: want clickhouse or sqlite", name)
}

// load stores n events through sinks.Writer, as the daemon does: one a
// millisecond, spread over keys partition keys, JSON data of size bytes.
func load(ctx context.Context, store sinks.Store, n, size, keys int) error {
	w := sinks.NewWriter(store, sinks.WriterOptions{})
	base := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()
	pad := strings.Repeat("x", size-16)
	for lo := 0; lo < n; lo += 10000 {
		recs := make([]sinks.Record, min(10000, n-lo))
		for k := range recs {
			i := lo + k
			e := event.New()
			e.SetID(fmt.Sprintf("ev-%08d", i))
			e.SetSource("/bench/replay")
			e.SetType("com.example.order.created")
			e.SetTime(base.Add(time.Duration(i) * time.Millisecond))
			e.SetExtension(bus.ExtPartitionKey, fmt.Sprintf("key-%03d", i%keys))
			_ = e.SetData(event.ApplicationJSON, []byte(fmt.Sprintf(`{"n":%8d,"p":"%s"}`, i, pad)))
			recs[k] = sinks.Record{Event: e, Entries: []sinks.Entry{{Kind: sinks.KindReceived, Time: e.Time().Add(time.Millisecond),
				Transport: "kafka", Topic: "orders", Partition: i % partitions, Offset: int64(i), Principal: "kafka:orders"}}}
		}
		if err := w.Write(ctx, recs); err != nil {
			return errors.Join(fmt.Errorf("store events: %w", err), w.Close())
		}
	}
	return w.Close()
}

// readAll reads every stored event back, in the store's order.
func readAll(ctx context.Context, store sinks.Store) ([]bus.Event, error) {
	var out []bus.Event
	if _, err := readPages(ctx, store, sinks.MaxLimit, func(it *sinks.Item) { out = append(out, it.Event) }); err != nil {
		return nil, fmt.Errorf("read the stored events: %w", err)
	}
	return out, nil
}

// readPages reads every version as a replay reads them, in store pages of
// page items through sinks.Scan, hands each to use (if not nil), and
// counts them.
func readPages(ctx context.Context, store sinks.Store, page int, use func(*sinks.Item)) (int, error) {
	n := 0
	err := sinks.Scan(ctx, store, sinks.Query{Limit: page}, sinks.ScanOptions{EventsOnly: true}, func(items []sinks.Item) error {
		n += len(items)
		if use != nil {
			for i := range items {
				use(&items[i])
			}
		}
		return nil
	})
	return n, err
}

// rawMessages builds, for every event, the message bus/kafka writes in
// binary mode for the copy job j publishes: the partition key as the
// message key, the ce_ headers of its attributes and extensions (the
// replay ones included), content-type, and the data as the value.
func rawMessages(events []bus.Event, topic string, j replay.Job) ([]kafkago.Message, error) {
	stamp := j.Created.UTC().Format(time.RFC3339Nano)
	out := make([]kafkago.Message, len(events))
	for i := range events {
		e := &events[i]
		h := []kafkago.Header{
			{Key: "ce_specversion", Value: []byte(e.SpecVersion())},
			{Key: "ce_id", Value: []byte(e.ID())},
			{Key: "ce_source", Value: []byte(e.Source())},
			{Key: "ce_type", Value: []byte(e.Type())},
			{Key: "ce_time", Value: []byte(e.Time().UTC().Format(time.RFC3339Nano))},
		}
		for name, v := range e.Extensions() {
			s, err := types.Format(v)
			if err != nil {
				return nil, fmt.Errorf("event %s: extension %s: %w", e.ID(), name, err)
			}
			h = append(h, kafkago.Header{Key: "ce_" + name, Value: []byte(s)})
		}
		h = append(h,
			kafkago.Header{Key: "ce_" + replay.ExtReplay, Value: []byte(j.ID)},
			kafkago.Header{Key: "ce_" + replay.ExtReplayTime, Value: []byte(stamp)},
			kafkago.Header{Key: "content-type", Value: []byte(e.DataContentType())})
		key, _ := types.ToString(e.Extensions()[bus.ExtPartitionKey])
		out[i] = kafkago.Message{Topic: topic, Key: []byte(key), Headers: h, Value: e.Data()}
	}
	return out, nil
}

// deleteTopics deletes a round's topics once it is measured.
func deleteTopics(ctx context.Context, c *kafkago.Client, topics ...string) error {
	resp, err := c.DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("delete topics %v: %w", topics, err)
	}
	for t, err := range resp.Errors {
		if err != nil {
			return fmt.Errorf("delete topic %q: %w", t, err)
		}
	}
	return nil
}

// createTopics creates the round's topics before anything is timed.
func createTopics(ctx context.Context, c *kafkago.Client, topics ...string) error {
	req := &kafkago.CreateTopicsRequest{}
	for _, t := range topics {
		req.Topics = append(req.Topics, kafkago.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: 1})
	}
	resp, err := c.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics %v: %w", topics, err)
	}
	for t, err := range resp.Errors {
		if err != nil {
			return fmt.Errorf("create topic %q: %w", t, err)
		}
	}
	return nil
}
