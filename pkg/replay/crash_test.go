package replay_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/kafka"
	"github.com/auditbus/auditbus/pkg/replay"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/sqlite"
)

// The crash test's child process: a Manager replaying to the parent's
// kfake broker, killed by the parent mid-replay.
const (
	childEnv        = "AUDITBUS_REPLAY_CRASH_CHILD"
	childBrokersEnv = "AUDITBUS_REPLAY_CRASH_BROKERS"
	childStoreEnv   = "AUDITBUS_REPLAY_CRASH_STORE"
	childJobsEnv    = "AUDITBUS_REPLAY_CRASH_JOBS"
	crashTopic      = "replayed"
	// childLog is the log the child appends its entries to, beside the
	// parent's in the same store.
	childLog = "replay-crash-child"
)

// crashFilter selects 20,000 of the history's events: the order events of
// the first 30,000.
var crashFilter = sinks.Query{Type: "com.example.order.", TypePrefix: true, To: base.Add(300 * time.Second)}

const crashEvents = 20000

// crashChild runs in the child process: it replays crashFilter to the
// parent's broker until it is killed, and reports an error if the replay
// ends first.
func crashChild() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 2
	}
	store, err := sqlite.Open(context.Background(), os.Getenv(childStoreEnv), sqlite.Options{Synchronous: "NORMAL", Log: childLog})
	if err != nil {
		return fail(err)
	}
	writer := sinks.NewWriter(store, sinks.WriterOptions{})
	kc := kafkaConfig(strings.Split(os.Getenv(childBrokersEnv), ","))
	tr, err := kafka.New(kc)
	if err != nil {
		return fail(err)
	}
	m, err := replay.NewManager(replay.Options{Dir: os.Getenv(childJobsEnv), Store: store, Audit: writer, Logger: quiet()})
	if err != nil {
		return fail(err)
	}
	j, err := m.Start(context.Background(), replay.Request{Filter: crashFilter, Rate: 8000,
		Destination: &reporting{replay.TopicTarget("kafka", tr, crashTopic), 0}, Name: "crash test"})
	if err != nil {
		return fail(err)
	}
	j, err = m.Wait(context.Background(), j.ID)
	return fail(fmt.Errorf("the replay ended (%s, %+v, %v) before the parent killed the process", j.State, j.Progress, err))
}

// reporting is a Target that writes "published N" to stdout after each
// batch the broker accepted, so the parent can kill the child between
// checkpoints, when it has published events its checkpoint does not cover.
type reporting struct {
	replay.Target
	n int
}

func (r *reporting) Publish(ctx context.Context, events []bus.Event) error {
	err := r.Target.Publish(ctx, events)
	if err == nil {
		r.n += len(events)
		fmt.Printf("published %d\n", r.n)
	}
	return err
}

// jobFile is what the test reads of a job file.
type jobFile struct {
	ID       string          `json:"id"`
	State    replay.State    `json:"state"`
	Progress replay.Progress `json:"progress"`
}

// readJobFile returns the one job file in dir, if there is one yet.
func readJobFile(t *testing.T, dir string) (jobFile, bool) {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(paths) == 0 {
		return jobFile{}, false
	}
	b, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	var j jobFile
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatalf("job file %s: %v", paths[0], err)
	}
	return j, true
}

// TestCrashResume kills a process with SIGKILL while it replays 20,000
// events to a Kafka topic, then resumes the job in a new Manager on the
// same job directory: the job completes, reports every event done, the
// topic holds every event (duplicates allowed, none missing), and each
// version has exactly one replayed entry of the job, though the events
// past the child's checkpoint were published, and recorded, twice.
func TestCrashResume(t *testing.T) {
	t.Parallel()
	store, storeDir := history(t)
	brokers := newCluster(t)
	jobs := t.TempDir()

	var out syncBuffer
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childBrokersEnv+"="+strings.Join(brokers, ","),
		childStoreEnv+"="+storeDir, childJobsEnv+"="+jobs)
	cmd.Stderr = &out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var published atomic.Int64
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var n int64
			if _, err := fmt.Sscanf(sc.Text(), "published %d", &n); err == nil {
				published.Store(n)
			} else {
				_, _ = out.Write(append(sc.Bytes(), '\n'))
			}
		}
	}()
	exited := make(chan error, 1)
	go func() { <-read; exited <- cmd.Wait() }()

	// Kill it once its checkpoint says a fifth of the events are out. How
	// far the publisher is past the checkpoint then depends on the
	// machine's speed; the check below only needs it not to be behind.
	deadline := time.Now().Add(90 * time.Second)
	for {
		if j, ok := readJobFile(t, jobs); ok && j.Progress.Done >= crashEvents/5 && published.Load() >= j.Progress.Done {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("child exited before it was killed (%v):\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("child published too little before the deadline:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-exited
	before, _ := readJobFile(t, jobs)
	if before.State != replay.Running || before.Progress.Done >= crashEvents {
		t.Fatalf("after the kill the job file says %s with %+v; want running, part done", before.State, before.Progress)
	}
	t.Logf("killed the child with %d of %d events checkpointed and at least %d published", before.Progress.Done, crashEvents, published.Load())

	tr := newKafka(t, brokers)
	m := newManager(t, store, replay.Options{Dir: jobs, Resolve: func(name string) (replay.Target, error) {
		if name != "kafka:"+crashTopic {
			return nil, fmt.Errorf("unknown target %q", name)
		}
		return replay.TopicTarget("kafka", tr, crashTopic), nil
	}})
	resumed, err := m.Resume()
	if err != nil || len(resumed) != 1 || resumed[0].ID != before.ID {
		t.Fatalf("Resume = %d jobs, %v; want job %s", len(resumed), err, before.ID)
	}
	j := wait(t, m, before.ID, 2*time.Minute)
	if j.State != replay.Done || j.Progress.Done != crashEvents || j.Progress.Total != crashEvents || j.Progress.Failed != 0 {
		t.Fatalf("resumed job ended %s with %+v (error %q); want done with %d of %d", j.State, j.Progress, j.Error, crashEvents, crashEvents)
	}

	got := consumeKafka(t, brokers, crashTopic, crashEvents, time.Minute)
	seen := make(map[string]bool, crashEvents)
	for i := range got {
		n := seq(t, got[i].ID())
		if n >= 30000 || n%3 == 2 {
			t.Fatalf("event %s does not match the filter", got[i].ID())
		}
		seen[got[i].ID()] = true
	}
	if len(seen) != crashEvents {
		t.Fatalf("%d distinct events on the topic, want %d", len(seen), crashEvents)
	}
	// What the child published past its last checkpoint was published
	// again after the resume.
	if past := published.Load() - before.Progress.Done; int64(len(got)-len(seen)) < past {
		t.Errorf("%d duplicates; the child had published %d events past its checkpoint", len(got)-len(seen), past)
	}
	t.Logf("0 missing of %d; %d duplicates from the batches after the last checkpoint", crashEvents, len(got)-len(seen))

	// One replayed entry per version, whichever process wrote it.
	byChild := 0
	q := crashFilter
	q.Kind = sinks.KindReplayed
	replayed := versions(t, store, q)
	for _, it := range replayed {
		en := entriesOf(it.Trail, sinks.KindReplayed, j.ID)
		if len(en) != 1 || en[0].Destination != "kafka:"+crashTopic {
			t.Fatalf("%s: replayed entries of the job %+v, want one", it.Event.ID(), en)
		}
		if en[0].Log == childLog {
			byChild++
		}
	}
	if len(replayed) != crashEvents || int64(byChild) < before.Progress.Done {
		t.Errorf("%d versions replayed, %d recorded by the child; want %d, at least the %d it checkpointed",
			len(replayed), byChild, crashEvents, before.Progress.Done)
	}
}

// syncBuffer is a bytes.Buffer safe for the writers of a child process.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
