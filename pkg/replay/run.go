package replay

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/trace"
)

// maxUnrecorded is how many published batches may wait for their ledger
// entries to be durable while the next ones are published. A batch's
// checkpoint is written only once its entries are, so a crash publishes
// such batches again, and the store keeps each entry once. Ten batches of
// the default 1,000 events fill two of the audit Writer's default batches
// of 5,000: its two flushers then append full batches one beside the
// other, where with fewer unrecorded it appends what one flush's wait
// gathered, a few thousand entries at most, one append at a time, and an
// append's cost is mostly per statement. (A crash republishes what its
// last checkpoint had not reached, up to CheckpointEvery's worth of events
// besides.)
const maxUnrecorded = 10

// run replays the job's request from its checkpoint, a batch at a time in
// cursor order, and returns nil once every selected version was handled.
// Publishing in cursor order, one batch after the other, is what keeps the
// order per partition key (and time order within a key) on transports
// that keep order.
func (m *Manager) run(ctx context.Context, js *jobState) (err error) {
	js.mu.Lock()
	j := js.job.clone()
	js.mu.Unlock()
	req := j.Request
	if req.Redrive && req.Route == "" {
		return errors.New("the job was written by an earlier auditbus, whose redrives name no destination: start the redrive again")
	}
	size := m.o.BatchSize
	if req.Rate > 0 {
		// Small batches keep a rate-limited job's flow even.
		size = min(size, max(1, int(req.Rate/10)))
	}
	lim := newLimiter(req.Rate, size)

	// The count runs beside the replay from its first batch on, so that
	// the two do not compete for the store before anything is published. A
	// job that stops early stops the count, one that finishes waits for it.
	startCount := func() {}
	if j.Progress.Total < 0 {
		cctx, stopCount := context.WithCancel(ctx)
		counted := make(chan struct{})
		var once sync.Once
		startCount = func() { once.Do(func() { go m.count(cctx, js, counted) }) }
		defer func() {
			if err != nil {
				stopCount()
			}
			startCount()
			<-counted
			stopCount()
		}()
	}

	rctx, stop := context.WithCancel(ctx)
	// Room for two store pages of batches, so the reader reads the next
	// page, or plans the store's next round of pages, while the publisher
	// sends these.
	pages := make(chan page, 2*ReadPage(size)/size)
	go read(rctx, m.o.Store, req.Filter, j.Checkpoint, size, pages)
	var rec recorder
	defer func() {
		stop()
		for range pages { // wait for the reader to leave the store
		}
		// What was published is recorded, and checkpointed, even when
		// the job stops.
		if rerr := rec.settle(m, js, 0); err == nil {
			err = rerr
		}
	}()

	stamp := j.Created.UTC().Format(time.RFC3339Nano)
	giveUps := 0 // batches in a row whose every event exhausted its retries
	for p := range pages {
		startCount()
		if p.err != nil {
			return p.err
		}
		res := batchResult{skipped: p.skipped}
		var recs []sinks.Record
		if len(p.items) > 0 {
			if err := lim.wait(ctx, len(p.items)); err != nil {
				return err
			}
			var err error
			if recs, err = m.batch(ctx, &j, p.items, stamp, &res); err != nil {
				return err
			}
		}
		rec.add(m, recs, p.next, res)
		if err := rec.settle(m, js, maxUnrecorded); err != nil {
			return err
		}
		if res.allExhausted {
			giveUps++
		} else if len(p.items) > 0 {
			giveUps = 0
		}
		if giveUps >= m.o.MaxGiveUps {
			return fmt.Errorf("publish to %s: %d batches in a row exhausted their retries; the destination looks down, so the job stops (Retry continues it): %s",
				req.Destination, giveUps, res.lastErr)
		}
	}
	return ctx.Err()
}

// recorder writes the ledger entries of published batches while the next
// batches are published, and moves the job's checkpoint past each batch,
// in order, once its entries are durable.
type recorder struct {
	queue []unrecorded
}

// unrecorded is a published batch whose entries are being written.
type unrecorded struct {
	done chan error
	next string
	res  batchResult
}

// add starts writing recs, the entries of the batch that ends at cursor
// next. The write outlives a cancelled job: what was published is
// recorded.
func (r *recorder) add(m *Manager, recs []sinks.Record, next string, res batchResult) {
	u := unrecorded{done: make(chan error, 1), next: next, res: res}
	if len(recs) == 0 || m.o.Audit == nil {
		u.done <- nil
	} else {
		go func() {
			if err := m.o.Audit.Write(context.WithoutCancel(m.ctx), recs); err != nil {
				u.done <- fmt.Errorf("record %d published events in the audit store: %w", len(recs), err)
				return
			}
			u.done <- nil
		}()
	}
	r.queue = append(r.queue, u)
}

// settle waits for the oldest writes until at most keep are left, and
// advances the checkpoint past each batch written. After a failed write
// it still waits for the others, advancing no further.
func (r *recorder) settle(m *Manager, js *jobState, keep int) error {
	var first error
	for len(r.queue) > keep {
		u := r.queue[0]
		r.queue = r.queue[1:]
		err := <-u.done
		if err == nil && first == nil {
			err = m.advance(js, u.next, u.res)
		}
		if first == nil {
			first = err
		}
		if first != nil {
			keep = 0
		}
	}
	return first
}

// count sets the job's total to the number of versions its filter
// selects, and closes counted when done.
func (m *Manager) count(ctx context.Context, js *jobState, counted chan<- struct{}) {
	defer close(counted)
	js.mu.Lock()
	id, f := js.job.ID, js.job.Request.Filter
	js.mu.Unlock()
	n, err := Count(ctx, m.o.Store, f)
	if err != nil {
		if ctx.Err() == nil {
			m.o.Logger.Warn("replay job: counting the versions failed", "job", id, "err", err)
		}
		return
	}
	js.mu.Lock()
	js.job.Progress.Total = n
	js.mu.Unlock()
}

// batchResult is what became of one batch.
type batchResult struct {
	done, failed, skipped int
	errs                  []JobError
	allExhausted          bool   // every event exhausted its retries
	lastErr               string // the last failure, for the breaker's message
}

// batch publishes copies of items and deals with the events the
// destination gave up on: parked in the dead letter and reported, or,
// without a dead letter, reported when refused for good and fatal for the
// job when the retries ran out (so the checkpoint stays before them and
// nothing is lost). It returns the ledger records of what the destination
// accepted: a replayed entry on each original version, or for a redrive a
// delivered entry.
func (m *Manager) batch(ctx context.Context, j *Job, items []sinks.Item, stamp string, res *batchResult) ([]sinks.Record, error) {
	req := j.Request
	events := make([]bus.Event, len(items))
	for i := range items {
		events[i] = replayCopy(&items[i].Event, j.ID, stamp)
	}
	gave, tries, err := publish(ctx, req.Destination, events, m.o.Retry)
	if err != nil {
		return nil, err
	}
	res.done, res.failed = len(events)-len(gave), len(gave)
	if len(gave) > 0 {
		now := time.Now().UTC()
		exhausted := 0
		for _, g := range gave {
			if !g.permanent {
				exhausted++
			}
		}
		res.allExhausted = exhausted == len(events)
		res.lastErr = gave[len(gave)-1].err.Error()
		if req.DeadLetter == nil && exhausted > 0 {
			g := gave[0]
			for _, f := range gave {
				if !f.permanent {
					g = f
					break
				}
			}
			e := &events[g.index]
			return nil, fmt.Errorf("publish event %q from %q to %s: gave up after %d attempts and the job has no dead letter; the job stops before this batch (Retry continues it): %w",
				e.ID(), e.Source(), req.Destination, g.attempts, g.err)
		}
		if req.DeadLetter != nil {
			if err := m.park(ctx, req, events, gave); err != nil {
				return nil, err
			}
		}
		for _, g := range gave {
			e := &events[g.index]
			res.errs = append(res.errs, JobError{Time: now, Source: e.Source(), ID: e.ID(), Attempts: g.attempts,
				DeadLettered: req.DeadLetter != nil, Message: g.err.Error()})
		}
	}
	return records(j, items, gave, tries, trace.SpanContextFromContext(ctx)), nil
}

// records are the ledger records of the versions of a batch that the
// destination accepted, each with one entry on the original version, in
// the trace of sc (the job's span) when it is valid.
func records(j *Job, items []sinks.Item, gave []giveUp, tries []int, sc trace.SpanContext) []sinks.Record {
	req := j.Request
	skip := make(map[int]bool, len(gave))
	for _, g := range gave {
		skip[g.index] = true
	}
	en := sinks.Entry{Time: time.Now().UTC(), Kind: sinks.KindReplayed, Route: req.Route, Destination: req.RouteDestination, Replay: j.ID}
	en.TraceID, en.SpanID = sinks.TraceIDs(sc)
	if req.Route == "" {
		en.Destination = req.Destination.String()
	}
	if req.Redrive {
		en.Kind = sinks.KindDelivered
	}
	recs := make([]sinks.Record, 0, len(items)-len(skip))
	entries := make([]sinks.Entry, len(items)-len(skip))
	for i := range items {
		if skip[i] {
			continue
		}
		e := &entries[len(recs)]
		*e = en
		if req.Redrive {
			e.Attempts = tries[i]
		}
		recs = append(recs, sinks.Record{Event: items[i].Event, Digest: items[i].Digest, Entries: entries[len(recs) : len(recs)+1 : len(recs)+1]})
	}
	return recs
}

// replayCopy is e marked as a copy made by replay job id at stamp: e's
// attributes and data (shared, not copied) with the replay extensions
// added, e itself unchanged, since its ledger records name it. Both names
// are valid extension names and both values strings, so on a CloudEvents
// 1.0 context they go straight into a copy of its extensions, as
// SetExtension would put them after checking.
func replayCopy(e *bus.Event, id, stamp string) bus.Event {
	c := *e
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok {
		c.Context = e.Context.Clone()
		c.SetExtension(ExtReplay, id)
		c.SetExtension(ExtReplayTime, stamp)
		return c
	}
	cc := *ec
	cc.Extensions = make(map[string]any, len(ec.Extensions)+2)
	maps.Copy(cc.Extensions, ec.Extensions)
	cc.Extensions[ExtReplay], cc.Extensions[ExtReplayTime] = id, stamp
	c.Context = &cc
	return c
}

// park sends the events given up on to the dead letter with the router's
// dead-letter extensions. The dead letter refusing them fails the job.
func (m *Manager) park(ctx context.Context, req Request, events []bus.Event, gave []giveUp) error {
	parked := make([]bus.Event, len(gave))
	for k, g := range gave {
		e := events[g.index].Clone()
		e.SetExtension(router.ExtDeadLetterReason, g.err.Error())
		e.SetExtension(router.ExtDeadLetterDestination, req.Destination.String())
		e.SetExtension(router.ExtDeadLetterAttempts, int32(g.attempts))
		parked[k] = e
	}
	lost, _, err := publish(ctx, req.DeadLetter, parked, m.o.Retry)
	if err != nil {
		return err
	}
	if len(lost) > 0 {
		return fmt.Errorf("dead-letter %d events to %s: %d refused: %w", len(parked), req.DeadLetter, len(lost), lost[0].err)
	}
	return nil
}

// advance moves the checkpoint past a handled batch and adds its counts,
// writing the job file at most every Options.CheckpointEvery.
func (m *Manager) advance(js *jobState, cursor string, res batchResult) error {
	m.o.Metrics.handled(res)
	now := time.Now()
	js.mu.Lock()
	js.job.Checkpoint = cursor
	js.job.Progress.Done += int64(res.done)
	js.job.Progress.Failed += int64(res.failed)
	js.job.Progress.Skipped += int64(res.skipped)
	for _, e := range res.errs {
		js.addError(e, m.o.MaxErrors)
	}
	js.job.Updated = now.UTC()
	save := now.Sub(js.lastSave) >= m.o.CheckpointEvery
	var j Job
	if save {
		js.lastSave = now
		j = js.job.clone()
		j.Progress.Rate, j.Progress.ETA = js.rate(now)
	}
	js.mu.Unlock()
	if save {
		return saveJob(m.o.Dir, &j)
	}
	return nil
}

// finish records how the run ended and saves the job.
func (m *Manager) finish(ctx context.Context, js *jobState, err error) {
	cause := context.Cause(ctx)
	now := time.Now()
	js.mu.Lock()
	js.job.Progress.Rate, _ = js.rate(now)
	js.job.Progress.ETA = 0
	switch {
	case err == nil:
		js.job.State = Done
		if p := &js.job.Progress; p.Total < 0 {
			p.Total = p.Done + p.Failed + p.Skipped // the count failed; this is what there was
		}
	case errors.Is(cause, errCancelled):
		js.job.State = Cancelled
	case errors.Is(cause, errClosing):
		// Still Running on disk: the next Manager resumes it.
	default:
		js.job.State = Failed
		js.job.Error = fmt.Sprintf("replay job %s: %v", js.job.ID, err)
		js.addError(JobError{Time: now.UTC(), Message: js.job.Error}, m.o.MaxErrors)
	}
	js.job.Updated = now.UTC()
	j := js.job.clone()
	js.mu.Unlock()
	if serr := saveJob(m.o.Dir, &j); serr != nil {
		m.o.Logger.Error("replay job: saving its end failed", "job", j.ID, "err", serr)
	}
	m.o.Logger.Info("replay job stopped", "job", j.ID, "state", j.State, "done", j.Progress.Done,
		"failed", j.Progress.Failed, "error", j.Error)
}
