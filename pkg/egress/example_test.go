package egress_test

import (
	"fmt"
	"net/netip"

	"github.com/auditbus/auditbus/pkg/egress"
)

func Example() {
	strict, trusted, err := egress.New([]string{"hooks.internal.example"}, []string{"10.9.0.0/16"})
	if err != nil {
		panic(err)
	}
	fmt.Println(strict.CheckAddr("169.254.169.254", netip.MustParseAddr("169.254.169.254")))
	fmt.Println(strict.CheckAddr("hooks.internal.example", netip.MustParseAddr("10.1.2.3")))
	fmt.Println(trusted.CheckAddr("127.0.0.1", netip.MustParseAddr("127.0.0.1")))
	fmt.Println(trusted.CheckAddr("10.9.0.5", netip.MustParseAddr("10.9.0.5")))
	// Output:
	// egress policy: 169.254.169.254 is not allowed: internal range 169.254.0.0/16; a webhook given through the API may reach it only when AUDITBUS_WEBHOOK_ALLOW names it
	// <nil>
	// <nil>
	// egress policy: 10.9.0.5 is not allowed: AUDITBUS_WEBHOOK_DENY 10.9.0.0/16
}
