package replay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Bounds of a Manager's jobs.
const (
	// DefaultMaxJobs is how many jobs run at once when Options.MaxJobs is 0.
	DefaultMaxJobs = 8
	// DefaultRetention is how long a finished job is kept when
	// Options.Retention is 0.
	DefaultRetention = 7 * 24 * time.Hour
	// MaxPage is the most jobs one Page returns.
	MaxPage = 1000
)

// ErrTooManyJobs: Options.MaxJobs jobs are running; start again once one
// has ended.
var ErrTooManyJobs = errors.New("replay: too many jobs running")

// reserve takes a slot for a job about to run, or fails with
// ErrTooManyJobs; m.mu is held. release gives it back if the job did not
// start after all.
func (m *Manager) reserve(op string) error {
	if n := m.running() + m.starting; n >= m.o.MaxJobs {
		return fmt.Errorf("replay: %s: %d jobs are running, the most Options.MaxJobs allows: %w", op, n, ErrTooManyJobs)
	}
	m.starting++
	return nil
}

func (m *Manager) release() { m.starting-- }

// running counts the jobs whose run has not ended; m.mu is held.
func (m *Manager) running() int {
	n := 0
	for _, js := range m.jobs {
		js.mu.Lock()
		done := js.done
		js.mu.Unlock()
		if done == nil {
			continue
		}
		select {
		case <-done:
		default:
			n++
		}
	}
	return n
}

// prune removes the jobs that ended more than Options.Retention ago, with
// their files, and tells Options.Removed; it takes m.mu.
func (m *Manager) prune(now time.Time) {
	cutoff := now.Add(-m.o.Retention)
	var gone []Job
	m.mu.Lock()
	for id, js := range m.jobs {
		js.mu.Lock()
		old := js.job.Final() && js.job.Updated.Before(cutoff) && (js.done == nil || isClosed(js.done))
		j := js.job
		js.mu.Unlock()
		if !old {
			continue
		}
		if err := os.Remove(filepath.Join(m.o.Dir, id+jobSuffix)); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.o.Logger.Warn("replay job past its retention could not be removed", "job", id, "error", err)
			continue
		}
		delete(m.jobs, id)
		gone = append(gone, j)
	}
	var kept []Job
	if len(gone) > 0 && m.o.Removed != nil {
		kept = make([]Job, 0, len(m.jobs))
		for _, js := range m.jobs {
			kept = append(kept, js.snapshot())
		}
	}
	m.mu.Unlock()
	for _, j := range gone {
		m.o.Logger.Info("replay job removed after its retention", "job", j.ID, "state", j.State, "ended", j.Updated)
	}
	if len(gone) > 0 && m.o.Removed != nil {
		m.o.Removed(gone, kept)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Page lists at most limit jobs (1 to MaxPage; 0 means 100), newest
// first, starting after the job with id after ("" for the newest). next
// is the id to pass as after for the following page, "" after the last.
func (m *Manager) Page(after string, limit int) (jobs []Job, next string) {
	m.prune(time.Now())
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxPage)
	m.mu.Lock()
	ids := m.sortedIDs()
	var page []*jobState
	for i := len(ids) - 1; i >= 0; i-- {
		if after != "" && ids[i] >= after {
			continue
		}
		if len(page) == limit {
			next = ids[i+1]
			break
		}
		page = append(page, m.jobs[ids[i]])
	}
	m.mu.Unlock()
	jobs = make([]Job, len(page))
	for i, js := range page {
		jobs[i] = js.snapshot()
	}
	return jobs, next
}
