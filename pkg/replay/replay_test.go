package replay_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/auditbus/auditbus/sinks"
)

// TestReplayFilteredSubset stores 50,000 events across 100 partition keys,
// replays the order events of a time window to a Kafka topic (kfake) and to
// a RabbitMQ queue, and checks that every matching event arrived exactly as
// stored, with the replay extensions, in time order per key, and that no
// other event arrived.
func TestReplayFilteredSubset(t *testing.T) {
	t.Parallel()
	store, _ := history(t)

	// Events 10,000 to 24,999 by time; two types in three by prefix.
	filter := sinks.Query{From: base.Add(100 * time.Second), To: base.Add(250 * time.Second),
		Type: "com.example.order.", TypePrefix: true}
	want := make(map[string]sinks.Record)
	for i := 0; i < historyEvents; i++ {
		r := gen(i, historyKeys)
		if i >= 10000 && i < 25000 && strings.HasPrefix(r.Event.Type(), "com.example.order.") {
			want[r.Event.ID()] = r
		}
	}
	if n, err := replay.Count(context.Background(), store, filter); err != nil || n != int64(len(want)) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(want))
	}

	t.Run("kafka", func(t *testing.T) { replayToKafka(t, store, replay.Options{}, filter, want) })

	t.Run("amqp", func(t *testing.T) {
		tr := newAMQP(t)
		topic := "auditbus-test.replay." + time.Now().Format("150405.000000")
		got := subscribe(t, tr, topic) // the group's queue must exist before publishing
		m := newManager(t, store, replay.Options{})
		j, err := m.Start(context.Background(), replay.Request{Filter: filter,
			Destination: replay.TopicTarget("amqp", tr, topic), Name: "subset to rabbitmq"})
		if err != nil {
			t.Fatal(err)
		}
		j = wait(t, m, j.ID, 2*time.Minute)
		checkDone(t, j, len(want))
		distinct(t, got, len(want), time.Minute)
		checkArrived(t, j.ID, want, got.all())
		checkReplayed(t, store, filter, j.ID, "amqp:"+topic, len(want))
	})
}

// replayToKafka replays filter from store to a topic of a new kfake
// cluster and checks that want arrived, as checkArrived does.
func replayToKafka(t *testing.T, store sinks.Store, o replay.Options, filter sinks.Query, want map[string]sinks.Record) {
	t.Helper()
	brokers := newCluster(t)
	tr := newKafka(t, brokers)
	m := newManager(t, store, o)
	j, err := m.Start(context.Background(), replay.Request{Filter: filter,
		Destination: replay.TopicTarget("kafka", tr, "replayed"), Name: "subset to kafka"})
	if err != nil {
		t.Fatal(err)
	}
	j = wait(t, m, j.ID, 2*time.Minute)
	checkDone(t, j, len(want))
	checkArrived(t, j.ID, want, consumeKafka(t, brokers, "replayed", len(want), time.Minute))
	checkReplayed(t, store, filter, j.ID, "kafka:replayed", len(want))
}

// checkReplayed checks that the n versions filter selects each have one
// replayed entry of job id, to destination dest.
func checkReplayed(t *testing.T, store sinks.Store, filter sinks.Query, id, dest string, n int) {
	t.Helper()
	filter.Kind = sinks.KindReplayed
	got := versions(t, store, filter)
	bad := 0
	for _, it := range got {
		if en := entriesOf(it.Trail, sinks.KindReplayed, id); len(en) != 1 || en[0].Destination != dest || en[0].Time.IsZero() {
			if bad++; bad <= 5 {
				t.Errorf("%s: replayed entries of the job %+v, want one to %s", it.Event.ID(), en, dest)
			}
		}
	}
	if len(got) != n {
		t.Errorf("%d versions have a replayed entry, want %d", len(got), n)
	}
}

func checkDone(t *testing.T, j replay.Job, n int) {
	t.Helper()
	if j.State != replay.Done || j.Progress.Done != int64(n) || j.Progress.Failed != 0 || j.Progress.Total != int64(n) {
		t.Fatalf("job ended %s with progress %+v (error %q), want done with %d of %d", j.State, j.Progress, j.Error, n, n)
	}
}

// checkArrived compares what arrived with the stored originals: same
// attributes, extensions and data bytes, plus the replay extensions; every
// wanted event present, nothing else; per key in time order.
func checkArrived(t *testing.T, jobID string, want map[string]sinks.Record, got []bus.Event) {
	t.Helper()
	seen := make(map[string]bool, len(want))
	lastPerKey := make(map[string]int)
	dups, bad := 0, 0
	for i := range got {
		e := &got[i]
		r, ok := want[e.ID()]
		if !ok {
			t.Fatalf("event %q (type %s, time %s) arrived but does not match the filter", e.ID(), e.Type(), e.Time())
		}
		if seen[e.ID()] {
			dups++
			continue
		}
		seen[e.ID()] = true
		if msg := diff(&r.Event, e, jobID); msg != "" {
			if bad++; bad <= 5 {
				t.Errorf("event %q: %s", e.ID(), msg)
			}
		}
		key := bus.PartitionKey(e)
		n := seq(t, e.ID())
		if last, ok := lastPerKey[key]; ok && n < last {
			t.Fatalf("key %s: event %d arrived after event %d", key, n, last)
		}
		lastPerKey[key] = n
	}
	if bad > 0 {
		t.Fatalf("%d events differ from the stored ones", bad)
	}
	if len(seen) != len(want) {
		t.Fatalf("%d distinct events arrived, want %d", len(seen), len(want))
	}
	if len(lastPerKey) != historyKeys {
		t.Errorf("events of %d keys arrived, want %d", len(lastPerKey), historyKeys)
	}
	t.Logf("%d events arrived bit-exact, in order per key (%d duplicates)", len(seen), dups)
}

// diff says how a replayed copy differs from the original, or "".
func diff(orig, copy *bus.Event, jobID string) string {
	switch {
	case copy.ID() != orig.ID() || copy.Source() != orig.Source():
		return "identity changed"
	case !copy.Time().Equal(orig.Time()):
		return "time " + copy.Time().String() + ", stored " + orig.Time().String()
	case copy.Type() != orig.Type() || copy.Subject() != orig.Subject() || copy.SpecVersion() != orig.SpecVersion():
		return "type, subject or specversion changed"
	case copy.DataContentType() != orig.DataContentType() || copy.DataSchema() != orig.DataSchema():
		return "datacontenttype or dataschema changed"
	case !bytes.Equal(copy.Data(), orig.Data()):
		return "data bytes differ"
	}
	ext := copy.Extensions()
	// The SDK's Kafka binding adds where it read the record.
	delete(ext, "kafkatopic")
	delete(ext, "kafkapartition")
	delete(ext, "kafkaoffset")
	for k, v := range orig.Extensions() {
		if extString(ext[k]) != extString(v) {
			return "extension " + k + " = " + extString(ext[k]) + ", stored " + extString(v)
		}
	}
	if extString(ext[replay.ExtReplay]) != jobID {
		return "extension " + replay.ExtReplay + " = " + extString(ext[replay.ExtReplay]) + ", want the job id"
	}
	if _, err := time.Parse(time.RFC3339Nano, extString(ext[replay.ExtReplayTime])); err != nil {
		return "extension " + replay.ExtReplayTime + ": " + err.Error()
	}
	if len(ext) != len(orig.Extensions())+2 {
		return fmt.Sprintf("extensions %v, stored %v", ext, orig.Extensions())
	}
	return ""
}
