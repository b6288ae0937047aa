package testservices_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/auditbus/auditbus/deploy/testservices"
	amqp "github.com/rabbitmq/amqp091-go"
)

// TestClickHouseRestartKeepsData starts a private server, writes a row,
// stops and starts it, and reads the row back.
func TestClickHouseRestartKeepsData(t *testing.T) {
	c := testservices.StartClickHouse(t)
	query := func(q string) string {
		t.Helper()
		resp, err := http.Post("http://"+c.HTTPAddr()+"/?query="+url.QueryEscape(q), "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s: %s", q, resp.Status, b)
		}
		return strings.TrimSpace(string(b))
	}
	query("CREATE TABLE t (x UInt32) ENGINE = MergeTree ORDER BY x")
	query("INSERT INTO t VALUES (42)")
	c.Stop()
	if _, err := http.Get("http://" + c.HTTPAddr() + "/ping"); err == nil {
		t.Fatal("the server still answers after Stop")
	}
	c.Start()
	if got := query("SELECT sum(x) FROM t"); got != "42" {
		t.Fatalf("after the restart: %q, want 42", got)
	}
}

// TestRabbitMQRestartKeepsMessages starts a private node, puts a
// persistent message on a durable queue, restarts the application and
// then the whole node, and reads the message back.
func TestRabbitMQRestartKeepsMessages(t *testing.T) {
	r := testservices.StartRabbitMQ(t)
	channel := func() (*amqp.Connection, *amqp.Channel) {
		t.Helper()
		conn, err := amqp.Dial(r.URL())
		if err != nil {
			t.Fatal(err)
		}
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		return conn, ch
	}
	conn, ch := channel()
	if _, err := ch.QueueDeclare("keep", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", "keep", false, false,
		amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("kept")})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := dc.WaitContext(context.Background()); !ok || err != nil {
		t.Fatalf("publish not confirmed: %v", err)
	}
	r.StopApp()
	select {
	case <-conn.NotifyClose(make(chan *amqp.Error, 1)):
	case <-time.After(time.Minute):
		t.Fatal("the connection is still open after stop_app")
	}
	r.StartApp()
	r.Stop()
	r.Start()
	conn, ch = channel()
	defer conn.Close()
	m, ok, err := ch.Get("keep", true)
	if err != nil || !ok || string(m.Body) != "kept" {
		t.Fatalf("after the restarts: %q, %v, %v; want the message", m.Body, ok, err)
	}
}
