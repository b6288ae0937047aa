package backoff_test

import (
	"fmt"
	"time"

	"github.com/auditbus/auditbus/bus/backoff"
)

func ExamplePolicy_Delay() {
	p := backoff.Policy{Initial: 100 * time.Millisecond, Max: time.Second}
	for attempt := 1; attempt <= 5; attempt++ {
		fmt.Println(attempt, p.Delay(attempt))
	}
	// Output:
	// 1 100ms
	// 2 200ms
	// 3 400ms
	// 4 800ms
	// 5 1s
}
