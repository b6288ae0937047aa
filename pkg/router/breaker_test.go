package router

import (
	"errors"
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	now := time.Unix(0, 0)
	var changes []bool
	b := &breaker{policy: BreakerPolicy{Failures: 2, OpenFor: time.Second}, now: func() time.Time { return now },
		onChange: func(open bool) { changes = append(changes, open) }}
	fail := errors.New("down")
	for i := range 2 {
		if ok, _ := b.allow(); !ok {
			t.Fatalf("attempt %d refused while closed", i)
		}
		b.done(fail)
	}
	if ok, wait := b.allow(); ok || wait != time.Second {
		t.Fatalf("after 2 failures: allow %v, wait %v; want refused for 1s", ok, wait)
	}
	now = now.Add(time.Second)
	if ok, _ := b.allow(); !ok {
		t.Fatal("no trial after OpenFor")
	}
	if ok, _ := b.allow(); ok {
		t.Fatal("a second trial while the first is in flight")
	}
	if wait := b.retryIn(); wait <= 0 {
		t.Fatalf("retryIn %v while a trial is in flight, want a pause", wait)
	}
	b.release() // a refused event: neither success nor failure
	if ok, _ := b.allow(); !ok {
		t.Fatal("no trial after a released one")
	}
	b.release()
	// Asking how long to wait does not take the trial: a waiter that asked
	// and then found the trial gone would leave the breaker open for good.
	for range 2 {
		if wait := b.retryIn(); wait != 0 {
			t.Fatalf("retryIn %v with no trial in flight, want 0", wait)
		}
	}
	if ok, _ := b.allow(); !ok {
		t.Fatal("no trial after retryIn")
	}
	b.done(nil)
	if ok, _ := b.allow(); !ok {
		t.Fatal("refused after a successful trial")
	}
	if len(changes) != 2 || !changes[0] || changes[1] {
		t.Fatalf("state changes %v, want [open closed]", changes)
	}
}
