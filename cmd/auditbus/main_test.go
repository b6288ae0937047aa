package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
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

// runCLI runs the command line in-process and returns what it printed and
// its exit code.
func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut syncBuffer
	code = run(t.Context(), args, stdio{in: strings.NewReader(stdin), out: &out, errOut: &errOut})
	return out.String(), errOut.String(), code
}

// clearClientEnv unsets the variables that would change the commands'
// defaults.
func clearClientEnv(t *testing.T) {
	t.Helper()
	for _, v := range []string{envURL, envToken} {
		t.Setenv(v, "")
	}
}

// binDir holds the binary the tests build, once per run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "auditbus-cli-test-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var build struct {
	once sync.Once
	out  []byte
	err  error
}

// buildBinary builds auditbus with go build, once per test run, and
// returns its path.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "auditbus")
	build.once.Do(func() {
		build.out, build.err = exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	})
	if build.err != nil {
		t.Fatalf("go build: %v\n%s", build.err, build.out)
	}
	return bin
}

// exitCode runs the binary and returns its exit code and output.
func exitCode(t *testing.T, bin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errOut.String()
	}
	t.Fatalf("run %s %v: %v", bin, args, err)
	return 0, "", ""
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func TestExitCodes(t *testing.T) {
	bin := buildBinary(t)
	d := newFakeDaemon(t)
	d.requireToken("secret")
	noEnv := []string{envURL + "=", envToken + "="}
	withURL := append(noEnv[:0:0], envURL+"="+d.URL, envToken+"=secret")
	if code, _, _ := exitCode(t, bin, withURL, "publish", "--source", "/a", "--type", "t", "--id", "known"); code != 0 {
		t.Fatalf("publish to the fake daemon: exit %d", code)
	}
	cases := []struct {
		name   string
		env    []string
		args   []string
		code   int
		stdout string // substring expected on stdout
		stderr string // substring expected on stderr
	}{
		{"help", noEnv, []string{"--help"}, 0, "Commands:", ""},
		{"help command", noEnv, []string{"help", "publish"}, 0, "--datacontenttype", ""},
		{"help serve", noEnv, []string{"help", "serve"}, 0, "", "AUDITBUS_LISTEN"},
		{"subcommand help", noEnv, []string{"query", "--help"}, 0, "Exit codes", ""},
		{"version", noEnv, []string{"--version"}, 0, "auditbus ", ""},
		{"no command", noEnv, nil, 2, "", "Usage:"},
		{"unknown command", noEnv, []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"unknown flag", noEnv, []string{"publish", "--nope"}, 2, "", "-nope"},
		{"missing type", noEnv, []string{"publish", "--source", "/a"}, 2, "", "--type is required"},
		{"mem transport", noEnv, []string{"tail", "--transport", "mem", "--topic", "x"}, 2, "", "mem transport lives inside one process"},
		{"bad kafka env", append(noEnv, "AUDITBUS_KAFKA_BROKERS="), []string{"tail", "--transport", "kafka", "--topic", "x"}, 2, "", "AUDITBUS_KAFKA_BROKERS"},
		{"bad url", noEnv, []string{"query", "--url", "localhost:8080"}, 2, "", "--url"},
		{"bad url from env", []string{envURL + "=ftp://x"}, []string{"query"}, 2, "", envURL},
		{"bad time", withURL, []string{"query", "--from", "yesterday"}, 2, "", `--from "yesterday"`},
		{"unreachable daemon", []string{envURL + "=http://" + freeAddr(t)}, []string{"query"}, 1, "", "connection refused"},
		{"server refuses", append(noEnv[:0:0], envURL+"="+d.URL, envToken+"=wrong"), []string{"publish", "--source", "/a", "--type", "t"}, 1, "",
			`HTTP 401 Unauthorized: {"error":{"code":"unauthorized","message":"no valid bearer token"}}`},
		{"found", withURL, []string{"query", "get", "known"}, 0, `"id":"known"`, ""},
		{"not found", withURL, []string{"query", "get", "missing"}, 3, "", `"code":"not_found"`},
		{"wrong url path is not a missing event", append(noEnv[:0:0], envURL+"="+d.URL+"/not/auditbus", envToken+"=secret"), []string{"query", "get", "known"}, 1, "", "is --url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := exitCode(t, bin, c.env, c.args...)
			if code != c.code || !strings.Contains(stdout, c.stdout) || !strings.Contains(stderr, c.stderr) {
				t.Errorf("auditbus %v: exit %d, want %d\nstdout: %s\nstderr: %s\nwant stdout to hold %q, stderr %q",
					c.args, code, c.code, stdout, stderr, c.stdout, c.stderr)
			}
		})
	}
}
