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
	"syscall"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/clickhouse"
	"github.com/cloudevents/sdk-go/v2/event"
)

// benchRecords builds n records of 1 KiB events spread over span from
// start, typed round-robin over types types, each with the entries a
// route writes for one destination: received from a Kafka topic, then
// delivered.
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
		recs[i] = sinks.Record{Event: e, Entries: []sinks.Entry{
			{Kind: sinks.KindReceived, Time: at, Transport: "kafka", Topic: "bench", Partition: i % 4, Offset: int64(i), Principal: "kafka:bench"},
			{Kind: sinks.KindDelivered, Time: at, Route: "r", Destination: "kafka:out", Attempts: 1},
		}}
	}
	return recs
}

// rawInsertParallel inserts the version and entry rows of recs with
// clickhouse-go's PrepareBatch into the tables named prefix+"_versions"
// and prefix+"_entries", in batches of batch records from par goroutines,
// each inserting the next batch not yet taken.
func rawInsertParallel(ctx context.Context, conn ch.Conn, prefix string, recs []sinks.Record, batch, par int) error {
	var next atomic.Int64
	var seq atomic.Uint64
	errs := make(chan error, par)
	var wg sync.WaitGroup
	for range par {
		wg.Go(func() {
			for {
				start := int(next.Add(int64(batch))) - batch
				if start >= len(recs) {
					return
				}
				if err := rawInsertBatch(ctx, conn, prefix, recs[start:min(start+batch, len(recs))], &seq); err != nil {
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

// rawInsertBatch inserts the rows of part as the store lays them out (the
// event's attributes as JSON, its data apart, its digest; each entry with
// its key and the next seq of one log), filling the columns column-wise
// as fast as the driver allows: one insert of versions, then one of
// entries. It asks the server nothing first.
func rawInsertBatch(ctx context.Context, conn ch.Conn, prefix string, part []sinks.Record, seq *atomic.Uint64) error {
	n, now := len(part), time.Now().UnixNano()
	var (
		hour                             = make([]uint32, 0, n)
		typ, source, id, digest, subject = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		timeNs, stored, added            = make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
		attrs, data                      = make([][]byte, 0, n), make([][]byte, 0, n)
		flags, conflict                  = make([]uint8, 0, n), make([]uint8, 0, n)
	)
	m := 2 * n
	var (
		log, kind, esource, eid, edigest, key = make([]string, 0, m), make([]string, 0, m), make([]string, 0, m), make([]string, 0, m), make([]string, 0, m), make([]string, 0, m)
		transport, topic, request, principal  = make([]string, 0, m), make([]string, 0, m), make([]string, 0, m), make([]string, 0, m)
		route, dest, errText, replay          = make([]string, 0, m), make([]string, 0, m), make([]string, 0, m), make([]string, 0, m)
		traceID, spanID, signature            = make([]string, 0, m), make([]string, 0, m), make([]string, 0, m)
		eseq                                  = make([]uint64, 0, m)
		etime, partition, offset              = make([]int64, 0, m), make([]int64, 0, m), make([]int64, 0, m)
		ehour, attempts                       = make([]uint32, 0, m), make([]uint32, 0, m)
	)
	for i := range part {
		r := &part[i]
		d, err := sinks.DigestEvent(&r.Event)
		if err != nil {
			return err
		}
		e := r.Event
		e.DataEncoded = nil
		a, err := e.MarshalJSON()
		if err != nil {
			return err
		}
		t := r.Event.Time().UnixNano()
		hour, typ, timeNs = append(hour, uint32(t/int64(time.Hour))), append(typ, e.Type()), append(timeNs, t)
		source, id, digest, subject = append(source, e.Source()), append(id, e.ID()), append(digest, string(d[:])), append(subject, e.Subject())
		attrs, data, flags = append(attrs, a), append(data, r.Event.DataEncoded), append(flags, 1)
		stored, added, conflict = append(stored, r.Entries[0].Time.UnixNano()), append(added, now+int64(i)), append(conflict, 0)
		for _, en := range r.Entries {
			en.Source, en.ID, en.Digest = e.Source(), e.ID(), d
			k := en.Key()
			et := en.Time.UnixNano()
			log, eseq, etime, ehour = append(log, "raw"), append(eseq, seq.Add(1)), append(etime, et), append(ehour, uint32(et/int64(time.Hour)))
			kind, esource, eid, edigest, key = append(kind, en.Kind), append(esource, en.Source), append(eid, en.ID), append(edigest, string(d[:])), append(key, string(k[:]))
			transport, topic, partition, offset = append(transport, en.Transport), append(topic, en.Topic), append(partition, int64(en.Partition)), append(offset, en.Offset)
			request, principal, route, dest = append(request, en.Request), append(principal, en.Principal), append(route, en.Route), append(dest, en.Destination)
			attempts, errText, replay = append(attempts, uint32(en.Attempts)), append(errText, en.Error), append(replay, en.Replay)
			traceID, spanID, signature = append(traceID, en.TraceID), append(spanID, en.SpanID), append(signature, en.Signature)
		}
	}
	if err := rawInsert(ctx, conn, prefix+"_versions", "hour, type, time_ns, source, id, digest, subject, attrs, data, data_flags, stored_ns, added_ns, conflict",
		hour, typ, timeNs, source, id, digest, subject, attrs, data, flags, stored, added, conflict); err != nil {
		return err
	}
	return rawInsert(ctx, conn, prefix+"_entries", "log, seq, time_ns, hour, kind, source, id, digest, key, transport, topic, `partition`, `offset`, "+
		"request, principal, route, destination, attempts, error, replay, trace_id, span_id, signature",
		log, eseq, etime, ehour, kind, esource, eid, edigest, key, transport, topic, partition, offset, request, principal, route, dest, attempts, errText, replay,
		traceID, spanID, signature)
}

// rawInsert inserts cols into table with one PrepareBatch.
func rawInsert(ctx context.Context, conn ch.Conn, table, columns string, cols ...any) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+columns+")")
	if err != nil {
		return err
	}
	for i, col := range cols {
		if err := b.Column(i).Append(col); err != nil {
			return err
		}
	}
	return b.Send()
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

// BenchmarkWriterVsRaw measures, in one run, events/s and entries/s of 1
// KiB events, each a version and two entries (received, delivered),
// through sinks.Writer into the store (128 callers, batches of 100,
// default writer options: batches of up to 5,000, two flushers) and
// through raw clickhouse-go PrepareBatch inserts of the same rows
// (versions, then entries, as the store lays them out) in batches of
// 5,000 records from two goroutines, the same batches in flight; both
// with LZ4 as the store defaults to. The raw side inserts into tables the
// store created (with the views that fill the identity, trail, key and
// log tables), so both sides ask the server for the same writes and the
// ratio is the cost of the auditbus client, including its two lookups per
// append (stored versions, stored entry keys) and its inserts running one
// at a time; it also inserts into plain copies of the versions and
// entries tables without the views (raw-plain-events/s), which shows what
// the views cost the server.
//
// Every iteration is one round (run it with -benchtime 5x for five), into
// fresh tables: each side writes the first half of the events, then the
// second, in the order A B B A (A is raw in odd rounds, auditbus in even
// ones), then raw writes them all into the plain tables; each step starts
// once the server has no merge running in the benchmark's database, so no
// side pays for the merges of the parts another wrote. The ratio reported is
// the median of the rounds' ratios (auditbus ÷ raw of the same round),
// ratio-min and ratio-max their spread; the rates are each side's median
// round. Each round logs, per side, the rate, the server's query CPU
// (system.events), the merges it ran meanwhile and the client's CPU, and
// the writer's appends and mean batch. Each side writes
// AUDITBUS_BENCH_ROWS events per round (default 100,000). On servers
// before 19.1 the raw side connects through clickhouse.LegacyDialer too,
// as it must.
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
	var ours, theirs, plain, ratios []float64
	for round := 0; b.Loop(); round++ {
		// The store's own tables, made by the store, filled by raw inserts;
		// their plain copies; the store's tables for auditbus.
		rc := cfg
		rc.Table = fmt.Sprintf("raw_%d", round)
		open(b, rc).Close()
		prefix := fmt.Sprintf("`%s`.raw_%d", cfg.Database, round)
		plainPrefix := fmt.Sprintf("`%s`.plain_%d", cfg.Database, round)
		for _, t := range []string{"_versions", "_entries"} {
			if err := raw.Exec(ctx, "CREATE TABLE "+plainPrefix+t+" AS "+prefix+t); err != nil {
				b.Fatal(err)
			}
		}
		// Like the store, the raw side starts the round on connections
		// of its own, whose buffers grow from empty.
		ins, err := ch.Open(opts)
		if err != nil {
			b.Fatal(err)
		}
		rc.Table = fmt.Sprintf("events_%d", round)
		s := open(b, rc)
		var flushed flushCounter
		w := sinks.NewWriter(s, sinks.WriterOptions{Metrics: &flushed})
		rawSide := func(part []sinks.Record) error { return rawInsertParallel(ctx, ins, prefix, part, 5000, flushers) }
		ourSide := func(part []sinks.Record) error { return writeAll(w, part) }
		plainSide := func(part []sinks.Record) error { return rawInsertParallel(ctx, ins, plainPrefix, part, 5000, flushers) }
		// Each side writes the first half of recs, then the second, in the
		// order A B B A, A being raw in odd rounds and auditbus in even
		// ones: a drift in the machine's load weighs on both sides alike.
		first, second := recs[:len(recs)/2], recs[len(recs)/2:]
		steps := []benchStep{{"raw", rawSide, first}, {"auditbus", ourSide, first}, {"auditbus", ourSide, second}, {"raw", rawSide, second},
			{"raw-plain", plainSide, recs}}
		if round%2 == 1 {
			steps[0], steps[1], steps[2], steps[3] = steps[1], steps[0], steps[3], steps[2]
		}
		costs := map[string]*sideCost{"raw": {}, "auditbus": {}, "raw-plain": {}}
		for _, st := range steps {
			settle(b, raw, cfg.Database)
			m, err := measure(ctx, raw, func() error { return st.run(st.part) })
			if err != nil {
				b.Fatalf("round %d, %s: %v", round+1, st.side, err)
			}
			costs[st.side].add(m)
		}
		_ = w.Close()
		s.Close()
		_ = ins.Close()
		rate := func(side string) float64 { return float64(len(recs)) / costs[side].took.Seconds() }
		ours, theirs, plain = append(ours, rate("auditbus")), append(theirs, rate("raw")), append(plain, rate("raw-plain"))
		ratios = append(ratios, ours[round]/theirs[round])
		b.Logf("round %d (%s first): ratio %.2f; events/s auditbus %.0f, raw %.0f, raw-plain %.0f; %s; %d appends of %.0f records on average",
			round+1, steps[0].side, ratios[round], ours[round], theirs[round], plain[round],
			costs["auditbus"].String()+" for auditbus, "+costs["raw"].String()+" for raw",
			flushed.n.Load(), float64(flushed.rows.Load())/float64(max(1, flushed.n.Load())))
	}
	median := func(xs []float64) float64 {
		xs = slices.Clone(xs)
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	a, r := median(ours), median(theirs)
	b.ReportMetric(a, "auditbus-events/s")
	b.ReportMetric(2*a, "auditbus-entries/s")
	b.ReportMetric(r, "raw-events/s")
	b.ReportMetric(2*r, "raw-entries/s")
	b.ReportMetric(median(plain), "raw-plain-events/s")
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(slices.Min(ratios), "ratio-min")
	b.ReportMetric(slices.Max(ratios), "ratio-max")
	b.ReportMetric(float64(len(recs)), "events/round")
}

// benchStep is one step of a round of BenchmarkWriterVsRaw: a side
// writing part.
type benchStep struct {
	side string
	run  func(part []sinks.Record) error
	part []sinks.Record
}

// flushCounter counts a writer's successful appends and their records.
type flushCounter struct{ n, rows atomic.Int64 }

func (f *flushCounter) Flushed(rows int, _ time.Duration, err error) {
	if err == nil {
		f.n.Add(1)
		f.rows.Add(int64(rows))
	}
}
func (f *flushCounter) Queued(int)                  {}
func (f *flushCounter) Appended(sinks.AppendResult) {}

// sideCost is what one side of a round took: wall time, the server's
// query threads' CPU seconds, its merges' seconds and the client's CPU
// seconds.
type sideCost struct {
	took                         time.Duration
	serverCPU, merges, clientCPU float64
}

func (c *sideCost) add(d sideCost) {
	c.took += d.took
	c.serverCPU += d.serverCPU
	c.merges += d.merges
	c.clientCPU += d.clientCPU
}

func (c *sideCost) String() string {
	return fmt.Sprintf("%.2f s, server query CPU %.2f s, merges %.2f s, client CPU %.2f s", c.took.Seconds(), c.serverCPU, c.merges, c.clientCPU)
}

// measure runs f and returns what it cost.
func measure(ctx context.Context, conn ch.Conn, f func() error) (sideCost, error) {
	s0, m0, err := serverCounters(ctx, conn)
	if err != nil {
		return sideCost{}, err
	}
	c0 := clientCPU()
	start := time.Now()
	if err := f(); err != nil {
		return sideCost{}, err
	}
	c := sideCost{took: time.Since(start), clientCPU: clientCPU() - c0}
	s1, m1, err := serverCounters(ctx, conn)
	c.serverCPU, c.merges = s1-s0, m1-m0
	return c, err
}

// serverCounters reads the server's CPU seconds in query threads and
// seconds spent merging, since it started.
func serverCounters(ctx context.Context, conn ch.Conn) (cpu, merges float64, err error) {
	var us, ms uint64
	err = conn.QueryRow(ctx, "SELECT sumIf(value, event IN ('UserTimeMicroseconds', 'SystemTimeMicroseconds')), "+
		"sumIf(value, event = 'MergesTimeMilliseconds') FROM system.events").Scan(&us, &ms)
	return float64(us) / 1e6, float64(ms) / 1e3, err
}

// clientCPU is this process's CPU seconds so far.
func clientCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// settle waits, up to two minutes, until the server runs no merge in
// database db, so that a side's rate does not pay for the parts another
// wrote.
func settle(b *testing.B, conn ch.Conn, db string) {
	b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var n uint64
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM system.merges WHERE database = ?", db).Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Logf("still %d merges running in %s after two minutes; measuring anyway", n, db)
			return
		}
		<-tick.C
	}
}

// BenchmarkQueryLatency stores 1,000,000 1 KiB events over 24 hours in 10
// types (about 4,200 per type and hour), each with two entries, then
// times one query per iteration (-benchtime 1000x for 1,000): a random
// one-hour window and type, first page of 100, newest first, with the
// page's trails (one more statement), as the audit query endpoint asks
// it. It reports the p50-ms and p99-ms latencies, the same without trails
// (notrail-p50-ms, notrail-p99-ms, one query each iteration too) and the
// load's rows/s. AUDITBUS_BENCH_EVENTS changes the count.
func BenchmarkQueryLatency(b *testing.B) {
	ctx := context.Background()
	n := envInt(b, "AUDITBUS_BENCH_EVENTS", 1_000_000)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	const span, types = 24 * time.Hour, 10
	s := open(b, testConfig(b))
	defer s.Close()
	loadRate := loadBench(b, s, n, start, span, types)
	rng := rand.New(rand.NewPCG(1, 2))
	var lat, bare []time.Duration
	for b.Loop() {
		from := start.Add(time.Duration(rng.Int64N(int64(span - time.Hour))))
		q := sinks.Query{From: from, To: from.Add(time.Hour), Type: fmt.Sprintf("com.example.bench.t%d", rng.IntN(types)), Limit: 100, Desc: true}
		for _, noTrail := range []bool{false, true} {
			q.NoTrail = noTrail
			t0 := time.Now()
			p, err := s.Query(ctx, q)
			took := time.Since(t0)
			if err != nil || len(p.Items) != 100 || p.Next == "" || !noTrail && len(p.Items[0].Trail) != 2 {
				b.Fatalf("Query(%+v): %d items, next %q, %v", q, len(p.Items), p.Next, err)
			}
			if noTrail {
				bare = append(bare, took)
			} else {
				lat = append(lat, took)
			}
		}
	}
	pct := func(ds []time.Duration, p int) float64 {
		slices.Sort(ds)
		return float64(ds[min(len(ds)-1, len(ds)*p/100)]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(lat, 50), "p50-ms")
	b.ReportMetric(pct(lat, 99), "p99-ms")
	b.ReportMetric(pct(bare, 50), "notrail-p50-ms")
	b.ReportMetric(pct(bare, 99), "notrail-p99-ms")
	b.ReportMetric(loadRate, "load-rows/s")
	b.ReportMetric(float64(n), "events")
}

// loadBench writes n events of benchRecords over span from start into s
// through a sinks.Writer and returns the rate in events/s.
func loadBench(b *testing.B, s sinks.Store, n int, start time.Time, span time.Duration, types int) float64 {
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
			for e := range part[j].Entries {
				part[j].Entries[e].Time = at
				part[j].Entries[e].Offset = int64(k)
			}
		}
		if err := writeAll(w, part); err != nil {
			b.Fatal(err)
		}
	}
	_ = w.Close()
	return float64(n) / time.Since(loadStart).Seconds()
}
