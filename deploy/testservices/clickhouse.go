package testservices

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

const clickhouseServer = "/usr/sbin/clickhouse-server"

// ClickHouse is a private ClickHouse server: its own native and HTTP
// ports on 127.0.0.1 and its own data directory, user default without a
// password (the package's users.xml).
type ClickHouse struct {
	t             testing.TB
	dir           string
	tcp, httpPort int
	p             *proc
}

// StartClickHouse starts a private ClickHouse server and waits until it
// answers /ping; it is stopped when t ends.
func StartClickHouse(t testing.TB) *ClickHouse {
	t.Helper()
	if _, err := os.Stat(clickhouseServer); err != nil {
		unavailable(t, "private ClickHouse server: %v; deploy/test-services.sh up installs Debian's clickhouse-server", err)
	}
	dir := workDir(t, "auditbus-clickhouse-", "data", "tmp", "user_files", "log")
	c := &ClickHouse{t: t, dir: dir, tcp: freePort(t, 0, 0), httpPort: freePort(t, 0, 0)}
	// No interserver port: nothing here replicates.
	config := fmt.Sprintf(`<yandex>
  <logger><level>warning</level><log>%[1]s/log/server.log</log><errorlog>%[1]s/log/error.log</errorlog><size>10M</size><count>1</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>%[2]d</tcp_port>
  <http_port>%[3]d</http_port>
  <max_connections>256</max_connections>
  <max_concurrent_queries>100</max_concurrent_queries>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <mark_cache_size>67108864</mark_cache_size>
  <path>%[1]s/data/</path>
  <tmp_path>%[1]s/tmp/</tmp_path>
  <user_files_path>%[1]s/user_files/</user_files_path>
  <users_config>/etc/clickhouse-server/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mlock_executable>false</mlock_executable>
</yandex>
`, dir, c.tcp, c.httpPort)
	if err := os.WriteFile(filepath.Join(dir, "config.xml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.shutdown)
	if err := c.start(); err != nil {
		unavailable(t, "private ClickHouse server: %v", err)
	}
	return c
}

// Addr is the native protocol address, host:port.
func (c *ClickHouse) Addr() string { return fmt.Sprintf("127.0.0.1:%d", c.tcp) }

// HTTPAddr is the HTTP interface's address, host:port.
func (c *ClickHouse) HTTPAddr() string { return fmt.Sprintf("127.0.0.1:%d", c.httpPort) }

// Stop stops the server with SIGTERM and waits until the process is gone:
// a graceful shutdown, which waits up to some seconds for open client
// connections to finish.
func (c *ClickHouse) Stop() {
	c.t.Helper()
	if err := c.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatal(err)
	}
	if !c.p.exited(time.Minute) {
		c.t.Fatalf("clickhouse-server (pid %d) still running a minute after SIGTERM", c.p.cmd.Process.Pid)
	}
}

// Start starts the server again on the same data, after Stop, and waits
// until it answers.
func (c *ClickHouse) Start() {
	c.t.Helper()
	if err := c.start(); err != nil {
		c.t.Fatal(err)
	}
}

func (c *ClickHouse) start() error {
	out, err := os.OpenFile(filepath.Join(c.dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(clickhouseServer, "--config-file="+filepath.Join(c.dir, "config.xml"),
		"--pid-file="+filepath.Join(c.dir, "clickhouse.pid"))
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = out, out
	if c.p, err = startProc(cmd); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + c.HTTPAddr() + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return waitPort(c.Addr(), time.Minute, c.p.done)
			}
		}
		select {
		case <-c.p.done:
			return fmt.Errorf("clickhouse-server exited on start:\n%s\n%s", tail(filepath.Join(c.dir, "log", "stdout.log"), 10),
				tail(filepath.Join(c.dir, "log", "error.log"), 10))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("clickhouse-server does not answer /ping on %s after a minute", c.HTTPAddr())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// shutdown ends the server if it runs. Its data is about to be removed,
// so SIGKILL: a graceful stop waits for clients' idle connections.
func (c *ClickHouse) shutdown() {
	if c.p == nil {
		return
	}
	_ = c.p.cmd.Process.Kill()
	<-c.p.done
}
