package bus_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/auditbus/auditbus/bus"
)

func TestParseTraceContext(t *testing.T) {
	const good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, c := range []struct {
		name, parent, state string
		wantErr             bool
		wantState           string
	}{
		{name: "valid", parent: good, state: "a=1,b=2", wantState: "a=1,b=2"},
		{name: "empty", parent: ""},
		{name: "later version with more fields", parent: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"},
		{name: "bad tracestate dropped", parent: good, state: "not a list ==", wantState: ""},
		{name: "short", parent: good[:54], wantErr: true},
		{name: "version 00 too long", parent: good + "-x", wantErr: true},
		{name: "version ff", parent: "ff" + good[2:], wantErr: true},
		{name: "upper-case hex", parent: "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", wantErr: true},
		{name: "bad hex", parent: "00-4bf92f3577b34da6a3ce929d0e0exyzw-00f067aa0ba902b7-01", wantErr: true},
		{name: "zero trace id", parent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01", wantErr: true},
		{name: "zero parent id", parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", wantErr: true},
		{name: "bad separators", parent: "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc, err := bus.ParseTraceContext(c.parent, c.state)
			if c.wantErr {
				if !errors.Is(err, bus.ErrBadTraceContext) || sc.IsValid() {
					t.Fatalf("ParseTraceContext(%q) = %v, %v; want an invalid context and ErrBadTraceContext", c.parent, sc, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTraceContext(%q): %v", c.parent, err)
			}
			if c.parent == "" {
				if sc.IsValid() {
					t.Fatalf("empty traceparent gave %v", sc)
				}
				return
			}
			if !sc.IsValid() || !sc.IsRemote() || !sc.IsSampled() {
				t.Fatalf("ParseTraceContext(%q) = %v; want valid, remote, sampled", c.parent, sc)
			}
			if got := sc.TraceState().String(); got != c.wantState {
				t.Errorf("tracestate = %q, want %q", got, c.wantState)
			}
			if c.parent == good && bus.FormatTraceParent(sc) != good {
				t.Errorf("FormatTraceParent = %q, want %q", bus.FormatTraceParent(sc), good)
			}
		})
	}
}

func ExampleParseTraceContext() {
	sc, err := bus.ParseTraceContext("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "")
	fmt.Println(sc.TraceID(), sc.SpanID(), err)
	_, err = bus.ParseTraceContext("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "")
	fmt.Println(errors.Is(err, bus.ErrBadTraceContext))
	// Output:
	// 4bf92f3577b34da6a3ce929d0e0e4736 00f067aa0ba902b7 <nil>
	// true
}
