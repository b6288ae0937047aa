package amqp_test

import (
	"testing"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/bustest"
)

// TestConformance runs the shared suite against the real broker. RabbitMQ
// keeps a group's queue while no consumer runs (DurableGroups) and returns
// mandatory messages no queue takes (NoRouteWithoutGroup). A queue shared by
// competing consumers, or redelivering, does not keep order per key, and the
// broker stores what consumers have not taken, so publishers are not held
// to a group buffer: those cases are skipped.
func TestConformance(t *testing.T) {
	bustest.TestTransport(t, bustest.Features{
		DurableGroups:       true,
		NoRouteWithoutGroup: true,
	}, func(t *testing.T) bus.Transport {
		return newTransport(t, testConfig(t))
	})
}
