package replay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
	"github.com/google/uuid"
)

// Sentinel errors of the Manager, wrapped with the job id.
var (
	// ErrNotFound: no job has that id.
	ErrNotFound = errors.New("replay: no such job")
	// ErrNotRunning: the job already stopped (Cancel), or is not in a
	// state the operation applies to (Retry).
	ErrNotRunning = errors.New("replay: job is not running")
	// ErrClosed: the Manager was closed.
	ErrClosed = errors.New("replay: manager closed")
)

// Auditor makes ledger records durable; *sinks.Writer is one, as for the
// router.
type Auditor interface {
	Write(ctx context.Context, recs []sinks.Record) error
}

// Options configure a Manager. Dir and Store are required.
type Options struct {
	// Dir is the job directory, created if missing. It must belong to one
	// Manager at a time.
	Dir string
	// Store is the audit store replays read from.
	Store sinks.Store
	// Resolve turns a target's name (Target.String) back into the target,
	// for jobs read from Dir: Resume and Retry need it.
	Resolve func(name string) (Target, error)
	// Audit receives the jobs' ledger records: a replayed entry on the
	// original version of every event a destination accepted, a
	// delivered entry for a redrive's. Nil records nothing (benchmarks
	// only: an audit needs them), and Start refuses a redrive without it.
	Audit Auditor
	// Retry is how a batch is retried before its events are given up on;
	// zero means router.DefaultRetryPolicy(), as for routes.
	Retry router.RetryPolicy
	// MaxGiveUps is the job's circuit breaker: after this many batches in
	// a row whose events all exhausted their retries, the job fails
	// instead of dead-lettering everything after them, since the
	// destination is down rather than refusing some events (default 3).
	MaxGiveUps int
	// BatchSize is the most events read and published at once (default
	// 1,000); a rate limit lowers it to a tenth of a second's worth.
	BatchSize int
	// MaxErrors bounds Job.Errors (default 100).
	MaxErrors int
	// CheckpointEvery is how often a running job's checkpoint is written
	// to Dir at most (default 250ms); a crash replays at most this long's
	// worth of events again.
	CheckpointEvery time.Duration
	// Logger receives job starts, ends and failures; nil discards.
	Logger *slog.Logger
	// Tracer, if set, traces each run of a job with a span; the job's
	// publishes are its children.
	Tracer trace.Tracer
	// Metrics, if set, counts the jobs' events and reports their states.
	Metrics *Metrics
	// MaxJobs bounds the jobs running at once: Start and Retry beyond it
	// fail with ErrTooManyJobs (default DefaultMaxJobs). Jobs resumed
	// after a restart run regardless, having been accepted before.
	MaxJobs int
	// Retention is how long a job that ended is kept, with its file,
	// after its last change (default DefaultRetention).
	Retention time.Duration
	// Removed, if set, is told of the jobs removed after their retention,
	// and of those kept, so the caller can remove what it kept for the
	// first that none of the others needs.
	Removed func(gone, kept []Job)
}

// Manager runs replay jobs and keeps them in its job directory. It is safe
// for concurrent use.
type Manager struct {
	o     Options
	ctx   context.Context
	close context.CancelCauseFunc

	mu     sync.Mutex
	jobs   map[string]*jobState
	wg     sync.WaitGroup
	closed bool
	// starting counts the jobs Start has let through but not launched yet.
	starting int
}

// jobState is a job and the run that drives it.
type jobState struct {
	mu  sync.Mutex
	job Job
	// The current run, if any: cancel stops it, done closes when it ends.
	cancel context.CancelCauseFunc
	done   chan struct{}
	// For the rate: when the run began and how many events were handled.
	runStart   time.Time
	runHandled int64
	lastSave   time.Time
}

var (
	errCancelled = errors.New("cancelled")
	errClosing   = errors.New("manager closing")
)

// NewManager reads the jobs in o.Dir. Jobs that were running when their
// process stopped stay Running until Resume continues them.
func NewManager(o Options) (*Manager, error) {
	switch {
	case o.Dir == "":
		return nil, fmt.Errorf("replay: new manager: Options.Dir: %w", &FieldError{Field: "Dir", Reason: "required"})
	case o.Store == nil:
		return nil, fmt.Errorf("replay: new manager: Options.Store: %w", &FieldError{Field: "Store", Reason: "required"})
	}
	if o.Retry == (router.RetryPolicy{}) {
		o.Retry = router.DefaultRetryPolicy()
	}
	o.Retry.MaxAttempts = max(o.Retry.MaxAttempts, 1)
	o.MaxGiveUps = cmp.Or(max(o.MaxGiveUps, 0), 3)
	o.BatchSize = min(cmp.Or(max(o.BatchSize, 0), 1000), sinks.MaxLimit)
	o.MaxErrors = cmp.Or(max(o.MaxErrors, 0), 100)
	o.CheckpointEvery = cmp.Or(max(o.CheckpointEvery, 0), 250*time.Millisecond)
	o.MaxJobs = cmp.Or(max(o.MaxJobs, 0), DefaultMaxJobs)
	o.Retention = cmp.Or(max(o.Retention, 0), DefaultRetention)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("replay: job directory %s: %w", o.Dir, err)
	}
	jobs, err := loadJobs(o.Dir)
	if err != nil {
		return nil, err
	}
	m := &Manager{o: o, jobs: make(map[string]*jobState, len(jobs))}
	m.ctx, m.close = context.WithCancelCause(context.Background())
	if o.Metrics != nil {
		o.Metrics.mgr.Store(m)
	}
	for _, j := range jobs {
		m.jobs[j.ID] = &jobState{job: *j}
	}
	m.prune(time.Now())
	return m, nil
}

// Start validates req, records a new job in the job directory and starts
// it. It returns the job as started; the replay runs on until it is done,
// cancelled, fails or the Manager closes. ctx bounds only the start.
func (m *Manager) Start(ctx context.Context, req Request) (Job, error) {
	if err := req.Validate(); err != nil {
		return Job{}, err
	}
	m.prune(time.Now())
	m.mu.Lock()
	closed := m.closed
	var err error
	if !closed {
		err = m.reserve("start job")
	}
	m.mu.Unlock()
	if closed {
		return Job{}, ErrClosed
	}
	if err != nil {
		return Job{}, err
	}
	launched := false
	defer func() {
		if !launched {
			m.mu.Lock()
			m.release()
			m.mu.Unlock()
		}
	}()
	if req.Redrive && m.o.Audit == nil {
		return Job{}, fmt.Errorf("replay: start redrive: the Manager has no Options.Audit to record deliveries")
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Job{}, fmt.Errorf("replay: new job id: %w", err)
	}
	now := time.Now().UTC()
	js := &jobState{job: Job{ID: id.String(), Request: req, State: Running, Progress: Progress{Total: -1},
		Created: now, Updated: now}}
	if err := ctx.Err(); err != nil {
		return Job{}, fmt.Errorf("replay: start job: %w", err)
	}
	if err := saveJob(m.o.Dir, &js.job); err != nil {
		return Job{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.release()
	launched = true
	if m.closed {
		return Job{}, ErrClosed
	}
	m.jobs[js.job.ID] = js
	m.launch(js)
	return js.snapshot(), nil
}

// Count is how many versions filter f selects now (see Count), for a dry
// run; a bad filter gives a *FieldError naming the field.
func (m *Manager) Count(ctx context.Context, f sinks.Query) (int64, error) {
	if err := ValidateFilter(f); err != nil {
		return 0, err
	}
	return Count(ctx, m.o.Store, f)
}

// Redrive starts the replay of rr to target (see RedriveRequest.Request).
func (m *Manager) Redrive(ctx context.Context, rr RedriveRequest, target Target) (Job, error) {
	req, err := rr.Request(target)
	if err != nil {
		return Job{}, err
	}
	return m.Start(ctx, req)
}

// launch starts js's run; m.mu is held.
func (m *Manager) launch(js *jobState) {
	ctx, cancel := context.WithCancelCause(m.ctx)
	js.mu.Lock()
	js.cancel, js.done = cancel, make(chan struct{})
	js.runStart, js.runHandled = time.Now(), js.job.Progress.Done+js.job.Progress.Failed
	js.lastSave = time.Now()
	done := js.done
	id, dest, resumed := js.job.ID, js.job.Request.Destination.String(), js.job.Checkpoint != ""
	js.mu.Unlock()
	m.o.Logger.Info("replay job started", "job", id, "destination", dest, "from_checkpoint", resumed)
	m.wg.Go(func() {
		defer close(done)
		defer cancel(nil)
		ctx, end := m.traceRun(ctx, js, id, dest, resumed)
		err := m.run(ctx, js)
		end(err)
		m.finish(ctx, js, err)
	})
}

// Resume continues every job that was running when its process stopped,
// from its checkpoint, after resolving its targets with Options.Resolve. A
// job whose targets cannot be resolved is marked Failed; the errors are
// joined in the result. It returns the jobs it continued.
func (m *Manager) Resume() ([]Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	var out []Job
	var errs []error
	for _, id := range m.sortedIDs() {
		js := m.jobs[id]
		js.mu.Lock()
		idle := js.job.State == Running && js.done == nil
		js.mu.Unlock()
		if !idle {
			continue
		}
		if err := m.resolve(js); err != nil {
			errs = append(errs, err)
			continue
		}
		m.launch(js)
		out = append(out, js.snapshot())
	}
	return out, errors.Join(errs...)
}

// Retry continues a Failed or Cancelled job from its checkpoint, after
// resolving its targets again with Options.Resolve.
func (m *Manager) Retry(id string) (Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Job{}, ErrClosed
	}
	js, ok := m.jobs[id]
	if !ok {
		return Job{}, fmt.Errorf("replay: retry job %q: %w", id, ErrNotFound)
	}
	if js.done != nil {
		select {
		case <-js.done:
		default:
			return Job{}, fmt.Errorf("replay: retry job %q: it is still running", id)
		}
	}
	js.mu.Lock()
	state := js.job.State
	js.mu.Unlock()
	if state != Failed && state != Cancelled {
		return Job{}, fmt.Errorf("replay: retry job %q (%s): %w", id, state, ErrNotRunning)
	}
	if err := m.reserve(fmt.Sprintf("retry job %q", id)); err != nil {
		return Job{}, err
	}
	defer m.release()
	if err := m.resolve(js); err != nil {
		return Job{}, err
	}
	js.mu.Lock()
	js.job.State, js.job.Error, js.job.Updated = Running, "", time.Now().UTC()
	j := js.job.clone()
	js.mu.Unlock()
	if err := saveJob(m.o.Dir, &j); err != nil {
		return Job{}, err
	}
	m.launch(js)
	return js.snapshot(), nil
}

// resolve swaps the job's targets read from its file for real ones. A job
// whose targets cannot be found is marked Failed and saved.
func (m *Manager) resolve(js *jobState) error {
	js.mu.Lock()
	req := js.job.Request
	js.mu.Unlock()
	var err error
	if _, ok := req.Destination.(unresolved); ok {
		req.Destination, err = m.lookup(req.Destination.String())
	}
	if _, ok := req.DeadLetter.(unresolved); ok && err == nil {
		req.DeadLetter, err = m.lookup(req.DeadLetter.String())
	}
	js.mu.Lock()
	defer js.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("replay: job %s: %w", js.job.ID, err)
		js.job.State, js.job.Error, js.job.Updated = Failed, err.Error(), time.Now().UTC()
		js.addError(JobError{Time: js.job.Updated, Message: err.Error()}, m.o.MaxErrors)
		j := js.job.clone()
		return errors.Join(err, saveJob(m.o.Dir, &j))
	}
	js.job.Request = req
	return nil
}

func (m *Manager) lookup(name string) (Target, error) {
	if m.o.Resolve == nil {
		return nil, fmt.Errorf("resolve target %q: the Manager has no Options.Resolve", name)
	}
	t, err := m.o.Resolve(name)
	if err == nil && isNil(t) {
		err = errors.New("the Resolve function returned a nil target")
	}
	if err != nil {
		return nil, fmt.Errorf("resolve target %q: %w", name, err)
	}
	return t, nil
}

// job finds a job by id for operation op.
func (m *Manager) job(op, id string) (*jobState, error) {
	m.mu.Lock()
	js, ok := m.jobs[id]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("replay: %s job %q: %w", op, id, ErrNotFound)
	}
	return js, nil
}

// Get returns a snapshot of the job with that id, or an error wrapping
// ErrNotFound.
func (m *Manager) Get(id string) (Job, error) {
	js, err := m.job("get", id)
	if err != nil {
		return Job{}, err
	}
	return js.snapshot(), nil
}

// List returns every job, newest first.
func (m *Manager) List() []Job {
	m.prune(time.Now())
	m.mu.Lock()
	ids := m.sortedIDs()
	jobs := make([]*jobState, len(ids))
	for i, id := range ids {
		jobs[len(ids)-1-i] = m.jobs[id]
	}
	m.mu.Unlock()
	out := make([]Job, len(jobs))
	for i, js := range jobs {
		out[i] = js.snapshot()
	}
	return out
}

// sortedIDs lists job ids oldest first (UUIDv7 sorts by time); m.mu is held.
func (m *Manager) sortedIDs() []string {
	ids := make([]string, 0, len(m.jobs))
	for id := range m.jobs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Cancel stops a running job, waits for the batch in flight to finish, and
// returns the job, now Cancelled. A job that already stopped gives an
// error wrapping ErrNotRunning, with the job.
func (m *Manager) Cancel(id string) (Job, error) {
	js, err := m.job("cancel", id)
	if err != nil {
		return Job{}, err
	}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return js.snapshot(), fmt.Errorf("replay: cancel job %q: %w", id, ErrClosed)
	}
	js.mu.Lock()
	state, cancel, done := js.job.State, js.cancel, js.done
	if state == Running && done == nil {
		// Read from the job directory and never resumed: nothing runs.
		js.job.State, js.job.Updated = Cancelled, time.Now().UTC()
		j := js.job.clone()
		js.mu.Unlock()
		return j, saveJob(m.o.Dir, &j)
	}
	js.mu.Unlock()
	if state != Running {
		return js.snapshot(), fmt.Errorf("replay: cancel job %q (%s): %w", id, state, ErrNotRunning)
	}
	cancel(errCancelled)
	<-done
	return js.snapshot(), nil
}

// Wait blocks until the job stops (done, failed or cancelled, or left
// running by Close) or ctx ends, and returns its snapshot.
func (m *Manager) Wait(ctx context.Context, id string) (Job, error) {
	js, err := m.job("wait for", id)
	if err != nil {
		return Job{}, err
	}
	js.mu.Lock()
	done := js.done
	js.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return js.snapshot(), fmt.Errorf("replay: wait for job %q: %w", id, ctx.Err())
		}
	}
	return js.snapshot(), nil
}

// Close stops every running job after the batch in flight and saves its
// checkpoint. The jobs stay Running in the job directory, so a Manager
// made later on the same directory resumes them.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.close(errClosing)
	m.wg.Wait()
	return nil
}

// snapshot copies the job with its current rate and ETA.
func (js *jobState) snapshot() Job {
	js.mu.Lock()
	defer js.mu.Unlock()
	j := js.job.clone()
	if j.State == Running && js.done != nil {
		j.Progress.Rate, j.Progress.ETA = js.rate(time.Now())
	}
	return j
}

// rate is the events handled per second in this run and the time left at
// that rate; js.mu is held.
func (js *jobState) rate(now time.Time) (float64, time.Duration) {
	p := js.job.Progress
	el := now.Sub(js.runStart).Seconds()
	if el <= 0 {
		return 0, 0
	}
	r := float64(p.Done+p.Failed-js.runHandled) / el
	if r <= 0 || p.Total < 0 {
		return r, 0
	}
	left := float64(p.Total - p.Done - p.Failed)
	if left <= 0 {
		return r, 0
	}
	return r, time.Duration(left / r * float64(time.Second))
}

// addError keeps the first max errors and counts all; js.mu is held.
func (js *jobState) addError(e JobError, max int) {
	js.job.ErrorCount++
	if len(js.job.Errors) < max {
		js.job.Errors = append(js.job.Errors, e)
	}
}
