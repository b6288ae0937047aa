package daemon_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeStoreUnopenable runs `auditbus serve` with an audit store it
// cannot open: the SQLite file is a directory, or ClickHouse is at an
// address nothing answers. It must not panic: it prints one line naming
// the store, where it is, the variable to check and the cause, and exits 1.
func TestServeStoreUnopenable(t *testing.T) {
	bin := buildAuditbus(t)
	dataDir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dataDir, "audit.db"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		want []string
	}{
		{"sqlite file is a directory", []string{"AUDITBUS_STORE=sqlite", "AUDITBUS_DATA_DIR=" + dataDir},
			[]string{"sqlite", filepath.Join(dataDir, "audit.db"), "AUDITBUS_DATA_DIR"}},
		{"clickhouse refuses", []string{"AUDITBUS_STORE=clickhouse", "AUDITBUS_CLICKHOUSE_ADDRS=127.0.0.1:1", "AUDITBUS_CLICKHOUSE_DIAL_TIMEOUT=2s",
			"AUDITBUS_DATA_DIR=" + t.TempDir()}, []string{"clickhouse", "127.0.0.1:1", "AUDITBUS_CLICKHOUSE_ADDRS", "refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, "serve")
			cmd.Env = append(os.Environ(), "AUDITBUS_LISTEN=127.0.0.1:0", "AUDITBUS_TRANSPORTS=mem", "AUDITBUS_ROUTES=",
				"AUDITBUS_AUTH_HS256_SECRET=", "AUDITBUS_LOG_LEVEL=error")
			cmd.Env = append(cmd.Env, tc.env...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("auditbus serve still running after 60 s with an unopenable store:\n%s", out.String())
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1; output:\n%s", err, out.String())
			}
			text := strings.TrimSpace(out.String())
			if strings.Contains(text, "panic") || strings.Contains(text, "goroutine ") {
				t.Fatalf("it panicked:\n%s", text)
			}
			if n := strings.Count(text, "\n") + 1; n != 1 {
				t.Errorf("%d lines of output, want one:\n%s", n, text)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("output %q does not name %q", text, w)
				}
			}
		})
	}
}
