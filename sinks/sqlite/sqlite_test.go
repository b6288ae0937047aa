package sqlite_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sinktest"
	"github.com/auditbus/auditbus/sinks/sqlite"
	"github.com/cloudevents/sdk-go/v2/event"
)

func open(t testing.TB, dir string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	sinktest.TestStore(t, sinktest.Features{
		Reopen: func(t *testing.T, s sinks.Store) sinks.Store {
			dir := s.(*sqlite.Store).Dir()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, dir)
		},
		OpenLog: func(t *testing.T, s sinks.Store, log string) sinks.Store {
			o, err := sqlite.Open(context.Background(), s.(*sqlite.Store).Dir(), sqlite.Options{Log: log})
			if err != nil {
				t.Fatal(err)
			}
			return o
		},
	}, func(t *testing.T) sinks.Store { return open(t, t.TempDir()) })
}

// TestAppendIsAtomic: a record that cannot be encoded, past the first
// chunk of a batch, fails the whole Append with an error naming it, and
// none of the batch is stored.
func TestAppendIsAtomic(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	recs := make([]sinks.Record, 300)
	for i := range recs {
		e := event.New()
		e.SetID(fmt.Sprintf("a-%d", i))
		e.SetSource("urn:atomic")
		e.SetType("t")
		e.SetTime(time.Unix(int64(i), 0))
		recs[i] = sinks.Record{Event: e, Entries: []sinks.Entry{{Kind: sinks.KindReceived, Transport: "mem", Offset: int64(i)}}}
	}
	recs[250].Event = event.Event{} // no context: the event cannot be encoded
	_, err := s.Append(context.Background(), recs)
	if err == nil || !strings.Contains(err.Error(), "record 251 of 300") || !strings.Contains(err.Error(), s.String()) {
		t.Fatalf("Append with an unencodable record: %v", err)
	}
	p, err := s.Query(context.Background(), sinks.Query{Source: "urn:atomic"})
	if err != nil || len(p.Items) != 0 {
		t.Fatalf("after the failed Append: %d versions stored, %v", len(p.Items), err)
	}
	if ls, err := s.Logs(context.Background()); err != nil || len(ls) != 0 {
		t.Fatalf("after the failed Append: logs %+v, %v", ls, err)
	}
	res, err := s.Append(context.Background(), recs[:250])
	if err != nil || res.Versions != 250 {
		t.Fatalf("the good records alone: %+v, %v", res, err)
	}
}

func TestOpenRejectsBadLogName(t *testing.T) {
	_, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{Log: "no spaces"})
	if err == nil || !strings.Contains(err.Error(), "no spaces") {
		t.Fatalf("Open with a bad log name: %v", err)
	}
}
