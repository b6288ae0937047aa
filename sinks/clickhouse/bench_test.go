package clickhouse_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/clickhouse"
	"github.com/cloudevents/sdk-go/v2/event"
)

// benchRecords builds n records of 1 KiB data from 16 callers' batches of
// 100, spread over span from start, typed round-robin over types types.
func benchRecords(n int, start time.Time, span time.Duration, types int) []sinks.Record {
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	recs := make([]sinks.Record, n)
	for i := range recs {
		at := start.Add(time.Duration(int64(span) / int64(n) * int64(i)))
		e := event.New()
		e.SetID(fmt.Sprintf("id-%09d", i))
		e.SetSource(fmt.Sprintf("urn:bench:%d", i%10))
		e.SetType(fmt.Sprintf("com.example.bench.t%d", i%types))
		e.SetTime(at)
		e.SetDataContentType("application/octet-stream")
		e.DataEncoded = payload
		recs[i] = sinks.Record{Event: e, Transport: "kafka", Topic: "bench", Partition: i % 4, Offset: int64(i), Route: "r", Outcome: sinks.OutcomeDelivered, Received: at}
	}
	return recs
}

// rawTable has the events table's columns and engine, with the engine's
// default granularity and without the identity table and view: the least
// a hand-written clickhouse-go insert of the same events could fill.
const rawTable = "CREATE TABLE %s (hour UInt32, type String, time_ns Int64, source String, id String, replay String, " +
	"received_ns Int64, version UInt64, subject String, route String, outcome String, transport String, topic String, " +
	"`partition` Int64, `offset` Int64, attrs String, data String, data_flags UInt8) ENGINE = ReplacingMergeTree(version) " +
	"PARTITION BY toYYYYMMDD(toDateTime(hour * 3600, 'UTC')) ORDER BY (hour, type, time_ns, source, id, replay, received_ns)"

// rawInsertParallel inserts recs with clickhouse-go's PrepareBatch in
// batches of batch rows from par goroutines, each inserting the next batch
// not yet taken, filling the columns column-wise as fast as the driver
// allows, encoding each event the same way (attributes as JSON, data
// apart).
func rawInsertParallel(ctx context.Context, conn ch.Conn, table string, recs []sinks.Record, batch, par int) error {
	var next atomic.Int64
	errs := make(chan error, par)
	var wg sync.WaitGroup
	for range par {
		wg.Go(func() {
			for {
				start := int(next.Add(int64(batch))) - batch
				if start >= len(recs) {
					return
				}
				if err := rawInsertBatch(ctx, conn, table, recs[start:min(start+batch, len(recs))]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// rawInsertBatch inserts part with one PrepareBatch.
func rawInsertBatch(ctx context.Context, conn ch.Conn, table string, part []sinks.Record) error {
	n := len(part)
	var (
		hour                                             = make([]uint32, 0, n)
		typ, source, id, replay, subject, route, outcome = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		transport, topic                                 = make([]string, 0, n), make([]string, 0, n)
		timeNs, received, partition, offset              = make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
		version                                          = make([]uint64, 0, n)
		attrs, data                                      = make([][]byte, 0, n), make([][]byte, 0, n)
		flags                                            = make([]uint8, 0, n)
	)
	for i := range part {
		r := &part[i]
		e := r.Event
		e.DataEncoded = nil
		a, err := e.MarshalJSON()
		if err != nil {
			return err
		}
		t := r.Event.Time().UnixNano()
		hour = append(hour, uint32(t/int64(time.Hour)))
		typ, source, id, replay = append(typ, e.Type()), append(source, e.Source()), append(id, e.ID()), append(replay, r.Replay)
		subject, route, outcome = append(subject, e.Subject()), append(route, r.Route), append(outcome, r.Outcome)
		transport, topic = append(transport, r.Transport), append(topic, r.Topic)
		timeNs, received = append(timeNs, t), append(received, r.Received.UnixNano())
		partition, offset = append(partition, int64(r.Partition)), append(offset, r.Offset)
		version = append(version, 1)
		attrs, data, flags = append(attrs, a), append(data, r.Event.DataEncoded), append(flags, 1)
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" (hour, type, time_ns, source, id, replay, received_ns, version, subject, "+
		"route, outcome, transport, topic, `partition`, `offset`, attrs, data, data_flags)")
	if err != nil {
		return err
	}
	for i, col := range []any{hour, typ, timeNs, source, id, replay, received, version, subject, route, outcome, transport, topic, partition, offset, attrs, data, flags} {
		if err := b.Column(i).Append(col); err != nil {
			return err
		}
	}
	if err := b.Send(); err != nil {
		return err
	}
	return nil
}

// writeAll pushes recs through w from 128 callers in batches of 100, as a
// busy router's consumers would: 12,800 records in flight, enough for the
// writer's two flushers to each have a full batch of 5,000. (With 16
// callers, 1,600 records are in flight and every batch holds about 800
// whatever the writer does.)
func writeAll(w *sinks.Writer, recs []sinks.Record) error {
	const callers, batch = 128, 100
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Go(func() {
			for i := c * batch; i < len(recs); i += callers * batch {
				if err := w.Write(context.Background(), recs[i:min(i+batch, len(recs))]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// envInt reads a positive whole number from the environment, or def.
func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

// BenchmarkWriterVsRaw measures, in one run, rows/s of 1 KiB events
// through sinks.Writer into the store (128 callers, batches of 100, default
// writer options: batches of up to 5,000, two flushers) and through raw
// clickhouse-go PrepareBatch inserts of the same events in batches of
// 5,000 from two goroutines, the same batches in flight; both with LZ4 as
// the store defaults to. The raw side inserts into tables the store
// created (the events table and the identity table its view fills), so
// both sides ask the server for the same work and the ratio is the cost of
// the auditbus client; it also inserts into a plain table of the same
// columns with the engine's default granularity and no identity table
// (raw-plain-rows/s), which shows what the store's schema costs the
// server. Every iteration is one round: raw, raw into the plain table,
// then auditbus, each into fresh tables (run it with -benchtime 5x for five
// rounds); the median round of each side counts. Each side writes
// AUDITBUS_BENCH_ROWS events per round (default 100,000). It reports
// auditbus-rows/s, raw-rows/s, raw-plain-rows/s and ratio (auditbus ÷
// raw). On servers before 19.1 the raw side connects through
// clickhouse.LegacyDialer too, as it must.
func BenchmarkWriterVsRaw(b *testing.B) {
	ctx := context.Background()
	recs := benchRecords(envInt(b, "AUDITBUS_BENCH_ROWS", 100_000), time.Now().Add(-time.Hour), time.Hour, 10)
	cfg := testConfig(b)
	probe := open(b, cfg)
	opts := &ch.Options{Addr: []string{addr}, MaxOpenConns: 4, Compression: &ch.Compression{Method: ch.CompressionLZ4}}
	if probe.Legacy() {
		d := &net.Dialer{Timeout: 5 * time.Second}
		opts.DialContext = clickhouse.LegacyDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) })
	}
	probe.Close()
	raw, err := ch.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	const flushers = 2 // the writer's default
	rate := func(start time.Time) float64 { return float64(len(recs)) / time.Since(start).Seconds() }
	var ours, theirs, plain []float64
	for round := 0; b.Loop(); round++ {
		// The store's own tables, made by the store, filled by raw inserts.
		rc := cfg
		rc.Table = fmt.Sprintf("raw_%d", round)
		open(b, rc).Close()
		start := time.Now()
		if err := rawInsertParallel(ctx, raw, fmt.Sprintf("`%s`.raw_%d", cfg.Database, round), recs, 5000, flushers); err != nil {
			b.Fatal(err)
		}
		theirs = append(theirs, rate(start))

		table := fmt.Sprintf("`%s`.plain_%d", cfg.Database, round)
		if err := raw.Exec(ctx, fmt.Sprintf(rawTable, table)); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if err := rawInsertParallel(ctx, raw, table, recs, 5000, flushers); err != nil {
			b.Fatal(err)
		}
		plain = append(plain, rate(start))

		rc.Table = fmt.Sprintf("events_%d", round)
		s := open(b, rc)
		w := sinks.NewWriter(s, sinks.WriterOptions{})
		start = time.Now()
		err := writeAll(w, recs)
		ours = append(ours, rate(start))
		_ = w.Close()
		s.Close()
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("round %d: auditbus %.0f rows/s, raw %.0f rows/s, raw into a plain table %.0f rows/s", round+1, ours[round], theirs[round], plain[round])
	}
	median := func(xs []float64) float64 {
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	a, r := median(ours), median(theirs)
	b.ReportMetric(a, "auditbus-rows/s")
	b.ReportMetric(r, "raw-rows/s")
	b.ReportMetric(median(plain), "raw-plain-rows/s")
	b.ReportMetric(a/r, "ratio")
	b.ReportMetric(float64(len(recs)), "rows/round")
}

// BenchmarkQueryLatency stores 1,000,000 1 KiB events over 24 hours in 10
// types (about 4,200 per type and hour), then times one query per
// iteration (-benchtime 1000x for 1,000): a random one-hour window and
// type, first page of 100, newest first. It reports the p50-ms and p99-ms
// latencies and the load's rows/s. AUDITBUS_BENCH_EVENTS changes the count.
func BenchmarkQueryLatency(b *testing.B) {
	ctx := context.Background()
	n := envInt(b, "AUDITBUS_BENCH_EVENTS", 1_000_000)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	const span, types = 24 * time.Hour, 10
	s := open(b, testConfig(b))
	defer s.Close()
	w := sinks.NewWriter(s, sinks.WriterOptions{})
	loadStart := time.Now()
	for i := 0; i < n; i += 100_000 {
		// Built in slices so a million 1 KiB events never sit in memory
		// at once.
		part := benchRecords(min(100_000, n-i), start, span, types)
		for j := range part {
			k := i + j
			part[j].Event.SetID(fmt.Sprintf("id-%09d", k))
			at := start.Add(time.Duration(int64(span) / int64(n) * int64(k)))
			part[j].Event.SetTime(at)
			part[j].Event.SetType(fmt.Sprintf("com.example.bench.t%d", k%types))
			part[j].Received = at
		}
		if err := writeAll(w, part); err != nil {
			b.Fatal(err)
		}
	}
	_ = w.Close()
	loadRate := float64(n) / time.Since(loadStart).Seconds()
	rng := rand.New(rand.NewPCG(1, 2))
	var lat []time.Duration
	for b.Loop() {
		from := start.Add(time.Duration(rng.Int64N(int64(span - time.Hour))))
		q := sinks.Query{From: from, To: from.Add(time.Hour), Type: fmt.Sprintf("com.example.bench.t%d", rng.IntN(types)), Limit: 100, Desc: true}
		t0 := time.Now()
		p, err := s.Query(ctx, q)
		lat = append(lat, time.Since(t0))
		if err != nil || len(p.Records) != 100 || p.Next == "" {
			b.Fatalf("Query(%+v): %d records, next %q, %v", q, len(p.Records), p.Next, err)
		}
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ms")
	b.ReportMetric(loadRate, "load-rows/s")
	b.ReportMetric(float64(n), "events")
}
