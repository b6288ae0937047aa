package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// kafkaEnv starts an in-process Kafka broker (kfake) and points the
// AUDITBUS_KAFKA_* variables at it, tuned for quick group changes.
func kafkaEnv(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	env := []string{
		"AUDITBUS_KAFKA_BROKERS=" + strings.Join(c.ListenAddrs(), ","),
		"AUDITBUS_KAFKA_LINGER=1ms",
		"AUDITBUS_KAFKA_PARTITIONS=4",
		"AUDITBUS_KAFKA_HEARTBEAT_INTERVAL=100ms",
		"AUDITBUS_KAFKA_SESSION_TIMEOUT=6s", // kfake's minimum
		"AUDITBUS_KAFKA_REBALANCE_TIMEOUT=2s",
		"AUDITBUS_KAFKA_FETCH_MAX_WAIT=100ms",
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return env
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tailInBackground runs auditbus tail in-process and returns its stdout,
// stderr and a channel with its exit code.
func tailInBackground(t *testing.T, ctx context.Context, args ...string) (*syncBuffer, *syncBuffer, <-chan int) {
	t.Helper()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"tail"}, args...), stdio{in: strings.NewReader(""), out: &out, errOut: &errOut})
	}()
	waitFor(t, "tail to follow the topic", 30*time.Second, func() bool {
		select {
		case code := <-done:
			t.Fatalf("tail exited with %d: %s", code, errOut.String())
		default:
		}
		return strings.Contains(errOut.String(), "auditbus tail: following")
	})
	return &out, &errOut, done
}

// ids returns the ids of JSON lines of structured events.
func ids(t *testing.T, jsonLines string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(jsonLines), "\n") {
		var e event.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("tail --json printed %q: %v", l, err)
		}
		out = append(out, e.ID())
	}
	slices.Sort(out)
	return out
}

func TestKafkaPublishThenTail(t *testing.T) {
	kafkaEnv(t)
	lines, want := jsonLines(40)
	stdout, stderr, code := runCLI(t, lines, "publish", "--transport", "kafka", "--topic", "orders", "--batch", "15", "-")
	if code != 0 {
		t.Fatalf("publish --transport kafka: exit %d: %s", code, stderr)
	}
	if got := strings.Fields(stdout); len(got) != 40 {
		t.Fatalf("publish printed %d ids, want 40", len(got))
	}
	stdout, stderr, code = runCLI(t, "", "publish", "--transport", "kafka", "--topic", "orders",
		"--id", "flagged", "--source", "/orders", "--type", "com.example.flag", "--data", "hi", "--ext", "partitionkey=k1")
	if code != 0 || strings.TrimSpace(stdout) != "flagged" {
		t.Fatalf("publish one: exit %d stdout %q: %s", code, stdout, stderr)
	}
	want = append(want, "flagged")
	slices.Sort(want)

	stdout, stderr, code = runCLI(t, "", "tail", "--transport", "kafka", "--topic", "orders", "--from-beginning", "--count", "41", "--json")
	if code != 0 {
		t.Fatalf("tail: exit %d: %s", code, stderr)
	}
	if got := ids(t, stdout); !slices.Equal(got, want) {
		t.Errorf("tail printed ids %v\nwant %v", got, want)
	}
	var flagged event.Event
	for _, l := range strings.Split(stdout, "\n") {
		if strings.Contains(l, `"flagged"`) {
			_ = json.Unmarshal([]byte(l), &flagged)
		}
	}
	if string(flagged.Data()) != "hi" || flagged.Extensions()["partitionkey"] != "k1" || flagged.Time().IsZero() {
		t.Errorf("the event from flags came back as %v", flagged)
	}

	// A named group that has read everything sees only what comes next.
	stdout, stderr, code = runCLI(t, "", "tail", "--transport", "kafka", "--topic", "orders", "--group", "g1", "--from-beginning", "--count", "41")
	if code != 0 || strings.Count(stdout, "\n") != 41 {
		t.Fatalf("tail --group g1: exit %d, %d lines: %s", code, strings.Count(stdout, "\n"), stderr)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, errOut, done := tailInBackground(t, ctx, "--transport", "kafka", "--topic", "orders", "--group", "g1", "--count", "2")
	for i := range 2 {
		if _, stderr, code := runCLI(t, "", "publish", "--transport", "kafka", "--topic", "orders", "--id", fmt.Sprint("new-", i), "--source", "/o", "--type", "t"); code != 0 {
			t.Fatalf("publish: %s", stderr)
		}
	}
	if code := <-done; code != 0 {
		t.Fatalf("tail --group g1 --count 2: exit %d: %s", code, errOut.String())
	}
	if got := out.String(); !strings.Contains(got, "new-0") || !strings.Contains(got, "new-1") || strings.Count(got, "\n") != 2 {
		t.Errorf("tail --group g1 after reading everything printed:\n%s", got)
	}
}

// TestKafkaTailFromNow checks that a new throwaway group starts at the end
// of the topic: old events never show, new ones do.
func TestKafkaTailFromNow(t *testing.T) {
	kafkaEnv(t)
	if _, stderr, code := runCLI(t, "", "publish", "--transport", "kafka", "--topic", "news", "--id", "old", "--source", "/n", "--type", "t"); code != 0 {
		t.Fatalf("publish: %s", stderr)
	}
	out, errOut, done := tailInBackground(t, t.Context(), "--transport", "kafka", "--topic", "news", "--count", "1")
	// The consumer resolves "the end" when it first fetches each
	// partition, just after it joins: publish until one arrives.
	var code int
	for i := 0; ; i++ {
		if _, stderr, c := runCLI(t, "", "publish", "--transport", "kafka", "--topic", "news", "--id", fmt.Sprint("new-", i), "--source", "/n", "--type", "t", "--data", "x"); c != 0 {
			t.Fatalf("publish: %s", stderr)
		}
		exited := false
		select {
		case code = <-done:
			exited = true
		case <-time.After(200 * time.Millisecond):
		}
		if exited {
			break
		}
		if i == 100 {
			t.Fatalf("tail printed nothing after 100 new events: %s", errOut.String())
		}
	}
	line := out.String()
	if code != 0 || !strings.Contains(line, "  t  /n  new-") || strings.Contains(line, "old") || !strings.HasSuffix(line, "  -  1B  x\n") {
		t.Errorf("exit %d, printed %q; want one line of a new event", code, line)
	}
}

// TestTailSignal runs the binary and stops it with SIGINT.
func TestTailSignal(t *testing.T) {
	env := kafkaEnv(t)
	bin := buildBinary(t)
	cmd := exec.Command(bin, "tail", "--transport", "kafka", "--topic", "sig")
	cmd.Env = append(os.Environ(), env...)
	var out, errOut syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "tail to follow the topic", 30*time.Second, func() bool { return strings.Contains(errOut.String(), "following") })
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("tail after SIGINT: %v\n%s", err, errOut.String())
	}
}

// amqpURL is the local RabbitMQ, or the test is skipped (failed under CI).
func amqpURL(t *testing.T) string {
	t.Helper()
	url := "amqp://guest:guest@127.0.0.1:5672/"
	if c, err := net.DialTimeout("tcp", "127.0.0.1:5672", 2*time.Second); err == nil {
		_ = c.Close()
		t.Setenv("AUDITBUS_AMQP_URL", url)
		return url
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("RabbitMQ is not reachable on 127.0.0.1:5672")
	}
	t.Skip("RabbitMQ is not reachable on 127.0.0.1:5672; `make test` starts it")
	return ""
}

func TestAMQPTail(t *testing.T) {
	url := amqpURL(t)
	topic := "auditbus-cli-test-" + randomSuffix()
	out, errOut, done := tailInBackground(t, t.Context(), "--transport", "amqp", "--topic", topic, "--count", "3")
	group := strings.SplitN(strings.SplitN(errOut.String(), `as group "`, 2)[1], `"`, 2)[0]
	lines, want := jsonLines(3)
	if _, stderr, code := runCLI(t, lines, "publish", "--transport", "amqp", "--topic", topic, "-"); code != 0 {
		t.Fatalf("publish --transport amqp: exit %d: %s", code, stderr)
	}
	if code := <-done; code != 0 {
		t.Fatalf("tail: exit %d: %s", code, errOut.String())
	}
	for _, id := range want {
		if !strings.Contains(out.String(), id) {
			t.Errorf("tail printed %q, missing %s", out.String(), id)
		}
	}
	// The throwaway group's queue is gone.
	conn, err := amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclarePassive(topic+"."+group, true, false, false, false, nil); err == nil {
		t.Errorf("queue %s.%s is still there after tail stopped", topic, group)
	}
	if _, stderr, code := runCLI(t, "", "tail", "--transport", "amqp", "--topic", topic, "--from-beginning"); code != 2 || !strings.Contains(stderr, "keeps no history") {
		t.Errorf("amqp --from-beginning: exit %d: %s", code, stderr)
	}
}

func TestEventLine(t *testing.T) {
	e := event.New()
	e.SetID("id-1")
	e.SetSource("/orders")
	e.SetType("com.example.created")
	e.SetTime(time.Date(2026, 5, 1, 10, 0, 0, 123456789, time.FixedZone("x", 3600)))
	_ = e.SetData("text/plain", []byte("line one\n\tline two\x07 and a long tail that goes on"))
	if got, want := eventLine(&e, 30), "2026-05-01T09:00:00.123Z  com.example.created  /orders  id-1  -  48B  line one line two\\a and a long …"; got != want {
		t.Errorf("eventLine:\n got %q\nwant %q", got, want)
	}
	e.SetSubject("a\nb")
	_ = e.SetData("application/octet-stream", []byte{0xff, 0xfe})
	if got, want := eventLine(&e, 30), "2026-05-01T09:00:00.123Z  com.example.created  /orders  id-1  a b  2B  (binary)"; got != want {
		t.Errorf("eventLine:\n got %q\nwant %q", got, want)
	}
	if got := eventLine(&e, 0); !strings.HasSuffix(got, "  2B") {
		t.Errorf("--preview 0: %q", got)
	}
	var b bytes.Buffer
	p := &eventPrinter{json: true, out: bufio.NewWriter(&b)}
	err := p.write(&e)
	_ = p.out.Flush()
	if err != nil || !strings.Contains(b.String(), `"data_base64":"//4="`) {
		t.Errorf("json line %q (%v)", b.String(), err)
	}
}
