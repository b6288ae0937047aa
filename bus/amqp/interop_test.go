package amqp_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/cloudevents/sdk-go/v2/event"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// needTool returns the path of a command-line tool the test drives, failing
// under CI=true when it is missing and skipping otherwise.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		msg := name + " not found; `make test` installs it (deploy/test-services.sh up)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// TestAMQPToolsPublish: an event written by Debian's amqp-publish
// (rabbitmq-c), with ce_ and ce- headers, is decoded by our subscriber.
func TestAMQPToolsPublish(t *testing.T) {
	publish := needTool(t, "amqp-publish")
	b := bus.New(newTransport(t, testConfig(t)))
	topic := uniqueName("amqp-tools")
	got := make(chan bus.Event, 1)
	if _, err := b.Subscribe(context.Background(), topic, "g", func(_ context.Context, msgs []bus.Message) error {
		got <- msgs[0].Event.Clone()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// rabbitmq-c reads the path "/" as the vhost "", not "/": leave it out.
	out, err := exec.Command(publish, "--url", strings.TrimSuffix(brokerURL(t), "/"), "--exchange", topic, "--routing-key", "com.example.tool.ping",
		"--persistent", "--content-type", "application/json",
		"-H", "ce_specversion: 1.0", "-H", "ce_id: tool-1", "-H", "ce_source: /amqp-tools",
		"-H", "ce_type: com.example.tool.ping", "-H", "ce-subject: host-7",
		"-H", "ce_time: 2026-11-22T10:00:00.5Z", "-H", "ce_traceid: abc123",
		"--body", `{"ok":true}`).CombinedOutput()
	if err != nil {
		t.Fatalf("amqp-publish: %v: %s", err, out)
	}
	var e bus.Event
	select {
	case e = <-got:
	case <-time.After(time.Minute):
		t.Fatal("the event from amqp-publish never arrived")
	}
	want := time.Date(2026, 11, 22, 10, 0, 0, 5e8, time.UTC)
	if e.ID() != "tool-1" || e.Source() != "/amqp-tools" || e.Type() != "com.example.tool.ping" || e.Subject() != "host-7" ||
		!e.Time().Equal(want) || e.DataContentType() != "application/json" || string(e.Data()) != `{"ok":true}` ||
		e.Extensions()["traceid"] != "abc123" {
		t.Fatalf("decoded %v", e)
	}
}

// TestPlainConsumer: a plain amqp091 consumer, bound by a type pattern,
// reads our headers, properties and body as the package documents.
func TestPlainConsumer(t *testing.T) {
	tr := newTransport(t, testConfig(t))
	topic := uniqueName("plain")
	tr.c.topic(topic)
	ch := admin(t)
	if err := ch.ExchangeDeclare(topic, amqp091.ExchangeTopic, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, "com.example.order.#", topic, false, nil); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	order := event.New()
	order.SetID("order-1")
	order.SetSource("/shop")
	order.SetType("com.example.order.created")
	order.SetTime(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	order.SetExtension("partitionkey", "customer-9")
	_ = order.SetData(event.ApplicationJSON, map[string]int{"total": 5})
	other := order.Clone()
	other.SetID("invoice-1")
	other.SetType("com.example.invoice.created")
	b := bus.New(tr)
	// The invoice matches no binding of the plain consumer's: unroutable.
	if err := b.Publish(context.Background(), topic, order, other); err == nil {
		t.Fatal("publishing an event no queue binds went through")
	}
	var d amqp091.Delivery
	select {
	case d = <-deliveries:
	case <-time.After(time.Minute):
		t.Fatal("the plain consumer got nothing")
	}
	want := map[string]string{
		"cloudEvents:specversion": "1.0", "cloudEvents:id": "order-1", "cloudEvents:source": "/shop",
		"cloudEvents:type": "com.example.order.created", "cloudEvents:time": "2026-11-22T10:00:00Z",
		"cloudEvents:partitionkey": "customer-9",
	}
	for k, v := range want {
		if d.Headers[k] != v {
			t.Errorf("header %s = %v, want %q", k, d.Headers[k], v)
		}
	}
	if d.RoutingKey != "com.example.order.created" || d.ContentType != "application/json" || d.MessageId != "order-1" ||
		d.DeliveryMode != amqp091.Persistent || !bytes.Equal(d.Body, []byte(`{"total":5}`)) {
		t.Errorf("delivery: routing key %q, content type %q, message id %q, delivery mode %d, body %q",
			d.RoutingKey, d.ContentType, d.MessageId, d.DeliveryMode, d.Body)
	}
	select {
	case d := <-deliveries:
		t.Errorf("the plain consumer also got %s, which its binding does not match", d.RoutingKey)
	default:
	}
}
