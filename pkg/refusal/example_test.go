package refusal_test

import (
	"fmt"

	"github.com/auditbus/auditbus/pkg/refusal"
	"github.com/prometheus/client_golang/prometheus"
)

func Example() {
	reg := prometheus.NewRegistry()
	m := refusal.NewMetrics(reg, "http")

	var err error = &refusal.Error{Reason: refusal.SourceNotAllowed, Rule: `source "/billing" is outside the token's source-prefix "/shop"`}
	if r, ok := refusal.As(fmt.Errorf("event #0: %w", err)); ok {
		m.Count("http", r.Reason, 1)
	}
	fmt.Println(err)
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			if v := s.GetCounter().GetValue(); v > 0 {
				fmt.Println(mf.GetName(), s.GetLabel()[0].GetValue(), s.GetLabel()[1].GetValue(), v)
			}
		}
		fmt.Println("series:", len(mf.GetMetric()))
	}
	// Output:
	// refused (source-not-allowed): source "/billing" is outside the token's source-prefix "/shop"
	// auditbus_events_refused_total source-not-allowed http 1
	// series: 8
}
