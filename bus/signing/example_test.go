package signing_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/auditbus/auditbus/bus/signing"
	"github.com/cloudevents/sdk-go/v2/event"
)

// A producer signs an event with its Ed25519 key; a consumer that holds
// the public key under the same key id verifies it, and refuses a copy
// whose data was changed.
func Example() {
	pub, priv, _ := ed25519.GenerateKey(nil)
	signer, err := signing.NewSigner("shop-2026", priv, "partitionkey")
	if err != nil {
		panic(err)
	}

	e := event.New()
	e.SetID("order-1001")
	e.SetSource("/shop/checkout")
	e.SetType("com.example.order.created")
	e.SetExtension("partitionkey", "customer-42")
	_ = e.SetData(event.ApplicationJSON, map[string]any{"order": 1001, "total": 25.5})
	if err := signer.Sign(&e); err != nil {
		panic(err)
	}
	fmt.Println("signed extensions:", e.Extensions()[signing.AttrSignedExtensions])

	keys := signing.Keys{"shop-2026": pub}
	keyID, err := signing.Verify(&e, keys)
	fmt.Println("verified by", keyID, err)

	forged := e.Clone()
	_ = forged.SetData(event.ApplicationJSON, map[string]any{"order": 1001, "total": 0.5})
	_, err = signing.Verify(&forged, keys)
	fmt.Println(errors.Is(err, signing.ErrInvalid))
	fmt.Println(err)
	// Output:
	// signed extensions: partitionkey
	// verified by shop-2026 <nil>
	// true
	// signing: verify event "order-1001" from "/shop/checkout": digest: invalid signature: the signature holds, but the event's attributes, data or signed extensions differ from what was signed: it was changed after signing
}
