package kafka_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/kafka"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	kafkago "github.com/segmentio/kafka-go"
)

// interopWait bounds every wait of these tests; they pass in well under a
// second each when things work.
const interopWait = 30 * time.Second

// interopEvent has every CloudEvents attribute set, an extension and a
// partition key, so that each test checks all of them cross the wire.
func interopEvent(id string) bus.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("https://example.com/orders")
	e.SetType("com.example.order.created")
	e.SetSubject("order-42")
	e.SetTime(time.Date(2026, 11, 22, 10, 0, 0, 5e8, time.UTC))
	e.SetDataSchema("https://example.com/schemas/order")
	_ = e.SetData(event.ApplicationJSON, []byte(`{"order":42}`))
	e.SetExtension("myext", "hello")
	e.SetExtension(bus.ExtPartitionKey, "customer-7")
	return e
}

// checkEvent reports every attribute, extension and data byte of want that
// got lacks or has otherwise. Extensions are compared in their canonical
// string form, the only form a Kafka header carries; extensions got has on
// top of want's (the SDK adds kafkaoffset and the like) are allowed.
func checkEvent(t *testing.T, got, want *bus.Event) {
	t.Helper()
	type attr struct{ name, got, want string }
	attrs := []attr{
		{"specversion", got.SpecVersion(), want.SpecVersion()},
		{"id", got.ID(), want.ID()},
		{"source", got.Source(), want.Source()},
		{"type", got.Type(), want.Type()},
		{"subject", got.Subject(), want.Subject()},
		{"time", types.FormatTime(got.Time()), types.FormatTime(want.Time())},
		{"dataschema", got.DataSchema(), want.DataSchema()},
		{"datacontenttype", got.DataContentType(), want.DataContentType()},
		{"data", string(got.Data()), string(want.Data())},
	}
	for name, v := range want.Extensions() {
		g, _ := types.Format(got.Extensions()[name])
		w, _ := types.Format(v)
		attrs = append(attrs, attr{"extension " + name, g, w})
	}
	for _, a := range attrs {
		if a.got != a.want {
			t.Errorf("event %q: %s = %q, want %q", want.ID(), a.name, a.got, a.want)
		}
	}
}

// await returns the next value from ch, failing the test if none comes in
// interopWait.
func await[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(interopWait)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
	}
	t.Fatalf("no %s within %v", what, interopWait)
	var zero T
	return zero
}

// subscribe consumes topic through a Bus over tr and passes on every message
// it is handed; the events are cloned since the transport reuses their data.
func subscribe(t *testing.T, tr *kafka.Transport, topic string) <-chan bus.Message {
	t.Helper()
	got := make(chan bus.Message, 16)
	_, err := bus.New(tr).Subscribe(t.Context(), topic, "interop", func(_ context.Context, msgs []bus.Message) error {
		for _, m := range msgs {
			m.Event = m.Event.Clone()
			got <- m
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// needKcat returns kcat's path: a missing kcat fails the test under
// CI=true and skips it otherwise.
func needKcat(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		msg := "kcat not found; `make test` installs it (deploy/test-services.sh up)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// kcat runs kcat with args and stdin and returns what it printed on stdout.
func kcat(t *testing.T, path, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), interopWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

// kcatEventHeaders are interopEvent's attributes as kcat -H arguments, in
// binary mode.
func kcatEventHeaders(id string) []string {
	return []string{
		"-H", "ce_specversion=1.0", "-H", "ce_id=" + id,
		"-H", "ce_type=com.example.order.created", "-H", "ce_source=https://example.com/orders",
		"-H", "ce_subject=order-42", "-H", "ce_time=2026-11-22T10:00:00.5Z",
		"-H", "ce_dataschema=https://example.com/schemas/order",
		"-H", "content-type=application/json", "-H", "ce_myext=hello",
	}
}

// TestKcatProduce: an event that kcat (librdkafka) writes in binary mode,
// with the partition key as the message key, is decoded by our subscriber
// with every attribute, the extension and the data.
func TestKcatProduce(t *testing.T) {
	path := needKcat(t)
	brokers := newCluster(t)
	got := subscribe(t, newTransport(t, brokers), "kcat-in")
	args := append([]string{"-P", "-b", strings.Join(brokers, ","), "-t", "kcat-in", "-k", "customer-7"}, kcatEventHeaders("kcat-1")...)
	kcat(t, path, `{"order":42}`+"\n", args...)
	m := await(t, got, "event from kcat")
	want := interopEvent("kcat-1")
	checkEvent(t, &m.Event, &want)
}

// TestKcatConsume: kcat reads what our publisher writes in binary mode: the
// partition key as the message key, every attribute and extension in a ce_
// header, content-type and the data as the value.
func TestKcatConsume(t *testing.T) {
	path := needKcat(t)
	brokers := newCluster(t)
	e := interopEvent("bus-1")
	if err := bus.New(newTransport(t, brokers)).Publish(t.Context(), "kcat-out", e); err != nil {
		t.Fatal(err)
	}
	out := kcat(t, path, "", "-C", "-b", strings.Join(brokers, ","), "-t", "kcat-out", "-o", "beginning", "-e", "-q",
		"-f", `%k %h %s\n`)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("kcat printed %d lines, want 1:\n%s", len(lines), out)
	}
	fields := strings.SplitN(lines[0], " ", 3)
	if len(fields) != 3 {
		t.Fatalf("kcat line %q: want key, headers and value", lines[0])
	}
	key, value := fields[0], fields[2]
	headers := map[string]string{}
	for _, kv := range strings.Split(fields[1], ",") {
		k, v, _ := strings.Cut(kv, "=")
		headers[k] = v
	}
	if key != "customer-7" || value != `{"order":42}` {
		t.Errorf("key %q and value %q, want customer-7 and {\"order\":42}", key, value)
	}
	want := map[string]string{
		"ce_specversion": "1.0", "ce_id": "bus-1", "ce_source": "https://example.com/orders",
		"ce_type": "com.example.order.created", "ce_subject": "order-42", "ce_time": "2026-11-22T10:00:00.5Z",
		"ce_dataschema": "https://example.com/schemas/order", "ce_partitionkey": "customer-7",
		"ce_myext": "hello", "content-type": "application/json",
	}
	for k, v := range want {
		if headers[k] != v {
			t.Errorf("header %s = %q, want %q (all headers: %s)", k, headers[k], v, fields[1])
		}
	}
}

// TestKcatPoison: a plain message without ce_ headers, written by kcat,
// reaches Config.Poison with a reason and is committed; an event written
// after it to the same partition is delivered.
func TestKcatPoison(t *testing.T) {
	path := needKcat(t)
	brokers := newCluster(t)
	cfg := testConfig(brokers)
	poisoned := make(chan kafka.Poison, 4)
	cfg.Poison = func(_ context.Context, p kafka.Poison) error {
		poisoned <- p
		return nil
	}
	tr, err := kafka.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	got := subscribe(t, tr, "kcat-poison")

	// Both into partition 0, so the event can only arrive if consumption
	// went on past the poison.
	b := strings.Join(brokers, ",")
	kcat(t, path, "plain audit line\n", "-P", "-b", b, "-t", "kcat-poison", "-p", "0")
	kcat(t, path, `{"order":42}`+"\n", append([]string{"-P", "-b", b, "-t", "kcat-poison", "-p", "0", "-k", "customer-7"}, kcatEventHeaders("after-poison")...)...)

	p := await(t, poisoned, "poison callback")
	if p.Reason == nil || !strings.Contains(p.Reason.Error(), "not a CloudEvent") {
		t.Errorf("poison reason %v, want one saying it is not a CloudEvent", p.Reason)
	}
	if p.Group != "interop" || p.Message.Topic != "kcat-poison" || p.Message.Partition != 0 || p.Message.Offset != 0 ||
		string(p.Message.Value) != "plain audit line" {
		t.Errorf("poison group %q, message %s/%d@%d %q; want interop, kcat-poison/0@0 \"plain audit line\"",
			p.Group, p.Message.Topic, p.Message.Partition, p.Message.Offset, p.Message.Value)
	}
	m := await(t, got, "event after the poison")
	want := interopEvent("after-poison")
	checkEvent(t, &m.Event, &want)
	if m.Partition != 0 || m.Offset != 1 {
		t.Errorf("event at partition %d offset %d, want 0 and 1", m.Partition, m.Offset)
	}
	eventually(t, "offset 2 committed on partition 0", func() bool {
		return committedOffset(t, brokers, "interop", "kcat-poison", 0) == 2
	})
}

// eventually polls cond until it holds, failing the test after interopWait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(interopWait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %v", what, interopWait)
		}
		<-tick.C
	}
}

// committedOffset is the group's committed offset of one partition, -1 if
// none.
func committedOffset(t *testing.T, brokers []string, group, topic string, partition int) int64 {
	t.Helper()
	// A transport of its own: a shared one would answer from stale metadata.
	tr := &kafkago.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...), Transport: tr, Timeout: 5 * time.Second}
	resp, err := c.OffsetFetch(t.Context(), &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {partition}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.Topics[topic] {
		if p.Partition == partition {
			return p.CommittedOffset
		}
	}
	return -1
}

// saramaConfig is the CloudEvents SDK's Kafka client configuration for
// kfake. From V2_4_0_0 on, sarama fetches group offsets with OffsetFetch v6,
// to which kfake answers a null metadata string that sarama rejects; the
// consumer group works up to V2_3_0_0. New groups start at the oldest
// offset, since the events are written before the group joins.
func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_3_0_0
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	return cfg
}

var modes = []struct {
	mode     kafka.Mode
	force    func(context.Context) context.Context
	encoding binding.Encoding
}{
	{kafka.Binary, binding.WithForceBinary, binding.EncodingBinary},
	{kafka.Structured, binding.WithForceStructured, binding.EncodingStructured},
}

// TestSDKReceives: the CloudEvents SDK's kafka_sarama consumer reads the
// events our publisher writes, in both modes, with every attribute.
func TestSDKReceives(t *testing.T) {
	for _, m := range modes {
		t.Run(m.mode.String(), func(t *testing.T) {
			brokers := newCluster(t)
			cfg := testConfig(brokers)
			cfg.Mode = m.mode
			tr, err := kafka.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = tr.Close() })
			topic := "to-sdk-" + m.mode.String()
			want := interopEvent("bus-" + m.mode.String())
			if err := bus.New(tr).Publish(t.Context(), topic, want); err != nil {
				t.Fatal(err)
			}

			consumer, err := kafka_sarama.NewConsumer(brokers, saramaConfig(), "sdk", topic)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), interopWait)
			opened := make(chan error, 1)
			go func() { opened <- consumer.OpenInbound(ctx) }()
			t.Cleanup(func() {
				cancel()
				<-opened
				_ = consumer.Close(context.Background())
			})
			msg, err := consumer.Receive(ctx)
			if err != nil {
				t.Fatalf("SDK receive: %v", err)
			}
			if enc := msg.ReadEncoding(); enc != m.encoding {
				t.Errorf("SDK read the message as %v, want %v", enc, m.encoding)
			}
			got, err := binding.ToEvent(ctx, msg)
			if err != nil {
				t.Fatalf("SDK decode: %v", err)
			}
			_ = msg.Finish(nil)
			checkEvent(t, got, &want)
		})
	}
}

// TestSDKSends: events the CloudEvents SDK's kafka_sarama sender writes, in
// both modes and with a message key, are decoded by our subscriber with
// every attribute, and the key becomes the partitionkey extension.
func TestSDKSends(t *testing.T) {
	for _, m := range modes {
		t.Run(m.mode.String(), func(t *testing.T) {
			brokers := newCluster(t)
			topic := "from-sdk-" + m.mode.String()
			got := subscribe(t, newTransport(t, brokers), topic)

			sender, err := kafka_sarama.NewSender(brokers, saramaConfig(), topic)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sender.Close(context.Background()) })
			want := interopEvent("sdk-" + m.mode.String())
			e := want.Clone()
			// The key alone carries the partition key: the SDK would make
			// the extension the key, and ours must come from the key.
			e.SetExtension(bus.ExtPartitionKey, nil)
			ctx := kafka_sarama.WithMessageKey(m.force(t.Context()), sarama.StringEncoder("customer-7"))
			if err := sender.Send(ctx, binding.ToMessage(&e)); err != nil {
				t.Fatalf("SDK send: %v", err)
			}
			msg := await(t, got, fmt.Sprintf("event the SDK sent in %s mode", m.mode))
			checkEvent(t, &msg.Event, &want)
		})
	}
}
