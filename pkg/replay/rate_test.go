package replay_test

import (
	"context"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus/mem"
	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/auditbus/auditbus/sinks"
)

// TestRateLimitHolds replays 5,000 events at 1,000 events/s and checks it
// took at least 4.5 s (a lower bound only: how much longer depends on the
// machine).
func TestRateLimitHolds(t *testing.T) {
	t.Parallel()
	store, _ := history(t)
	// The user events among the first 15,000: 5,000.
	filter := sinks.Query{Type: "com.example.user.signup", To: base.Add(150 * time.Second)}
	tr := mem.New(mem.WithBufferSize(10000))
	t.Cleanup(func() { _ = tr.Close() })
	got := subscribe(t, tr, "limited")
	m := newManager(t, store, replay.Options{})
	start := time.Now()
	j, err := m.Start(context.Background(), replay.Request{Filter: filter, Rate: 1000,
		Destination: replay.TopicTarget("mem", tr, "limited")})
	if err != nil {
		t.Fatal(err)
	}
	j = wait(t, m, j.ID, time.Minute)
	took := time.Since(start)
	if j.State != replay.Done || j.Progress.Done != 5000 {
		t.Fatalf("job ended %s with %+v (error %q); want done with 5000", j.State, j.Progress, j.Error)
	}
	if took < 4500*time.Millisecond {
		t.Fatalf("5,000 events at 1,000/s took %v; the limit allows no less than 4.5s", took)
	}
	distinct(t, got, 5000, 30*time.Second)
	t.Logf("5,000 events at 1,000/s took %v (rate reported %.0f/s)", took, j.Progress.Rate)
}
