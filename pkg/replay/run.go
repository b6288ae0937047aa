package replay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// run replays the job's request from its checkpoint, a page at a time in
// cursor order, and returns nil once every selected record was handled.
// Publishing in cursor order, one batch after the other, is what keeps the
// order per partition key (and time order within a key) on transports
// that keep order.
func (m *Manager) run(ctx context.Context, js *jobState) (err error) {
	js.mu.Lock()
	j := js.job.clone()
	js.mu.Unlock()
	req := j.Request
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
	go read(rctx, m.o.Store, req.Filter, req.Redrive, j.Checkpoint, size, pages)
	defer func() {
		stop()
		for range pages { // wait for the reader to leave the store
		}
	}()

	stamp := j.Created.UTC().Format(time.RFC3339Nano)
	giveUps := 0 // batches in a row whose every event exhausted its retries
	for p := range pages {
		startCount()
		if p.err != nil {
			return p.err
		}
		var res batchResult
		if len(p.recs) > 0 {
			if err := lim.wait(ctx, len(p.recs)); err != nil {
				return err
			}
			var err error
			if res, err = m.batch(ctx, &j, p.recs, stamp); err != nil {
				return err
			}
		}
		if err := m.advance(js, p.next, res); err != nil {
			return err
		}
		if res.allExhausted {
			giveUps++
		} else if len(p.recs) > 0 {
			giveUps = 0
		}
		if giveUps >= m.o.MaxGiveUps {
			return fmt.Errorf("publish to %s: %d batches in a row exhausted their retries; the destination looks down, so the job stops (Retry continues it): %s",
				req.Destination, giveUps, res.lastErr)
		}
	}
	return ctx.Err()
}

// count sets the job's total to the number of records its filter selects,
// and closes counted when done.
func (m *Manager) count(ctx context.Context, js *jobState, counted chan<- struct{}) {
	defer close(counted)
	js.mu.Lock()
	id, f := js.job.ID, js.job.Request.Filter
	js.mu.Unlock()
	n, err := Count(ctx, m.o.Store, f)
	if err != nil {
		if ctx.Err() == nil {
			m.o.Logger.Warn("replay job: counting the records failed", "job", id, "err", err)
		}
		return
	}
	js.mu.Lock()
	js.job.Progress.Total = n
	js.mu.Unlock()
}

// batchResult is what became of one batch.
type batchResult struct {
	done, failed int
	errs         []JobError
	allExhausted bool   // every event exhausted its retries
	lastErr      string // the last failure, for the breaker's message
}

// batch publishes copies of recs and deals with the events the destination
// gave up on: parked in the dead letter and reported, or, without a dead
// letter, reported when refused for good and fatal for the job when the
// retries ran out (so the checkpoint stays before them and nothing is
// lost). For a redrive it then audits the accepted events as delivered.
func (m *Manager) batch(ctx context.Context, j *Job, recs []sinks.Record, stamp string) (batchResult, error) {
	req := j.Request
	events := make([]bus.Event, len(recs))
	for i := range recs {
		e := recs[i].Event
		if req.Redrive {
			e = e.Clone() // the audit record keeps the event as stored
		}
		setReplayExtensions(&e, j.ID, stamp)
		events[i] = e
	}
	gave, err := publish(ctx, req.Destination, events, m.o.Retry)
	if err != nil {
		return batchResult{}, err
	}
	res := batchResult{done: len(events) - len(gave), failed: len(gave)}
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
			return res, fmt.Errorf("publish event %q from %q to %s: gave up after %d attempts and the job has no dead letter; the job stops before this batch (Retry continues it): %w",
				e.ID(), e.Source(), req.Destination, g.attempts, g.err)
		}
		if req.DeadLetter != nil {
			if err := m.park(ctx, req, events, gave); err != nil {
				return res, err
			}
		}
		for _, g := range gave {
			e := &events[g.index]
			res.errs = append(res.errs, JobError{Time: now, Source: e.Source(), ID: e.ID(), Attempts: g.attempts,
				DeadLettered: req.DeadLetter != nil, Message: g.err.Error()})
		}
	}
	if req.Redrive && res.done > 0 {
		if err := m.audit(ctx, recs, gave); err != nil {
			return res, err
		}
	}
	return res, nil
}

// setReplayExtensions marks e as a copy made by replay job id at stamp.
// Both names are valid extension names and both values strings, so on a
// CloudEvents 1.0 context they go straight into its extensions, as
// SetExtension would put them after checking.
func setReplayExtensions(e *bus.Event, id, stamp string) {
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok {
		e.SetExtension(ExtReplay, id)
		e.SetExtension(ExtReplayTime, stamp)
		return
	}
	if ec.Extensions == nil {
		ec.Extensions = make(map[string]any, 2)
	}
	ec.Extensions[ExtReplay], ec.Extensions[ExtReplayTime] = id, stamp
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
	lost, err := publish(ctx, req.DeadLetter, parked, m.o.Retry)
	if err != nil {
		return err
	}
	if len(lost) > 0 {
		return fmt.Errorf("dead-letter %d events to %s: %d refused: %w", len(parked), req.DeadLetter, len(lost), lost[0].err)
	}
	return nil
}

// audit records the accepted events of a redrive as delivered: records of
// the original identity with a Received later than the stored one, which
// the store's later-Received-wins rule lets supersede "deadlettered".
func (m *Manager) audit(ctx context.Context, recs []sinks.Record, gave []giveUp) error {
	skip := make(map[int]bool, len(gave))
	for _, g := range gave {
		skip[g.index] = true
	}
	now := time.Now().UTC()
	out := make([]sinks.Record, 0, len(recs)-len(gave))
	for i, r := range recs {
		if skip[i] {
			continue
		}
		r.Outcome, r.Replay = sinks.OutcomeDelivered, ""
		r.Received = now
		if !r.Received.After(recs[i].Received) {
			r.Received = recs[i].Received.Add(time.Nanosecond)
		}
		out = append(out, r)
	}
	if err := m.o.Audit.Write(ctx, out); err != nil {
		return fmt.Errorf("audit %d redriven events as delivered: %w", len(out), err)
	}
	return nil
}

// advance moves the checkpoint past a handled batch and adds its counts,
// writing the job file at most every Options.CheckpointEvery.
func (m *Manager) advance(js *jobState, cursor string, res batchResult) error {
	now := time.Now()
	js.mu.Lock()
	js.job.Checkpoint = cursor
	js.job.Progress.Done += int64(res.done)
	js.job.Progress.Failed += int64(res.failed)
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
			p.Total = p.Done + p.Failed // the count failed; this is what there was
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
