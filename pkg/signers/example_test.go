package signers_test

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"

	"github.com/auditbus/auditbus/bus/signing"
	"github.com/auditbus/auditbus/pkg/signers"
	"github.com/cloudevents/sdk-go/v2/event"
)

func Example() {
	dir, _ := os.MkdirTemp("", "signers")
	defer os.RemoveAll(dir)
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub, _ := signing.MarshalPublicKey(priv.Public())
	_ = os.WriteFile(filepath.Join(dir, "shop.pub"), pub, 0o600)
	_ = os.WriteFile(filepath.Join(dir, "signers.yaml"), []byte(`signers:
  - key_id: shop-2026
    public_key_file: shop.pub   # beside this file
    sources: [/shop/]
    types: [com.example.order.]
`), 0o600)
	reg, err := signers.Load(filepath.Join(dir, "signers.yaml"))
	if err != nil {
		fmt.Println(err)
		return
	}
	shop, _ := signing.NewSigner("shop-2026", priv)

	ev := event.New()
	ev.SetID("1")
	ev.SetSource("/shop/cart")
	ev.SetType("com.example.order.placed")
	fmt.Println(reg.Check(&ev).Entry)

	_ = shop.Sign(&ev)
	fmt.Println(reg.Check(&ev).Entry)

	ev.SetSource("/billing")
	_ = shop.Sign(&ev)
	r := reg.Check(&ev)
	fmt.Println(r.Entry)
	fmt.Println(r.Refusal(&ev, `route "payments" requires signatures`))
	// Output:
	// unsigned
	// verified: shop-2026
	// invalid: signer-not-allowed: key "shop-2026" may sign sources "/shop/", not "/billing"
	// refused (signer-not-allowed): route "payments" requires signatures: event "1" from "/billing": key "shop-2026" may sign sources "/shop/", not "/billing"
}
