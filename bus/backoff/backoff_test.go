package backoff_test

import (
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus/backoff"
)

func TestDelayDoublesUpToMax(t *testing.T) {
	p := backoff.Policy{Initial: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := p.Delay(i + 1); got != w*time.Millisecond {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if got := p.Delay(0); got != 100*time.Millisecond {
		t.Errorf("Delay(0) = %v, want the first wait", got)
	}
}

func TestDelayJitterStaysInBounds(t *testing.T) {
	p := backoff.Policy{Initial: time.Second, Max: 8 * time.Second, Jitter: 0.2}
	lo, hi := time.Duration(1<<63-1), time.Duration(0)
	for range 10000 {
		d := p.Delay(3) // 4 s before jitter
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 3200*time.Millisecond || hi > 4800*time.Millisecond {
		t.Fatalf("Delay(3) ranged %v..%v, want within 3.2s..4.8s", lo, hi)
	}
	if hi-lo < time.Second { // 10,000 draws cover most of the 1.6 s range
		t.Fatalf("Delay(3) ranged only %v..%v: no jitter", lo, hi)
	}
}

func TestDelayEdges(t *testing.T) {
	for _, c := range []struct {
		name string
		p    backoff.Policy
		n    int
		want time.Duration
	}{
		{"zero policy", backoff.Policy{}, 3, 0},
		{"negative initial", backoff.Policy{Initial: -time.Second}, 1, 0},
		{"no max, huge attempt", backoff.Policy{Initial: time.Hour}, 1000, time.Duration(1<<63 - 1)},
		{"initial above max", backoff.Policy{Initial: time.Minute, Max: time.Second}, 1, time.Second},
		{"jitter above 1 is clamped, never negative", backoff.Policy{Initial: time.Second, Jitter: 5}, 1, -1},
	} {
		got := c.p.Delay(c.n)
		if c.want >= 0 && got != c.want {
			t.Errorf("%s: Delay(%d) = %v, want %v", c.name, c.n, got, c.want)
		}
		if got < 0 {
			t.Errorf("%s: Delay(%d) = %v, negative", c.name, c.n, got)
		}
	}
}
