package testservices

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The Debian package's scripts, run directly: /usr/sbin's wrappers switch
// to the rabbitmq user and its home, whose Erlang cookie is the shared
// node's.
const (
	rabbitServer = "/usr/lib/rabbitmq/bin/rabbitmq-server"
	rabbitCtl    = "/usr/lib/rabbitmq/bin/rabbitmqctl"
)

// The ports rabbitmqctl listens on by default (RABBITMQ_CTL_DIST_PORT_MIN
// to _MAX): an AMQP or distribution port there would collide with any
// rabbitmqctl run on the machine.
const ctlPortLo, ctlPortHi = 35672, 35682

// RabbitMQ is a private RabbitMQ node: its own node name, AMQP and
// distribution ports, database, logs and cookie, management off.
type RabbitMQ struct {
	t    testing.TB
	dir  string
	node string
	port int
	env  []string
	p    *proc
}

// StartRabbitMQ starts a private RabbitMQ node and waits until it accepts
// AMQP connections; it is stopped when t ends.
func StartRabbitMQ(t testing.TB) *RabbitMQ {
	t.Helper()
	for _, bin := range []string{rabbitServer, rabbitCtl} {
		if _, err := os.Stat(bin); err != nil {
			unavailable(t, "private RabbitMQ node: %v; deploy/test-services.sh up installs Debian's rabbitmq-server", err)
		}
	}
	dir := workDir(t, "auditbus-rabbitmq-", "home", "mnesia", "log")
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	r := &RabbitMQ{t: t, dir: dir, node: "auditbus-test-" + hex.EncodeToString(b) + "@localhost",
		port: freePort(t, ctlPortLo, ctlPortHi)}
	dist := freePort(t, ctlPortLo, ctlPortHi)
	files := map[string]string{
		// Replaces /etc/rabbitmq/rabbitmq-env.conf, which names the shared node.
		"rabbitmq-env.conf": "ERL_EPMD_ADDRESS=127.0.0.1\nexport ERL_FLAGS=\"-kernel inet_dist_use_interface {127,0,0,1}\"\n",
		"rabbitmq.conf":     "loopback_users = none\n",
		"enabled_plugins":   "[].\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r.env = append(os.Environ(),
		"HOME="+filepath.Join(dir, "home"), // the cookie, private to this node and its rabbitmqctl
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_NODENAME="+r.node,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(r.port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(dist),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "rabbitmq.pid"),
		"ERL_EPMD_ADDRESS=127.0.0.1",
	)
	t.Cleanup(r.shutdown)
	if err := r.start(); err != nil {
		unavailable(t, "private RabbitMQ node: %v", err)
	}
	return r
}

// URL is the node's AMQP URL (guest/guest).
func (r *RabbitMQ) URL() string { return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", r.port) }

// Node is the node's name, for rabbitmqctl -n.
func (r *RabbitMQ) Node() string { return r.node }

// StopApp stops the RabbitMQ application on the node (rabbitmqctl
// stop_app): every connection is closed and the AMQP port stops
// listening, while the Erlang node stays up.
func (r *RabbitMQ) StopApp() { r.t.Helper(); r.ctl("stop_app") }

// StartApp starts the application again (rabbitmqctl start_app) and waits
// until the AMQP port accepts connections.
func (r *RabbitMQ) StartApp() {
	r.t.Helper()
	r.ctl("start_app")
	if err := waitPort(r.addr(), time.Minute, r.p.done); err != nil {
		r.t.Fatal(err)
	}
}

// Stop halts the whole node (rabbitmqctl stop): the Erlang VM exits.
func (r *RabbitMQ) Stop() {
	r.t.Helper()
	r.ctl("stop")
	if !r.p.exited(time.Minute) {
		r.t.Fatalf("RabbitMQ node %s still running a minute after rabbitmqctl stop", r.node)
	}
}

// Start starts the node again on the same database, after Stop, and waits
// until it accepts AMQP connections.
func (r *RabbitMQ) Start() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatal(err)
	}
}

func (r *RabbitMQ) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

func (r *RabbitMQ) start() error {
	pidFile := filepath.Join(r.dir, "rabbitmq.pid")
	_ = os.Remove(pidFile)
	out, err := os.OpenFile(filepath.Join(r.dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(rabbitServer)
	cmd.Dir, cmd.Env = r.dir, r.env
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that the cleanup can end the wrapper
	// script and the VM together if rabbitmqctl cannot.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if r.p, err = startProc(cmd); err != nil {
		return err
	}
	wait := exec.Command(rabbitCtl, "-n", r.node, "wait", pidFile, "--timeout", "90")
	wait.Env = r.env
	if b, err := wait.CombinedOutput(); err != nil {
		return fmt.Errorf("node %s not running after 90 s: %v\n%s\nlog:\n%s", r.node, err, b,
			tail(filepath.Join(r.dir, "log", "stdout.log"), 20))
	}
	return waitPort(r.addr(), time.Minute, r.p.done)
}

func (r *RabbitMQ) ctl(args ...string) {
	r.t.Helper()
	cmd := exec.Command(rabbitCtl, append([]string{"-n", r.node}, args...)...)
	cmd.Env = r.env
	if b, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("rabbitmqctl -n %s %v: %v\n%s", r.node, args, err, b)
	}
}

// shutdown stops the node if it runs: rabbitmqctl stop, else SIGKILL to
// the process group this package started.
func (r *RabbitMQ) shutdown() {
	if r.p == nil {
		return
	}
	select {
	case <-r.p.done:
		return
	default:
	}
	cmd := exec.Command(rabbitCtl, "-n", r.node, "stop")
	cmd.Env = r.env
	_ = cmd.Run()
	if !r.p.exited(30 * time.Second) {
		_ = syscall.Kill(-r.p.cmd.Process.Pid, syscall.SIGKILL)
		<-r.p.done
	}
}
