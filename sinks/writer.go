package sinks

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/auditbus/auditbus/bus/backoff"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// WriterOptions tune a Writer; zero fields take the defaults shown.
type WriterOptions struct {
	// MaxBatch is the most records in one Append (default 5,000).
	MaxBatch int
	// MaxAge is how long the first record of a batch waits for more before
	// the batch is flushed anyway (default 5ms). A batch due while a flush
	// ends waits a little longer, until no record came for MaxAge/20, at
	// most MaxAge/5 after the flush ended: the callers that flush released
	// add their next records to it, so a burst's last records do not make
	// an append of their own.
	MaxAge time.Duration
	// MaxQueued bounds the records held in memory, flushing or waiting;
	// Write blocks beyond it (default 4×MaxBatch).
	MaxQueued int
	// Retries is how many times a failed flush is retried before its
	// callers get an error. 0 means the default, 5; to retry never, so the
	// first failure is returned at once, set a negative value (-1).
	Retries int
	// Backoff is the first retry delay, doubled per retry with jitter up to
	// MaxBackoff (defaults 50ms and 2s).
	Backoff, MaxBackoff time.Duration
	// Name names the store in errors (default: the store's String method,
	// else "store").
	Name string
	// Flushers is how many Appends may run at once (default 2). Full
	// batches go to any idle flusher, so the next batch is encoded and
	// sent while the store still writes the last one; a batch that is
	// flushed for its age waits until no other flush runs, so a slow store
	// gets fewer, fuller batches, not more small ones. 1 flushes strictly
	// one batch at a time.
	Flushers int
	// Metrics receives flush observations; nil drops them.
	Metrics Metrics
	// Tracer, if set, traces each flush with a span linked to the spans
	// of the Writes it made durable (at most maxLinks); failed attempts
	// are events on it.
	Tracer trace.Tracer
}

// maxLinks bounds the links of a flush span.
const maxLinks = 128

// Metrics observes a Writer. Methods are called from the flusher
// goroutines and from Write, concurrently, and must not block.
type Metrics interface {
	// Flushed reports one Append attempt: rows in it, how long it took and
	// its error (nil on success).
	Flushed(rows int, took time.Duration, err error)
	// Queued reports the records held in memory after a change.
	Queued(n int)
	// Appended reports what a successful Append did: new versions and
	// entries, duplicate entries left out, and conflicting versions.
	Appended(r AppendResult)
}

// batch is the unit of flushing; every Write that put records into it waits
// on done and reads err after.
type batch struct {
	recs    []Record
	links   []trace.Link // the spans of the Writes in it, with a Tracer
	started time.Time
	added   time.Time // when a Write last added to it after a flush ended
	done    chan struct{}
	err     error
}

// Writer batches records in front of a Store. Flusher goroutines
// (WriterOptions.Flushers) append the batches; callers block in Write until
// the flush holding their records succeeded, and block earlier when
// MaxQueued records are already held.
type Writer struct {
	store Store
	o     WriterOptions

	mu       sync.Mutex
	cur      *batch    // open batch, filling
	sealed   []*batch  // full batches waiting for a flusher, oldest first
	queued   int       // records in cur, sealed and the batches being flushed
	flushing int       // flushes in progress
	ended    time.Time // when the last flush ended
	last     int       // records in the last batch taken for a flush
	space    chan struct{}
	closed   bool

	kick    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
}

// NewWriter starts a Writer on store. Close it to flush what is pending; it
// does not close the store.
func NewWriter(store Store, o WriterOptions) *Writer {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 5000
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 5 * time.Millisecond
	}
	if o.MaxQueued < o.MaxBatch {
		o.MaxQueued = 4 * o.MaxBatch
	}
	if o.Retries < 0 {
		o.Retries = 0
	} else if o.Retries == 0 {
		o.Retries = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 50 * time.Millisecond
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = 2 * time.Second
	}
	if o.Flushers <= 0 {
		o.Flushers = 2
	}
	if o.Name == "" {
		o.Name = "store"
		if s, ok := store.(fmt.Stringer); ok {
			o.Name = s.String()
		}
	}
	w := &Writer{
		store: store, o: o,
		space:   make(chan struct{}),
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	var flushers sync.WaitGroup
	for range o.Flushers {
		flushers.Go(w.run)
	}
	go func() {
		flushers.Wait()
		close(w.stopped)
	}()
	return w
}

// Write queues recs and returns once they are durable in the store, or with
// the error of the flush that failed them. If ctx ends first, Write returns
// its error; the records may still be stored later (Append is idempotent, so
// writing them again is safe).
func (w *Writer) Write(ctx context.Context, recs []Record) error {
	var waits []*batch
	for len(recs) > 0 {
		w.mu.Lock()
		for w.queued >= w.o.MaxQueued && !w.closed {
			space := w.space
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-space:
			}
			w.mu.Lock()
		}
		if w.closed {
			w.mu.Unlock()
			return ErrClosed
		}
		if w.cur == nil {
			// As large as the last batch, so a busy writer does not grow
			// each batch from small.
			w.cur = &batch{started: time.Now(), done: make(chan struct{}), recs: make([]Record, 0, min(w.o.MaxBatch, max(1024, w.last)))}
			w.poke() // the flusher arms its age timer for the new batch
		}
		b := w.cur
		n := min(len(recs), w.o.MaxBatch-len(b.recs), w.o.MaxQueued-w.queued)
		b.recs = append(b.recs, recs[:n]...)
		if !w.ended.Before(b.started) {
			// Only an add after a flush ended can delay b (see due); a
			// flush that ends later ends after this add too.
			b.added = time.Now()
		}
		if w.o.Tracer != nil && len(b.links) < maxLinks {
			if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
				b.links = append(b.links, trace.Link{SpanContext: sc})
			}
		}
		w.queued += n
		if len(waits) == 0 || waits[len(waits)-1] != b {
			waits = append(waits, b)
		}
		if len(b.recs) >= w.o.MaxBatch {
			w.last = len(b.recs)
			w.sealed = append(w.sealed, b)
			w.cur = nil
			w.poke()
		}
		q := w.queued
		w.mu.Unlock()
		if w.o.Metrics != nil {
			w.o.Metrics.Queued(q)
		}
		recs = recs[n:]
	}
	for _, b := range waits {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.done:
			if b.err != nil {
				return b.err
			}
		}
	}
	return nil
}

func (w *Writer) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// next blocks until a batch is due: a sealed one, the open one once it is
// due (see due) and no other flush runs, or whatever is left when the
// writer closes. It returns nil when the writer is closed and empty; run
// flushes what it returns.
func (w *Writer) next() *batch {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		w.mu.Lock()
		if len(w.sealed) > 0 {
			b := w.sealed[0]
			w.sealed = w.sealed[1:]
			w.flushing++
			if len(w.sealed) > 0 {
				w.poke() // for another idle flusher
			}
			w.mu.Unlock()
			return b
		}
		var wait time.Duration
		if b := w.cur; b != nil && (w.flushing == 0 || w.closed) {
			wait = time.Until(w.due(b))
			if wait <= 0 || w.closed {
				w.last = len(b.recs)
				w.cur = nil
				w.flushing++
				w.mu.Unlock()
				return b
			}
		} else if b == nil && w.closed {
			w.mu.Unlock()
			return nil
		}
		w.mu.Unlock()
		var fire <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			fire = timer.C
		}
		select {
		case <-w.kick:
		case <-fire:
		case <-w.stop:
		}
	}
}

// due is when the open batch b is flushed if it does not fill first:
// MaxAge after its first record, or, when a flush ended after that, once
// no record came for MaxAge/20 since the later of that end and b's last
// record, but at most MaxAge/5 after that end. The caller holds mu.
func (w *Writer) due(b *batch) time.Time {
	at := b.started.Add(w.o.MaxAge)
	if w.ended.Before(b.started) {
		return at
	}
	quiet := w.ended
	if b.added.After(quiet) {
		quiet = b.added
	}
	return latest(at, earliest(quiet.Add(w.o.MaxAge/20), w.ended.Add(w.o.MaxAge/5)))
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (w *Writer) run() {
	for {
		b := w.next()
		if b == nil {
			return
		}
		b.err = w.traceFlush(b)
		close(b.done)
		w.mu.Lock()
		w.queued -= len(b.recs)
		w.flushing--
		w.ended = time.Now()
		w.poke() // the open batch may flush now that this one is done
		q := w.queued
		close(w.space) // wake every blocked writer; they recheck the bound
		w.space = make(chan struct{})
		w.mu.Unlock()
		if w.o.Metrics != nil {
			w.o.Metrics.Queued(q)
		}
	}
}

// traceFlush is flush in a span, with a Tracer.
func (w *Writer) traceFlush(b *batch) error {
	if w.o.Tracer == nil {
		return w.flush(context.Background(), b.recs)
	}
	ctx, span := w.o.Tracer.Start(context.Background(), "audit flush", trace.WithLinks(b.links...),
		trace.WithAttributes(attribute.Int("auditbus.audit.records", len(b.recs)), attribute.String("auditbus.audit.store", w.o.Name)))
	err := w.flush(ctx, b.recs)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	return err
}

// flush appends recs, retrying with exponential backoff and jitter.
// Retrying is safe because Append stores a version once and an entry
// once per Key.
func (w *Writer) flush(ctx context.Context, recs []Record) error {
	wait := backoff.Policy{Initial: w.o.Backoff, Max: w.o.MaxBackoff, Jitter: backoff.DefaultJitter}
	var err error
	for attempt := 0; ; attempt++ {
		start := time.Now()
		var res AppendResult
		res, err = w.store.Append(ctx, recs)
		if w.o.Metrics != nil {
			w.o.Metrics.Flushed(len(recs), time.Since(start), err)
		}
		if err != nil {
			trace.SpanFromContext(ctx).AddEvent("append failed", trace.WithAttributes(attribute.Int("auditbus.attempt", attempt+1), attribute.String("exception.message", err.Error())))
		}
		if err == nil {
			if w.o.Metrics != nil {
				w.o.Metrics.Appended(res)
			}
			return nil
		}
		if attempt >= w.o.Retries {
			break
		}
		// Closing does not cut retries short: the callers are still waiting
		// for a durable answer.
		<-time.After(wait.Delay(attempt + 1))
	}
	return fmt.Errorf("%w: append %d records to %s failed after %d attempts: %w",
		ErrUnavailable, len(recs), w.o.Name, w.o.Retries+1, err)
}

// Close flushes every queued record, waits for the flusher and stops. Writes
// after Close fail with ErrClosed. It is safe to call more than once.
func (w *Writer) Close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.stop)
		close(w.space) // blocked writers wake and see closed
		w.space = make(chan struct{})
	}
	w.mu.Unlock()
	<-w.stopped
	return nil
}
