// Package testservices starts private instances of the services the fault
// tests stop and restart: a RabbitMQ node and a ClickHouse server of their
// own, on loopback ports of their own, with their data, logs and Erlang
// cookie in a temporary directory. The shared services deploy/test-services.sh
// runs for everyone on the machine are never touched; only the binaries it
// installs (Debian's rabbitmq-server and clickhouse-server) are reused.
//
// A test that cannot start an instance fails under CI=true and is skipped
// otherwise. Every instance is stopped, and its directory removed, when the
// test that started it ends.
package testservices

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// unavailable fails the test under CI=true and skips it otherwise: the
// instance could not be started here.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg + " (CI=true makes this a failure)")
}

// freePort is a loopback TCP port nothing listens on right now, outside
// [avoidLo, avoidHi].
func freePort(t testing.TB, avoidLo, avoidHi int) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if p < avoidLo || p > avoidHi {
			return p
		}
	}
	t.Fatal("no free loopback port found in 100 tries")
	return 0
}

// waitPort polls until addr accepts TCP connections, or the process
// behind done exits, or limit passes.
func waitPort(addr string, limit time.Duration, done <-chan struct{}) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%s: the server exited before it listened", addr)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not accepting connections after %v: %w", addr, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tail is the last n lines of a log file, for a failure message.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// proc is one run of a server process this package started.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(cmd *exec.Cmd) (*proc, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// exited waits up to limit for the process to exit and reports whether it did.
func (p *proc) exited(limit time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(limit):
		return false
	}
}

// workDir makes the instance's directory, with the given subdirectories,
// removed when t ends.
func workDir(t testing.TB, prefix string, subdirs ...string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	for _, d := range subdirs {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
