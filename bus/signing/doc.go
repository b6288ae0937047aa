// Package signing signs and verifies CloudEvents as the CloudEvents
// extension "Verifiable CloudEvents with DSSE" defines (cloudevents/spec,
// cloudevents/extensions/verifiability.md).
//
// A producer's [Signer] computes the extension's verification material, a
// SHA-256 digest chain over the event's context attributes, its data and
// the extensions chosen for signing, signs it as a DSSE v1.0.2 envelope of
// payload type [PayloadType] and sets two extension attributes on the
// event: [AttrMaterial] ("dssematerial", the Base64 envelope) and
// [AttrSignedExtensions] ("signedextattrs", the signed extensions' names).
// A consumer's [Verify] checks both against a [KeySet] of public keys by
// key id; [Verified] also returns the event the spec says a consumer should
// handle, holding only what the signature covers.
//
// Keys are Ed25519 or ECDSA P-256. ECDSA signatures are written in ASN.1
// DER, as go-securesystemslib and most DSSE tools write them; both DER and
// the raw r||s form (IEEE P1363) of the spec's test vectors verify.
//
// [PublishMiddleware] and [WithSigner] sign every event a [bus.Bus]
// publishes; [VerifyHandler] and [WithVerifier] hand a subscription's
// handler only verified events and refuse the others through the
// subscription's OnExhausted path.
//
// The digest covers the event's time to the second, as the spec says: a
// time's fraction of a second is not signed.
package signing
