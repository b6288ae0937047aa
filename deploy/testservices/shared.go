package testservices

import (
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// SharedRabbitMQ returns the URL of the RabbitMQ every test on the machine
// shares (AUDITBUS_AMQP_TEST_URL, default 127.0.0.1:5672 as
// deploy/test-services.sh up starts it), once it answers. When it does not,
// the test fails under CI=true and is skipped otherwise. Tests that stop
// or restart a broker start a private one instead (StartRabbitMQ).
func SharedRabbitMQ(t testing.TB) string {
	t.Helper()
	url := os.Getenv("AUDITBUS_AMQP_TEST_URL")
	if url == "" {
		url = "amqp://guest:guest@127.0.0.1:5672/"
	}
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		unavailable(t, "RabbitMQ not reachable at %s (%v); deploy/test-services.sh up starts one", url, err)
	}
	_ = conn.Close()
	return url
}

// DeleteRabbitMQ deletes a queue and an exchange a test declared on the
// broker at url, as well as it can: what is gone already is no error.
func DeleteRabbitMQ(url, exchange, queue string) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	_, _ = ch.QueueDelete(queue, false, false, false)
	_ = ch.ExchangeDelete(exchange, false, false)
}
