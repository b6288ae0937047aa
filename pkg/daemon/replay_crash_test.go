package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/kafka"
	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/twmb/franz-go/pkg/kfake"
)

// replayed keeps what the test's consumer of the replay topic saw.
type replayed struct {
	counter
	mu       sync.Mutex
	bad      []string // copies that are not exactly what was stored
	nonMatch int      // copies of events the filter does not select
}

// check compares a copy with the event stored under its id.
func (r *replayed) check(e bus.Event, job string) {
	var n int
	ok := false
	if _, err := fmt.Sscanf(e.ID(), "crash-%05d", &n); err == nil {
		ok = e.Source() == "/replay/crash" && e.Type() == "com.example.crash.replay" &&
			string(e.Data()) == fmt.Sprintf(`{"i":%d,"pad":"%s"}`, n, strings.Repeat("x", n%50)) &&
			e.Time().Equal(crashTime(n)) && e.Extensions()[replay.ExtReplay] == job &&
			e.Extensions()[bus.ExtPartitionKey] == fmt.Sprintf("k%d", n%100)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case strings.HasPrefix(e.ID(), "other-"):
		r.nonMatch++
	case !ok && len(r.bad) < 5:
		r.bad = append(r.bad, fmt.Sprintf("%s %s %s %v %s", e.ID(), e.Type(), e.Time(), e.Extensions(), e.Data()))
	}
}

var crashBase = time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)

func crashTime(n int) time.Time { return crashBase.Add(time.Duration(n) * time.Millisecond) }

// api calls the daemon's HTTP API and decodes the JSON answer.
func api(t *testing.T, method, url, body string, want int, out any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(newAPIRequest(t, method, url, "", body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, url, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, b)
		}
	}
}

// TestReplayResumesAfterCrash stores 22,000 events through a running
// `auditbus serve` (Kafka on kfake in this process), starts a replay of the
// 20,000 of one type to a Kafka topic at a rate that keeps it running for
// seconds, kills the daemon with SIGKILL half-way, and restarts it: the job
// resumes from its checkpoint (it does not start over) and ends done with
// every selected event delivered, as stored, and no other.
func TestReplayResumesAfterCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon; skipped with -short")
	}
	const n, others, rate = 20000, 2000, 4000
	bin := buildAuditbus(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()
	dir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	env := []string{
		"AUDITBUS_LISTEN=" + addr, "AUDITBUS_DATA_DIR=" + filepath.Join(dir, "data"),
		"AUDITBUS_TRANSPORTS=kafka", "AUDITBUS_KAFKA_BROKERS=" + brokers[0], "AUDITBUS_KAFKA_LINGER=1ms",
		"AUDITBUS_KAFKA_PARTITIONS=4", "AUDITBUS_LOG_LEVEL=info",
	}
	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon logs:\n%s", logs.String())
		}
	})
	d := startDaemon(t, bin, env, addr, logs)
	t.Cleanup(func() { _ = d.cmd.Process.Kill() })

	// Store the events through the daemon's ingest: the 20,000 to replay,
	// interleaved with 2,000 of another type.
	for lo := 0; lo < n; lo += 1000 {
		var b bytes.Buffer
		b.WriteByte('[')
		for i := lo; i < lo+1000; i++ {
			if i > lo {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"specversion":"1.0","id":"crash-%05d","source":"/replay/crash","type":"com.example.crash.replay","time":%q,"partitionkey":"k%d","datacontenttype":"application/json","data":{"i":%d,"pad":"%s"}}`,
				i, crashTime(i).Format(time.RFC3339Nano), i%100, i, strings.Repeat("x", i%50))
			if i%10 == 0 {
				fmt.Fprintf(&b, `,{"specversion":"1.0","id":"other-%05d","source":"/replay/crash","type":"com.example.other","time":%q,"data":{}}`,
					i, crashTime(i).Format(time.RFC3339Nano))
			}
		}
		b.WriteByte(']')
		var ans struct{ Accepted int }
		api(t, http.MethodPost, base+"/v1/events?topic=stored", b.String(), http.StatusAccepted, &ans)
		if ans.Accepted != 1100 {
			t.Fatalf("batch at %d: %d accepted", lo, ans.Accepted)
		}
	}
	filter := `{"from": "` + crashTime(0).Format(time.RFC3339) + `", "to": "` + crashTime(n).Format(time.RFC3339) + `", "type": "com.example.crash.*"}`
	var dry struct{ Events int }
	api(t, http.MethodPost, base+"/v1/replays?dry_run=true", `{"filter": `+filter+`}`, http.StatusOK, &dry)
	if dry.Events != n {
		t.Fatalf("dry run counts %d events, want %d", dry.Events, n)
	}

	// The test's consumer of the replay topic.
	kt, err := kafka.New(kafka.Config{
		Brokers: brokers, Partitions: 4, AutoCreateTopics: true, Linger: time.Millisecond,
		HeartbeatInterval: 100 * time.Millisecond, SessionTimeout: 6 * time.Second, RebalanceTimeout: 2 * time.Second,
		FetchMaxWait: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kt.Close() })

	var job httpapi.ReplayJob
	api(t, http.MethodPost, base+"/v1/replays", fmt.Sprintf(`{"filter": %s, "destination": {"transport": "kafka", "topic": "replayed"}, "rate": %d, "name": "crash"}`,
		filter, rate), http.StatusAccepted, &job)
	id := job.ID
	var got replayed
	sub, err := kt.Subscribe(context.Background(), "replayed", "check", func(_ context.Context, msgs []bus.Message) error {
		for _, m := range msgs {
			got.add(m.Event.ID())
			got.check(m.Event, id)
		}
		return nil
	}, bus.SubscribeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })

	jobURL := base + "/v1/replays/" + id
	waitUntil(t, "the replay is a quarter done", time.Minute, func() bool {
		api(t, http.MethodGet, jobURL, "", http.StatusOK, &job)
		return job.Progress.Done >= n/4 || job.State != replay.Running
	})
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.done
	doneAtKill := job.Progress.Done
	if job.State != replay.Running || doneAtKill >= n {
		t.Fatalf("the job was %s with %d of %d done before the kill; nothing was left to resume", job.State, doneAtKill, n)
	}
	t.Logf("SIGKILL with the job at %d of %d events (last seen through the API)", doneAtKill, n)

	d = startDaemon(t, bin, env, addr, logs)
	waitUntil(t, "the resumed replay ends", 2*time.Minute, func() bool {
		api(t, http.MethodGet, jobURL, "", http.StatusOK, &job)
		return job.State != replay.Running
	})
	if job.State != replay.Done || job.Progress.Done != n || job.Progress.Total != n || job.Progress.Failed != 0 || job.ErrorCount != 0 {
		t.Fatalf("the resumed job ended %s with %+v, %d errors: %s", job.State, job.Progress, job.ErrorCount, job.Error)
	}
	// The restarted daemon resumed the job with the progress of its last
	// checkpoint, which was at most what the API showed before the kill.
	m := regexp.MustCompile(`"msg":"replay job resumed from its checkpoint","job":"` + id + `",[^\n]*"done":(\d+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatal("the restarted daemon did not log the resumed job")
	}
	if cp, _ := strconv.ParseInt(m[1], 10, 64); cp <= 0 || cp > doneAtKill {
		t.Errorf("resumed at %s events done, want a checkpoint after 0 and at most %d", m[1], doneAtKill)
	} else {
		t.Logf("resumed from the checkpoint at %d events done", cp)
	}
	waitUntil(t, "the consumer has every replayed event", time.Minute, func() bool {
		distinct, _ := got.counts()
		return distinct >= n
	})
	distinct, all := got.counts()
	got.mu.Lock()
	defer got.mu.Unlock()
	if len(got.bad) > 0 || got.nonMatch > 0 || distinct != n {
		t.Fatalf("%d distinct copies (want %d), %d of events the filter does not select, copies unlike the stored events: %v",
			distinct, n, got.nonMatch, got.bad)
	}
	// Starting over would have sent every event before the kill again.
	if dup := all - distinct; int64(dup) >= doneAtKill {
		t.Errorf("%d duplicates, at least the %d events done before the kill: the job started over instead of resuming", dup, doneAtKill)
	}
	t.Logf("after restart: job done, %d of %d events; the consumer got %d distinct copies, %d duplicates from after the last checkpoint, 0 missing",
		job.Progress.Done, job.Progress.Total, distinct, all-distinct)
}
