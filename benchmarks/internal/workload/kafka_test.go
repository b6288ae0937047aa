package workload

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// TestKafkaSystems runs each Kafka system on a small workload against an
// in-process kfake broker, as the bench-kafka harness does.
func TestKafkaSystems(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := Kafka{Brokers: c.ListenAddrs(), Partitions: 4}
	for _, s := range []Paced{AuditbusKafka(k), RawKafka(k), WatermillKafka(k)} {
		t.Run(s.Name, func(t *testing.T) {
			// 1001 events in batches of 100 leaves a short last batch.
			w, err := New(Config{Events: 1001, Size: 64, Batch: 100})
			if err != nil {
				t.Fatal(err)
			}
			// once sets up, runs, verifies and closes the trial, as the
			// harness does.
			res, err := s.once(w)
			if err != nil {
				t.Fatal(err)
			}
			if res.Events != w.Events || res.Elapsed <= 0 {
				t.Errorf("once = %+v, want %d events in a positive time", res, w.Events)
			}
		})
	}
}
