package perms_test

import (
	"fmt"

	"github.com/auditbus/auditbus/pkg/perms"
)

func Example() {
	policy, err := perms.ParsePolicy("policy.yaml", []byte(`
principals:
  cart-service:
    topics: [orders]
    source_prefixes: [/shop]
`))
	if err != nil {
		panic(err)
	}
	set, _ := policy.For("cart-service")
	// A token can only narrow what the policy allows.
	set = set.Intersect(perms.Set{SourcePrefixes: &perms.Rule{Allow: []string{"/shop/cart", "/billing"}, From: "the token's caveat"}})
	fmt.Println(set)
	fmt.Println(set.CheckTopic("orders"))
	fmt.Println(set.CheckEvent("/billing", "com.example.payment.captured"))
	fmt.Println(set.Within())
	// Output:
	// topics "orders"; source prefixes "/shop/cart"
	// <nil>
	// refused (source-not-allowed): source "/billing" is not allowed: the policy policy.yaml line 5 (principal "cart-service", source_prefixes) and the token's caveat allows only sources starting with "/shop/cart"; send events whose source starts with an allowed prefix, or ask for a token or policy that allows "/billing"
	// sources starting with "/shop/cart"
}
