package sqlite

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// TestCheckpointsKeepTheLogBounded appends without pause, so the writer
// never waits for a fully copied log, and checks that the log still starts
// over instead of growing with everything written.
func TestCheckpointsKeepTheLogBounded(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Small thresholds: a checkpoint every 64 KiB appended, a restart past
	// 64 frames (256 KiB of 4 KiB pages), appends held 256 KiB ahead.
	s.wmu.Lock()
	s.ckpt.stop()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		s.wmu.Unlock()
		t.Fatal(err)
	}
	s.ckpt = startCheckpointer(s.db, conn, 64<<10, 64, 256<<10)
	s.wmu.Unlock()

	data := make([]byte, 1024)
	const appends, per = 120, 50
	var maxWAL int64
	for n := range appends {
		recs := make([]sinks.Record, per)
		for i := range recs {
			e := event.New()
			e.SetID(fmt.Sprintf("%d-%d", n, i))
			e.SetSource("urn:wal")
			e.SetType("t")
			e.SetTime(time.Unix(int64(n*per+i), 0))
			e.DataEncoded = data
			recs[i] = sinks.Record{Event: e, Entries: []sinks.Entry{{Kind: sinks.KindReceived, Transport: "mem", Offset: int64(n*per + i)}}}
		}
		if _, err := s.Append(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(s.path + "-wal"); err == nil {
			maxWAL = max(maxWAL, fi.Size())
		}
	}
	written := int64(appends * per * len(data))
	t.Logf("%d KiB written, log at most %d KiB", written>>10, maxWAL>>10)
	if maxWAL > written/3 {
		t.Errorf("the log grew to %d KiB of %d KiB written: it does not start over", maxWAL>>10, written>>10)
	}
}
