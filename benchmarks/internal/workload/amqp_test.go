package workload

import (
	"context"
	"os"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// TestAMQPSystems runs each RabbitMQ system on a small workload against the
// broker `make test` starts (deploy/test-services.sh); without one it fails
// under CI=true and skips otherwise.
func TestAMQPSystems(t *testing.T) {
	c := AMQP{URL: "amqp://guest:guest@127.0.0.1:5672/", Window: 64, Prefetch: 50, Publishers: 2}
	conn, err := amqp091.DialConfig(c.URL, amqp091.Config{Dial: amqp091.DefaultDial(5 * time.Second)})
	if err != nil {
		msg := "RabbitMQ not reachable at " + c.URL + " (" + err.Error() + "); `make test` starts one"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	_ = conn.Close()
	for _, s := range []Paced{AuditbusAMQP(c), RawAMQP(c), WatermillAMQP(c, false), WatermillAMQP(c, true)} {
		t.Run(s.Name, func(t *testing.T) {
			w, err := New(Config{Events: 1001, Size: 64, Batch: 100})
			if err != nil {
				t.Fatal(err)
			}
			tr, err := s.Setup(w)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := tr.RunPaced(ctx, s.Pacing)
			if err != nil {
				t.Fatal(err)
			}
			if res.Events != w.Events || res.Elapsed <= 0 {
				t.Errorf("RunPaced = %+v, want %d events in a positive time", res, w.Events)
			}
			if err := tr.Verify(); err != nil {
				t.Error(err)
			}
			if err := tr.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}
