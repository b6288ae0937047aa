package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/pkg/httpapi"
	"github.com/auditbus/auditbus/pkg/replay"
)

func TestReplayUsageErrors(t *testing.T) {
	clearClientEnv(t)
	for _, args := range [][]string{
		{"replay"},
		{"replay", "--source", "/s"},
		{"replay", "--to-transport", "kafka"},
		{"replay", "--to-topic", "t"},
		{"replay", "--to-route", "r"},
		{"replay", "--to-transport", "kafka", "--to-topic", "t", "--to-webhook", "http://h"},
		{"replay", "--to-transport", "kafka", "--to-topic", "t", "--to-header", "A=b"},
		{"replay", "--to-webhook", "http://h", "--to-header", "nothing"},
		{"replay", "--to-transport", "kafka", "--to-topic", "t", "--from", "yesterday"},
		{"replay", "--to-transport", "kafka", "--to-topic", "t", "--rate", "-3"},
		{"replay", "--dry-run", "--follow"},
		{"replay", "bogus"},
		{"replay", "status"},
		{"replay", "status", "a", "b"},
		{"replay", "list", "x"},
		{"replay", "cancel", "x", "--rate", "3"},
		{"replay", "status", "x", "--output", "yaml"},
		{"replay", "--to-transport", "kafka", "--to-topic", "t", "--url", "ftp://x"},
		{"redrive"},
		{"redrive", "--route", "r", "--rate", "-1"},
		{"redrive", "--route", "r", "extra"},
		{"redrive", "--route", "r", "--from", "soon"},
	} {
		if _, stderr, code := runCLI(t, "", args...); code != exitUsage || !strings.Contains(stderr, "--help") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a pointer to --help", args, code, stderr)
		}
	}
	for _, args := range [][]string{{"replay", "--help"}, {"help", "replay"}, {"redrive", "--help"}} {
		stdout, _, code := runCLI(t, "", args...)
		if code != exitOK || !strings.Contains(stdout, "Examples:") || !strings.Contains(stdout, "--rate") {
			t.Errorf("%v: exit %d:\n%s", args, code, stdout)
		}
	}
}

func TestProgressText(t *testing.T) {
	created := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	j := httpapi.ReplayJob{ID: "j1", State: replay.Running, Created: created,
		Progress: replay.Progress{Done: 12000, Total: 20000, Rate: 4012.4, ETA: 2*time.Second + 400*time.Millisecond}}
	if got, want := progressLine(j), "replay j1: running, 12,000 of 20,000 events (60%), 0 failed, 4,012 events/s, ETA 2s"; got != want {
		t.Errorf("progressLine = %q, want %q", got, want)
	}
	if got, want := barLine(j), "[##################------------]  12,000/20,000 events   60%  4,012 events/s  ETA 2s"; got != want {
		t.Errorf("barLine = %q, want %q", got, want)
	}
	j.Progress.Total = -1
	if got, want := barLine(j), "[------------------------------]  12,000/? events  4,012 events/s  ETA 2s"; got != want {
		t.Errorf("barLine while counting = %q, want %q", got, want)
	}
	j.State, j.Updated = replay.Done, created.Add(5*time.Second)
	j.Progress = replay.Progress{Done: 19990, Failed: 10, Total: 20000, Rate: 4000}
	if got, want := progressLine(j), "replay j1: done, 19,990 of 20,000 events (100%), 10 failed, 4,000 events/s, in 5s"; got != want {
		t.Errorf("progressLine done = %q, want %q", got, want)
	}
	if got := fit(barLine(j), 40); len(got) != 39 {
		t.Errorf("fit to 40 columns: %d bytes", len(got))
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

// replayDaemon starts a daemon, publishes 300 events from source /batch to
// its route web and sets the client variables for a token with every
// scope.
func replayDaemon(t *testing.T) {
	t.Helper()
	clearClientEnv(t)
	base := startDaemon(t, buildBinary(t))
	t.Setenv(envURL, base)
	t.Setenv(envToken, mintToken(t, "events:write audit:read replay:write"))
	lines, _ := jsonLines(300)
	if _, stderr, code := runCLI(t, lines, "publish", "--route", "web", "-"); code != 0 {
		t.Fatalf("publish: exit %d: %s", code, stderr)
	}
}

var jobID = regexp.MustCompile(`replay ([0-9a-f-]{36}) started`)

// TestReplayFollowPlainLines replays through a real daemon with the
// output not a terminal: progress comes as lines, and list, status,
// cancel and redrive work against the daemon.
func TestReplayFollowPlainLines(t *testing.T) {
	replayDaemon(t)
	stdout, stderr, code := runCLI(t, "", "replay", "--dry-run", "--source", "/batch", "--from", "-1h")
	if code != 0 || stdout != "300 events would be replayed\n" {
		t.Fatalf("dry run: exit %d: %q %s", code, stdout, stderr)
	}
	// 150 events/s: about two seconds, so a few progress lines.
	stdout, stderr, code = runCLI(t, "", "replay", "--source", "/batch", "--to-transport", "mem", "--to-topic", "web-out",
		"--rate", "150", "--name", "plain")
	if code != 0 {
		t.Fatalf("replay: exit %d:\n%s\n%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	m := jobID.FindStringSubmatch(lines[0])
	if m == nil || strings.Contains(stdout, "\r") || len(lines) < 3 {
		t.Fatalf("replay printed:\n%s", stdout)
	}
	id := m[1]
	for _, l := range lines[1 : len(lines)-1] {
		if !strings.HasPrefix(l, "replay "+id+": running, ") || !strings.Contains(l, "events/s") {
			t.Errorf("progress line %q", l)
		}
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "replay "+id+": done, 300 of 300 events (100%), 0 failed, ") {
		t.Errorf("last line %q", last)
	}

	stdout, _, code = runCLI(t, "", "replay", "list")
	if rows := strings.Split(strings.TrimSpace(stdout), "\n"); code != 0 || len(rows) != 2 || !strings.HasPrefix(rows[0], "ID") ||
		!strings.Contains(rows[1], id+"  done   300   300    0") || !strings.Contains(rows[1], "mem:web-out  plain") {
		t.Errorf("list: exit %d:\n%s", code, stdout)
	}
	stdout, _, code = runCLI(t, "", "replay", "status", id)
	if code != 0 || !strings.Contains(stdout, "state:       done\n") || !strings.Contains(stdout, `filter:      {"source":"/batch"}`) {
		t.Errorf("status: exit %d:\n%s", code, stdout)
	}
	// Each copy is a replayed entry on its version.
	stdout, _, code = runCLI(t, "", "query", "--source", "/batch", "--outcome", "replayed", "--limit", "1", "--trail")
	if code != 0 || !strings.Contains(stdout, "received, delivered, replayed") || !regexp.MustCompile(`  replayed +- +mem:web-out `).MatchString(stdout) {
		t.Errorf("the replayed versions: exit %d:\n%s", code, stdout)
	}
	stdout, _, code = runCLI(t, "", "replay", "status", id, "--output", "json")
	var j httpapi.ReplayJob
	if code != 0 || json.Unmarshal([]byte(stdout), &j) != nil || j.ID != id || j.Progress.Done != 300 {
		t.Errorf("status --output json: exit %d: %s", code, stdout)
	}
	if _, stderr, code = runCLI(t, "", "replay", "status", "no-such-job"); code != exitNotFound || !strings.Contains(stderr, `"code":"not_found"`) {
		t.Errorf("status of an unknown job: exit %d: %s", code, stderr)
	}

	// A slow job, cancelled while another command follows it.
	stdout, stderr, code = runCLI(t, "", "replay", "--source", "/batch", "--to-transport", "mem", "--to-topic", "web-out", "--rate", "5", "--detach")
	slow := strings.TrimSpace(stdout)
	if code != 0 || len(slow) != 36 {
		t.Fatalf("--detach: exit %d: %q %s", code, stdout, stderr)
	}
	followed := make(chan int, 1)
	var followOut, followErr syncBuffer
	go func() {
		followed <- run(t.Context(), []string{"replay", "status", slow, "--follow"}, stdio{in: strings.NewReader(""), out: &followOut, errOut: &followErr})
	}()
	waitFor(t, "the follower's first line", 10*time.Second, func() bool { return strings.Contains(followOut.String(), "running") })
	if stdout, stderr, code = runCLI(t, "", "replay", "cancel", slow); code != 0 || !strings.HasPrefix(stdout, "replay "+slow+": cancelled, ") {
		t.Fatalf("cancel: exit %d: %s %s", code, stdout, stderr)
	}
	if code := <-followed; code != exitFailure || !strings.Contains(followOut.String(), "replay "+slow+": cancelled") {
		t.Errorf("following a job that got cancelled: exit %d:\n%s\n%s", code, followOut.String(), followErr.String())
	}
	if _, stderr, code = runCLI(t, "", "replay", "cancel", slow); code != exitFailure || !strings.Contains(stderr, "HTTP 409") || !strings.Contains(stderr, "not_running") {
		t.Errorf("second cancel: exit %d: %s", code, stderr)
	}

	// Nothing was dead-lettered: no destination has anything to redrive,
	// and a redrive of the one destination is done at once.
	if stdout, stderr, code = runCLI(t, "", "redrive", "--route", "web"); code != 0 || stdout != "" || !strings.Contains(stderr, "nothing to redrive") {
		t.Errorf("redrive: exit %d:\n%s\n%s", code, stdout, stderr)
	}
	if stdout, stderr, code = runCLI(t, "", "redrive", "--route", "web", "--destination", "mem:web-out"); code != 0 ||
		!strings.Contains(stdout, "done, 0 of 0 events") || !strings.Contains(stdout, "to route:web/mem:web-out") {
		t.Errorf("redrive of one destination: exit %d:\n%s\n%s", code, stdout, stderr)
	}
	if _, stderr, code = runCLI(t, "", "redrive", "--route", "nope"); code != exitFailure || !strings.Contains(stderr, `field \"route\"`) {
		t.Errorf("redrive of an unknown route: exit %d: %s", code, stderr)
	}
	t.Setenv(envToken, mintToken(t, "audit:read"))
	if _, stderr, code = runCLI(t, "", "replay", "--to-transport", "mem", "--to-topic", "web-out"); code != exitFailure ||
		!strings.Contains(stderr, "HTTP 403") || !strings.Contains(stderr, "replay:write") {
		t.Errorf("without replay:write: exit %d: %s", code, stderr)
	}
}
