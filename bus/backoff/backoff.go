// Package backoff computes the waits of exponential backoff with jitter,
// the one formula every retry and reconnect loop in auditbus uses: the
// bus's handler retries and AMQP reconnects, a route's deliveries, replay
// jobs and the audit writer's flushes.
package backoff

import (
	"math/rand/v2"
	"time"
)

// DefaultJitter is the jitter of the loops that do not let users choose
// it: each wait varies by up to 20% either way, so that processes that
// failed together do not retry together.
const DefaultJitter = 0.2

// Policy is exponential backoff with jitter. The zero Policy waits 0.
type Policy struct {
	// Initial is the wait after the first failure.
	Initial time.Duration
	// Max bounds the doubled wait before jitter; 0 means no bound but
	// the largest time.Duration.
	Max time.Duration
	// Jitter, from 0 to 1, is the fraction by which each wait varies
	// either way, uniformly. Values outside 0..1 are clamped.
	Jitter float64
}

// Delay returns the wait after failed attempt number attempt (1-based):
// Initial doubled for each attempt after the first, up to Max, then varied
// by Jitter. It is never negative; attempts below 1 count as 1.
func (p Policy) Delay(attempt int) time.Duration {
	if p.Initial <= 0 {
		return 0
	}
	limit := p.Max
	if limit <= 0 {
		limit = time.Duration(1<<63 - 1)
	}
	d := min(p.Initial, limit)
	for i := 1; i < attempt && d < limit; i++ {
		if d > limit/2 {
			d = limit
			break
		}
		d *= 2
	}
	j := min(max(p.Jitter, 0), 1)
	if j > 0 {
		d += time.Duration((rand.Float64()*2 - 1) * j * float64(d))
	}
	return max(d, 0)
}
