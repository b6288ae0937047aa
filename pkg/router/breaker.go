package router

import (
	"errors"
	"sync"
	"time"
)

// errCircuitOpen is the failure of an attempt the breaker did not let
// through.
var errCircuitOpen = errors.New("circuit breaker open: the destination failed repeatedly; waiting before the next trial")

// breaker is a destination's circuit breaker. After Failures consecutive
// failures it opens: attempts fail at once without touching the
// destination. After OpenFor it lets one trial through (half-open); the
// trial's success closes it, its failure opens it again.
type breaker struct {
	policy BreakerPolicy
	now    func() time.Time
	// onChange reports the breaker opening (true) or closing (false).
	onChange func(open bool)

	mu       sync.Mutex
	failures int
	openedAt time.Time // zero while closed
	trial    bool      // a half-open trial is in flight
}

// allow reports whether an attempt may go to the destination now, and if
// not, how long until the next trial may.
// An allowed attempt must be followed by done or release.
func (b *breaker) allow() (bool, time.Duration) {
	if b.policy.Failures <= 0 {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	wait := b.waitLocked()
	if wait == 0 && !b.openedAt.IsZero() {
		b.trial = true
	}
	return wait == 0, wait
}

// retryIn is how long until an attempt may be allowed, without taking the
// half-open trial as allow does.
func (b *breaker) retryIn() time.Duration {
	if b.policy.Failures <= 0 {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waitLocked()
}

func (b *breaker) waitLocked() time.Duration {
	if b.openedAt.IsZero() {
		return 0
	}
	if wait := b.openedAt.Add(b.policy.OpenFor).Sub(b.now()); wait > 0 {
		return wait
	}
	if b.trial {
		// Someone else's trial is in flight; check again shortly.
		return min(b.policy.OpenFor, 100*time.Millisecond)
	}
	return 0
}

// release ends an attempt without counting it either way (the event was
// refused for what it is, not because the destination is down).
func (b *breaker) release() {
	b.mu.Lock()
	b.trial = false
	b.mu.Unlock()
}

// done records an attempt's result.
func (b *breaker) done(err error) {
	if b.policy.Failures <= 0 {
		return
	}
	b.mu.Lock()
	wasOpen := !b.openedAt.IsZero()
	b.trial = false
	if err == nil {
		b.failures = 0
		b.openedAt = time.Time{}
	} else {
		b.failures++
		if wasOpen || b.failures >= b.policy.Failures {
			b.openedAt = b.now()
		}
	}
	isOpen := !b.openedAt.IsZero()
	b.mu.Unlock()
	if isOpen != wasOpen && b.onChange != nil {
		b.onChange(isOpen)
	}
}
