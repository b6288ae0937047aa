package replay_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/mem"
	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
)

// Replay the order events of ten seconds to a topic, at most 1,000 a second,
// and wait for the job to finish.
func ExampleManager_Start() {
	dir, _ := os.MkdirTemp("", "replay-example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	store, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	_ = fill(store, 3000, 10) // 30 seconds of history, 100 events a second

	transport := mem.New()
	defer transport.Close()
	sub, _ := transport.Subscribe(ctx, "orders-again", "late-joiner",
		func(context.Context, []bus.Message) error { return nil }, bus.SubscribeConfig{}.WithDefaults())
	defer sub.Close()

	// The job records a replayed entry for every event it publishes.
	audit := sinks.NewWriter(store, sinks.WriterOptions{})
	defer audit.Close()
	m, err := replay.NewManager(replay.Options{Dir: dir + "/replays", Store: store, Audit: audit})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	job, err := m.Start(ctx, replay.Request{
		Filter: sinks.Query{From: base.Add(10 * time.Second), To: base.Add(20 * time.Second),
			Type: "com.example.order.", TypePrefix: true},
		Destination: replay.TopicTarget("mem", transport, "orders-again"),
		Rate:        1000,
		Name:        "orders for the late joiner",
	})
	if err != nil {
		log.Fatal(err)
	}
	job, _ = m.Wait(ctx, job.ID)
	fmt.Println(job.State, job.Progress.Done, "of", job.Progress.Total)
	// Output: done 667 of 667
}
