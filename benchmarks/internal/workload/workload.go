// Package workload is the end-to-end workload that the benchmarks module
// measures: N events of a fixed size, published in batches to one topic and
// handled by one consumer. The bench-mem harness and the testing.B
// benchmarks both run it, so their figures describe the same work.
//
// Fairness rules every System follows:
//   - Events, ids and payloads are built before timing starts, by Setup,
//     and the heap is collected before Run; only publishing and consuming
//     are timed.
//   - Both systems get the same ids and the same payload bytes, published in
//     the same batches, to one topic with one consumer that acknowledges
//     everything.
//   - Publishing runs in its own goroutine, concurrently with consumption.
//   - The clock starts just before the publisher starts and stops when the
//     consumer has handled the last event; checking what was delivered
//     happens afterwards (Verify) and is not timed.
//   - The consumer does the same bookkeeping per event on both sides (one
//     record call: an atomic add and an append), so it weighs the same on
//     both.
package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Config is the shape of the workload.
type Config struct {
	Events int // events published and consumed
	Size   int // payload bytes per event
	Batch  int // events per publish call
}

// Workload holds the ids and payloads of a run, built once and shared by
// every system so that both publish identical data.
type Workload struct {
	Config
	ids     []string
	index   map[string]int // id -> position, to check deliveries
	payload []byte         // Events*Size random bytes; event i owns one Size slice
}

// New builds the ids (random UUIDs, as both systems would generate) and the
// random payloads for cfg. The payloads come from a fixed seed, so runs are
// repeatable.
func New(cfg Config) (*Workload, error) {
	if cfg.Events <= 0 || cfg.Size <= 0 || cfg.Batch <= 0 {
		return nil, fmt.Errorf("workload: events (%d), size (%d) and batch (%d) must all be positive",
			cfg.Events, cfg.Size, cfg.Batch)
	}
	w := &Workload{
		Config:  cfg,
		ids:     make([]string, cfg.Events),
		index:   make(map[string]int, cfg.Events),
		payload: make([]byte, cfg.Events*cfg.Size),
	}
	for i := range w.ids {
		id := uuid.NewString()
		w.ids[i] = id
		w.index[id] = i
	}
	// One allocation for every payload keeps the pointer-free bytes out of
	// the garbage collector's way on both sides alike.
	rng := rand.NewChaCha8([32]byte{'a', 'u', 'd', 'i', 't', 'b', 'u', 's'})
	_, _ = rng.Read(w.payload)
	return w, nil
}

// ID returns the id of event i.
func (w *Workload) ID(i int) string { return w.ids[i] }

// Payload returns the payload of event i. Its capacity ends with it, so an
// append cannot spill into the next event's bytes.
func (w *Workload) Payload(i int) []byte {
	return w.payload[i*w.Size : (i+1)*w.Size : (i+1)*w.Size]
}

// Result is the timing of one run.
type Result struct {
	Events  int
	Elapsed time.Duration // first publish to the last event handled
}

// PerSecond returns the throughput in events per second.
func (r Result) PerSecond() float64 { return float64(r.Events) / r.Elapsed.Seconds() }

// System is a messaging system under test.
type System struct {
	Name  string
	setup func(w *Workload) (*Trial, error)
}

// Setup prepares one run of w: it builds the system, subscribes its
// consumer and builds the messages, then collects the heap so that garbage
// from earlier runs is not billed to this one.
func (s System) Setup(w *Workload) (*Trial, error) {
	tr, err := s.setup(w)
	if err != nil {
		return nil, fmt.Errorf("%s: setup: %w", s.Name, err)
	}
	tr.name = s.Name
	runtime.GC()
	return tr, nil
}

// Trial is one prepared run of a workload on a system. Run it once, Verify
// it, then Close it.
type Trial struct {
	name    string
	w       *Workload
	tally   *tally
	publish func(ctx context.Context, lo, hi int) error // publishes events [lo, hi)
	stopped <-chan struct{}                             // closed if the consumer stops
	close   func() error
	ran     bool
}

// Run publishes every event in batches from a separate goroutine and waits
// until the consumer has handled all of them, ctx ends (a timeout), the
// publisher fails or the consumer stops.
func (t *Trial) Run(ctx context.Context) (Result, error) {
	if t.ran {
		return Result{}, fmt.Errorf("%s: a trial runs once; set up another", t.name)
	}
	t.ran = true
	w := t.w
	pubErr := make(chan error, 1)
	start := time.Now()
	go func() {
		for lo := 0; lo < w.Events; lo += w.Batch {
			if err := t.publish(ctx, lo, min(lo+w.Batch, w.Events)); err != nil {
				pubErr <- fmt.Errorf("publish of events %d..: %w", lo, err)
				return
			}
		}
		pubErr <- nil
	}()
	for {
		select {
		case <-t.tally.done:
			return Result{Events: w.Events, Elapsed: t.tally.end.Sub(start)}, nil
		case err := <-pubErr:
			if err != nil {
				return Result{}, fmt.Errorf("%s: %w (consumer had handled %d of %d events)",
					t.name, err, t.tally.n.Load(), w.Events)
			}
			pubErr = nil // published everything; keep waiting for the consumer
		case <-t.stopped:
			return Result{}, fmt.Errorf("%s: consumer stopped after handling %d of %d events",
				t.name, t.tally.n.Load(), w.Events)
		case <-ctx.Done():
			return Result{}, fmt.Errorf("%s: %w: consumer handled %d of %d events",
				t.name, context.Cause(ctx), t.tally.n.Load(), w.Events)
		}
	}
}

// Verify checks, after a successful Run, that the consumer received every
// event exactly once with its full payload.
func (t *Trial) Verify() error {
	if err := t.tally.verify(t.w); err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	return nil
}

// Close stops the consumer and releases the system.
func (t *Trial) Close() error { return t.close() }

// tally counts what the consumer handled. record is called from the one
// consumer goroutine; the count is atomic only so that Run can report
// progress on failure.
type tally struct {
	want    int
	size    int
	n       atomic.Int64
	ids     []string // ids of the first want deliveries
	badSize int
	end     time.Time // when the want-th delivery was handled
	done    chan struct{}
}

func newTally(w *Workload) *tally {
	return &tally{want: w.Events, size: w.Size, ids: make([]string, 0, w.Events), done: make(chan struct{})}
}

func (t *tally) record(id string, size int) {
	n := t.n.Add(1)
	if n > int64(t.want) {
		return // a duplicate; Verify reports it
	}
	t.ids = append(t.ids, id)
	if size != t.size {
		t.badSize++
	}
	if n == int64(t.want) {
		t.end = time.Now()
		close(t.done)
	}
}

func (t *tally) verify(w *Workload) error {
	select {
	case <-t.done:
	default:
		return fmt.Errorf("verify: only %d of %d events were handled", t.n.Load(), t.want)
	}
	var errs []error
	if t.badSize > 0 {
		errs = append(errs, fmt.Errorf("verify: %d events arrived with a payload other than %d bytes", t.badSize, t.size))
	}
	seen := make([]bool, t.want)
	dups, unknown := 0, 0
	for _, id := range t.ids {
		i, ok := w.index[id]
		switch {
		case !ok:
			unknown++
		case seen[i]:
			dups++
		default:
			seen[i] = true
		}
	}
	if extra := t.n.Load() - int64(t.want); extra > 0 {
		dups += int(extra)
	}
	if dups > 0 || unknown > 0 {
		missing := 0
		for _, s := range seen {
			if !s {
				missing++
			}
		}
		errs = append(errs, fmt.Errorf("verify: %d events lost, %d delivered twice, %d with unknown ids", missing, dups, unknown))
	}
	return errors.Join(errs...)
}
