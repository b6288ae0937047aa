package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/cloudevents/sdk-go/v2/event"
)

func validEvent() bus.Event {
	e := event.New()
	e.SetID("id-1")
	e.SetSource("/test")
	e.SetType("com.example.test")
	return e
}

func TestPublishRejectsBadEvents(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(*bus.Event)
		sentinel error
		attr     string
		want     string // exact message
	}{
		{"missing type", func(e *bus.Event) { e.SetType("") }, bus.ErrInvalidEvent, "type",
			`auditbus: publish to "orders": invalid event #0 (id "id-1"): attribute "type": is required: set a non-empty type such as "com.example.order.created" with Event.SetType`},
		{"missing source", func(e *bus.Event) { e.SetSource("") }, bus.ErrInvalidEvent, "source",
			`auditbus: publish to "orders": invalid event #0 (id "id-1"): attribute "source": is required: set a URI-reference naming the producer with Event.SetSource`},
		{"blank type", func(e *bus.Event) { e.SetType("  ") }, bus.ErrInvalidEvent, "type", ""},
		{"bad dataschema", func(e *bus.Event) { e.SetDataSchema("::not a uri") }, bus.ErrInvalidEvent, "dataschema", ""},
		{"bad extension name", func(e *bus.Event) { e.SetExtension("my-ext", "v") }, bus.ErrInvalidEvent, "my-ext", ""},
		{"blank subject", func(e *bus.Event) { blank := " "; e.Context.(*event.EventContextV1).Subject = &blank }, bus.ErrInvalidEvent, "subject", ""},
		{"relative dataschema", func(e *bus.Event) { e.SetDataSchema("/relative") }, bus.ErrInvalidEvent, "dataschema", ""},
		{"specversion 0.3", func(e *bus.Event) { e.SetSpecVersion("0.3") }, bus.ErrInvalidEvent, "specversion", ""},
		{"zero event", func(e *bus.Event) { *e = bus.Event{} }, bus.ErrInvalidEvent, "specversion", ""},
		{"over 1 MiB", func(e *bus.Event) { _ = e.SetData("application/octet-stream", make([]byte, 1<<20)) }, bus.ErrTooLarge, "",
			""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bus.New(mem.New())
			defer b.Close()
			e := validEvent()
			tt.mutate(&e)
			err := b.Publish(context.Background(), "orders", e)
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("got %v, want %v", err, tt.sentinel)
			}
			var ee *bus.EventError
			if !errors.As(err, &ee) || ee.Attribute != tt.attr || ee.Topic != "orders" || ee.Op != "publish" {
				t.Fatalf("EventError %+v: want attribute %q on topic orders", ee, tt.attr)
			}
			if tt.want != "" && err.Error() != tt.want {
				t.Fatalf("message\n got: %s\nwant: %s", err, tt.want)
			}
			if tt.sentinel == bus.ErrTooLarge && !strings.Contains(err.Error(), "over the limit of 1048576 bytes") {
				t.Fatalf("message %q does not name the limit", err)
			}
		})
	}
}

func TestPublishChecksArguments(t *testing.T) {
	b := bus.New(mem.New())
	defer b.Close()
	if err := b.Publish(context.Background(), "", validEvent()); err == nil || !strings.Contains(err.Error(), "topic is empty") {
		t.Fatalf("empty topic: %v", err)
	}
	if err := b.Publish(context.Background(), "t"); err != nil {
		t.Fatalf("no events is a no-op, got %v", err)
	}
	h := func(context.Context, []bus.Message) error { return nil }
	if _, err := b.Subscribe(context.Background(), "t", "", h); err == nil || !strings.Contains(err.Error(), "consumer group is empty") {
		t.Fatalf("empty group: %v", err)
	}
	if _, err := b.Subscribe(context.Background(), "t", "g", nil); err == nil || !strings.Contains(err.Error(), "handler is nil") {
		t.Fatalf("nil handler: %v", err)
	}
}

func TestMiddlewareOrder(t *testing.T) {
	var trace []string
	pub := func(name string) bus.PublishMiddleware {
		return func(next bus.PublishFunc) bus.PublishFunc {
			return func(ctx context.Context, topic string, evs []bus.Event) error {
				trace = append(trace, name+":"+evs[0].ID())
				return next(ctx, topic, evs)
			}
		}
	}
	done := make(chan struct{})
	sub := func(name string) bus.HandlerMiddleware {
		return func(next bus.Handler) bus.Handler {
			return func(ctx context.Context, msgs []bus.Message) error {
				trace = append(trace, name)
				return next(ctx, msgs)
			}
		}
	}
	b := bus.New(mem.New(),
		bus.WithPublishMiddleware(pub("p1"), pub("p2")),
		bus.WithHandlerMiddleware(sub("h1"), sub("h2")))
	defer b.Close()
	_, err := b.Subscribe(context.Background(), "t", "g", func(context.Context, []bus.Message) error {
		trace = append(trace, "handler")
		close(done)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), "t", validEvent()); err != nil {
		t.Fatal(err)
	}
	<-done
	// Publish middleware sees the event after validation and defaults.
	if got := strings.Join(trace, " "); got != "p1:id-1 p2:id-1 h1 h2 handler" {
		t.Fatalf("order: %s", got)
	}
}

func TestDeliver(t *testing.T) {
	cfg := bus.SubscribeConfig{MaxAttempts: 3, RetryBackoff: time.Millisecond}.WithDefaults()
	msgs := func() []bus.Message {
		return []bus.Message{{Event: validEvent(), Topic: "t", Attempt: 1}}
	}
	failing := func(n int) (bus.Handler, *[]int) {
		var seen []int
		return func(_ context.Context, m []bus.Message) error {
			seen = append(seen, m[0].Attempt)
			if len(seen) <= n {
				return errors.New("boom")
			}
			return nil
		}, &seen
	}
	t.Run("succeeds after retries", func(t *testing.T) {
		h, seen := failing(2)
		out, failed, err := bus.Deliver(context.Background(), nil, cfg, h, msgs())
		if out != bus.Acked || failed != 2 || err != nil || fmt.Sprint(*seen) != "[1 2 3]" {
			t.Fatalf("outcome %v failed %d err %v attempts %v", out, failed, err, *seen)
		}
	})
	t.Run("exhausted", func(t *testing.T) {
		h, _ := failing(10)
		out, failed, err := bus.Deliver(context.Background(), nil, cfg, h, msgs())
		if out != bus.Exhausted || failed != 3 || !errors.Is(err, bus.ErrMaxAttempts) {
			t.Fatalf("outcome %v failed %d err %v", out, failed, err)
		}
		want := `auditbus: consume "t": handler failed on every attempt: batch of 1 from event id "id-1" failed 3 attempts; last error: boom`
		if err.Error() != want {
			t.Fatalf("message\n got: %s\nwant: %s", err, want)
		}
	})
	t.Run("exhausted, taken over", func(t *testing.T) {
		h, _ := failing(10)
		c := cfg
		var got error
		c.OnExhausted = func(_ context.Context, m []bus.Message, err error) error { got = err; return nil }
		out, _, err := bus.Deliver(context.Background(), nil, c, h, msgs())
		if out != bus.Acked || err != nil || got == nil || got.Error() != "boom" {
			t.Fatalf("outcome %v err %v OnExhausted got %v", out, err, got)
		}
	})
	t.Run("exhausted, take-over fails", func(t *testing.T) {
		h, _ := failing(10)
		c := cfg
		c.OnExhausted = func(context.Context, []bus.Message, error) error { return errors.New("dead letter down") }
		if out, _, err := bus.Deliver(context.Background(), nil, c, h, msgs()); out != bus.Exhausted || !errors.Is(err, bus.ErrMaxAttempts) {
			t.Fatalf("outcome %v err %v", out, err)
		}
	})
	t.Run("continues the attempt count", func(t *testing.T) {
		h, seen := failing(10)
		m := msgs()
		m[0].Attempt = 3
		if out, failed, _ := bus.Deliver(context.Background(), nil, cfg, h, m); out != bus.Exhausted || failed != 1 || fmt.Sprint(*seen) != "[3]" {
			t.Fatalf("outcome %v failed %d attempts %v", out, failed, *seen)
		}
	})
	t.Run("stop during backoff", func(t *testing.T) {
		h, _ := failing(10)
		stop := make(chan struct{})
		close(stop)
		c := cfg
		c.RetryBackoff, c.MaxRetryBackoff = time.Hour, time.Hour
		if out, failed, err := bus.Deliver(context.Background(), stop, c, h, msgs()); out != bus.Stopped || failed != 1 || err != nil {
			t.Fatalf("outcome %v failed %d err %v", out, failed, err)
		}
	})
	t.Run("cancelled handler is a stop, not an attempt used up", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		c := cfg
		c.MaxAttempts = 1
		h := func(ctx context.Context, _ []bus.Message) error { return ctx.Err() }
		if out, _, err := bus.Deliver(ctx, nil, c, h, msgs()); out != bus.Stopped || err != nil {
			t.Fatalf("outcome %v err %v", out, err)
		}
	})
}

func TestBackoff(t *testing.T) {
	c := bus.SubscribeConfig{RetryBackoff: 100 * time.Millisecond, MaxRetryBackoff: time.Second}.WithDefaults()
	for attempt, base := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 50: time.Second} {
		for range 100 {
			d := c.Backoff(attempt)
			if d < base*8/10 || d > base*12/10 {
				t.Fatalf("attempt %d: backoff %v outside %v ±20%%", attempt, d, base)
			}
		}
	}
}

func TestSubscribeDefaults(t *testing.T) {
	c := bus.SubscribeConfig{MaxWait: -1}.WithDefaults()
	if c.MaxBatch != bus.DefaultMaxBatch || c.MaxAttempts != bus.DefaultMaxAttempts || c.MaxWait != 0 ||
		c.RetryBackoff != bus.DefaultRetryBackoff || c.MaxRetryBackoff != bus.DefaultMaxRetryBackoff {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestEventSize(t *testing.T) {
	e := validEvent()
	base := bus.EventSize(&e)
	_ = e.SetData("application/octet-stream", make([]byte, 1000))
	e.SetExtension("ext", "abc")
	if got := bus.EventSize(&e); got != base+1000+len("application/octet-stream")+len("ext")+len("abc") {
		t.Fatalf("size %d from base %d", got, base)
	}
	var zero bus.Event
	if bus.EventSize(&zero) != 0 || bus.PartitionKey(&zero) != "" {
		t.Fatal("zero event must not panic and has size 0")
	}
	e.SetExtension(bus.ExtPartitionKey, int32(7))
	if k := bus.PartitionKey(&e); k != "7" {
		t.Fatalf("partition key %q", k)
	}
}

func TestValidate(t *testing.T) {
	e := validEvent()
	if err := bus.Validate(&e); err != nil {
		t.Fatalf("valid event: %v", err)
	}
	e.Context.(*event.EventContextV1).ID = ""
	err := bus.Validate(&e)
	if !errors.Is(err, bus.ErrInvalidEvent) || err.Error() != `auditbus: validate: invalid event: attribute "id": is required` {
		t.Fatalf("no id: %v", err)
	}
	e = validEvent()
	e.SetType("")
	if err := bus.Validate(&e); err == nil || !strings.Contains(err.Error(), `invalid event (id "id-1"): attribute "type"`) {
		t.Fatalf("no type: %v", err)
	}
}
