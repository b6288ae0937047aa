package mem_test

import (
	"testing"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/bustest"
	"github.com/auditbus/auditbus/bus/mem"
)

const testBound = 64

func TestConformance(t *testing.T) {
	bustest.TestTransport(t, bustest.Features{
		OrderedPerKey:       true,
		DurableGroups:       true,
		NoRouteWithoutGroup: true,
		BufferBound:         testBound,
		Buffered: func(tr bus.Transport, topic, group string) (int, int) {
			st, _ := tr.(*mem.Transport).Stats(topic, group)
			return st.Buffered, st.MaxBuffered
		},
	}, func(t *testing.T) bus.Transport {
		return mem.New(mem.WithBufferSize(testBound), mem.WithPartitions(4))
	})
}
