package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/backoff"
	"github.com/auditbus/auditbus/pkg/cehttp"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// page is one batch the reader hands to the publisher.
type page struct {
	// items are the versions to publish: the batch's versions but for
	// copies made by replays.
	items []sinks.Item
	// skipped counts the copies left out.
	skipped int
	next    string // cursor after the batch's last version
	err     error
}

// read reads the store from cursor through sinks.Scan (a sinks.Scanner
// plans many pages at once), events only, and sends every batch of up to
// size versions on out, closing it after the last. It reads the store in
// pages of ReadPage(size) versions and runs as far ahead of the publisher
// as out has room for.
func read(ctx context.Context, store sinks.Store, q sinks.Query, cursor string, size int, out chan<- page) {
	defer close(out)
	q.Limit, q.Cursor, q.Desc = ReadPage(size), cursor, false
	err := sinks.Scan(ctx, store, q, sinks.ScanOptions{EventsOnly: true}, func(items []sinks.Item) error {
		for lo := 0; lo < len(items); lo += size {
			chunk := items[lo:min(lo+size, len(items))]
			// The checkpoint goes past the copies left out, too.
			cursor = sinks.CursorAfter(&chunk[len(chunk)-1], false)
			// Filtered in place: the batch keeps the chunk's own slots.
			kept := chunk[:0]
			for i := range chunk {
				copied, err := isCopy(ctx, store, &chunk[i])
				if err != nil {
					return err
				}
				if !copied {
					kept = append(kept, chunk[i])
				}
			}
			select {
			case out <- page{items: kept, skipped: len(chunk) - len(kept), next: cursor}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		select {
		case out <- page{err: fmt.Errorf("read the audit store after cursor %q: %w", cursor, err)}:
		case <-ctx.Done():
		}
	}
}

// isCopy reports whether it is a copy a replay published and a route read
// back, recorded as a version of its own: a conflicting version that
// carries ExtReplay and, without ExtReplay and ExtReplayTime, is another
// version of the same event. An event that only carries an ExtReplay of
// its own making (a producer may set any extension) is not a copy and is
// replayed like any other.
func isCopy(ctx context.Context, store sinks.Store, it *sinks.Item) (bool, error) {
	if !it.Conflict {
		return false, nil
	}
	ext := it.Event.Extensions()
	if _, ok := ext[ExtReplay]; !ok {
		return false, nil
	}
	orig := it.Event.Clone()
	for _, name := range []string{ExtReplay, ExtReplayTime} {
		if ec, ok := orig.Context.(*event.EventContextV1); ok {
			delete(ec.Extensions, name)
		} else if err := orig.Context.SetExtension(name, nil); err != nil {
			return false, nil
		}
	}
	d, err := sinks.DigestEvent(&orig)
	if err != nil {
		return false, nil
	}
	versions, err := store.Get(ctx, it.Event.Source(), it.Event.ID())
	if err != nil {
		return false, fmt.Errorf("look up the versions of event %q from %q: %w", it.Event.ID(), it.Event.Source(), err)
	}
	for i := range versions {
		if versions[i].Digest == d {
			return true, nil
		}
	}
	return false, nil
}

// ReadPage is the store page size a job reads for publish batches of size: ten
// batches a page, since a store's cost is mostly per query (ClickHouse's
// especially), up to sinks.MaxLimit. A rate-limited job's small batches
// keep its pages small too.
func ReadPage(size int) int {
	return max(size, min(10*size, sinks.MaxLimit))
}

// Count returns how many versions filter f selects: those a replay with
// the filter publishes, and the copies made by earlier replays among
// them, which it leaves out (Progress.Skipped). A sinks.VersionCounter
// answers directly; other stores are paged through.
func Count(ctx context.Context, store sinks.Store, f sinks.Query) (int64, error) {
	if c, ok := store.(sinks.VersionCounter); ok {
		n, err := c.CountVersions(ctx, f)
		if err != nil {
			return 0, fmt.Errorf("replay: count matching versions: %w", err)
		}
		return n, nil
	}
	f.Limit, f.Cursor, f.Desc, f.NoTrail = sinks.MaxLimit, "", false, true
	var n int64
	err := sinks.PageAll(ctx, store, f, func(items []sinks.Item) error {
		n += int64(len(items))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("replay: count matching versions: %w", err)
	}
	return n, nil
}

// giveUp is an event the publisher gave up on.
type giveUp struct {
	index     int // in the batch
	attempts  int
	permanent bool // refused for good, rather than retries exhausted
	err       error
}

// publish sends events to t in order with the retry policy. It returns the
// events it gave up on, and for every event of the batch how many times it
// was offered to t. It returns an error only when ctx ends.
func publish(ctx context.Context, t Target, events []bus.Event, p router.RetryPolicy) ([]giveUp, []int, error) {
	pending := make([]int, len(events))
	for i := range pending {
		pending[i] = i
	}
	tries := make([]int, len(events))
	batch := events
	var failed []giveUp
	drop := func(k int) { // pending[k] is given up; the batch shrinks
		pending = append(pending[:k:k], pending[k+1:]...)
		batch = make([]bus.Event, len(pending))
		for j, i := range pending {
			batch[j] = events[i]
		}
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		for _, i := range pending {
			tries[i]++
		}
		err := t.Publish(ctx, batch)
		if err == nil {
			return failed, tries, nil
		}
		if ctx.Err() != nil {
			return failed, tries, ctx.Err()
		}
		if pe, ok := errors.AsType[*PartialError](err); ok && pe.Index >= 0 && pe.Index < len(pending) {
			if pe.Index > 0 { // progress: the next event gets attempts of its own
				pending, batch = pending[pe.Index:], batch[pe.Index:]
				attempt, start = 1, time.Now()
			}
			// The events after the failed one were not offered.
			for _, i := range pending[1:] {
				tries[i]--
			}
			if permanent(pe.Err) {
				failed = append(failed, giveUp{pending[0], attempt, true, pe.Err})
				if drop(0); len(pending) == 0 {
					return failed, tries, nil
				}
				attempt, start = 0, time.Now()
				continue
			}
		} else if permanent(err) {
			ee, ok := errors.AsType[*bus.EventError](err)
			if !ok || ee.Index < 0 || ee.Index >= len(pending) {
				for _, i := range pending {
					failed = append(failed, giveUp{i, attempt, true, err})
				}
				return failed, tries, nil
			}
			failed = append(failed, giveUp{pending[ee.Index], attempt, true, err})
			if drop(ee.Index); len(pending) == 0 {
				return failed, tries, nil
			}
			attempt-- // the others were not refused; try them afresh
			continue
		}
		pause := retryWait(p, attempt)
		if ra, ok := cehttp.RetryAfter(err); ok {
			pause = max(pause, ra)
		}
		if attempt >= p.MaxAttempts || (p.MaxElapsed > 0 && time.Since(start)+pause > p.MaxElapsed) {
			for _, i := range pending {
				failed = append(failed, giveUp{i, attempt, false, err})
			}
			return failed, tries, nil
		}
		if err := sleep(ctx, pause); err != nil {
			return failed, tries, err
		}
	}
}

// permanent reports an error that retrying cannot cure.
func permanent(err error) bool {
	return errors.Is(err, bus.ErrInvalidEvent) || errors.Is(err, bus.ErrTooLarge) || cehttp.IsPermanent(err)
}

// backoff is the wait after failed attempt number attempt (1-based):
// InitialBackoff doubled per attempt up to MaxBackoff, varied by Jitter,
// as routes wait.
func retryWait(p router.RetryPolicy, attempt int) time.Duration {
	return backoff.Policy{Initial: p.InitialBackoff, Max: p.MaxBackoff, Jitter: p.Jitter}.Delay(attempt)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// limiter is a token bucket: rate tokens a second, at most burst saved up.
// One goroutine uses it.
type limiter struct {
	rate, burst, tokens float64
	last                time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	if rate <= 0 {
		return nil
	}
	return &limiter{rate: rate, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// wait takes n tokens, sleeping until the bucket has paid for them.
func (l *limiter) wait(ctx context.Context, n int) error {
	if l == nil {
		return nil
	}
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens -= float64(n)
	if l.tokens >= 0 {
		return nil
	}
	return sleep(ctx, time.Duration(-l.tokens/l.rate*float64(time.Second)))
}
