package e2e_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/creack/pty"
)

// buildCLI builds cmd/auditbus in the repository's main module, as it
// ships, and returns the binary's path.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "auditbus")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/auditbus")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/auditbus: %v\n%s", err, out)
	}
	return bin
}

// TestReplayProgressBarOnTerminal runs auditbus replay with its output on
// a pseudo-terminal against a daemon holding 300 events: the progress is a
// bar redrawn in place.
func TestReplayProgressBarOnTerminal(t *testing.T) {
	bin := buildCLI(t)
	_, base := startDaemon(t, `routes:
  - name: web
    source: {http: true}
    destinations:
      - {transport: mem, topic: web-out}
    dead_letter: {transport: mem, topic: web-dead}
`)
	env := append(os.Environ(), "AUDITBUS_URL="+base, "AUDITBUS_TOKEN="+tokenWith(t, "events:write audit:read replay:write"))
	var lines strings.Builder
	for i := range 300 {
		fmt.Fprintf(&lines, `{"specversion":"1.0","id":"ev-%03d","source":"/batch","type":"com.example.n","data":{"n":%d}}`+"\n", i, i)
	}
	publish := exec.Command(bin, "publish", "--route", "web", "-")
	publish.Env, publish.Stdin = env, strings.NewReader(lines.String())
	if out, err := publish.CombinedOutput(); err != nil {
		t.Fatalf("auditbus publish: %v\n%s", err, out)
	}

	cmd := exec.Command(bin, "replay", "--source", "/batch", "--to-transport", "mem", "--to-topic", "web-out", "--rate", "150")
	cmd.Env = env
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 120})
	if err != nil {
		t.Fatalf("start under a pseudo-terminal: %v", err)
	}
	defer tty.Close()
	out, err := io.ReadAll(tty)
	// Linux answers EIO on the terminal's side once the command is gone.
	if err != nil && !errors.Is(err, syscall.EIO) {
		t.Fatalf("read the terminal: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("auditbus replay: %v\n%q", err, out)
	}
	s := string(out)
	bars := regexp.MustCompile(`\r\[([#-]{30})\]  ([0-9,]+)/(300|\?) events`).FindAllStringSubmatch(s, -1)
	if len(bars) < 4 || !strings.Contains(s, "\x1b[K") {
		t.Fatalf("%d bars drawn, want several redrawn in place:\n%q", len(bars), s)
	}
	// The bar fills as events go out, and ends full.
	prev := -1
	for _, b := range bars {
		n := strings.Count(b[1], "#")
		if n < prev {
			t.Errorf("the bar shrank from %d to %d cells", prev, n)
		}
		prev = n
	}
	if last := bars[len(bars)-1]; last[1] != strings.Repeat("#", 30) || last[2] != "300" {
		t.Errorf("last bar %q, want full at 300", last[0])
	}
	if !regexp.MustCompile(`events/s  ETA (\d+s|<1s)`).MatchString(s) {
		t.Errorf("no bar shows a rate and an ETA:\n%q", s)
	}
	if !strings.Contains(s, ": done, 300 of 300 events (100%)") {
		t.Errorf("no summary line:\n%q", s)
	}
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "running, ") {
			t.Errorf("a plain progress line on a terminal: %q", l)
		}
	}
}
