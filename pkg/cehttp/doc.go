// Package cehttp is the CloudEvents HTTP protocol binding of auditbus: it
// decodes the events of an HTTP request and encodes an event into one.
//
// [Decode] reads all three content modes of the binding: binary (ce-*
// headers, Content-Type as datacontenttype, the body as data, byte for
// byte), structured (application/cloudevents+json) and batch
// (application/cloudevents-batch+json). Every event is checked against the
// CloudEvents 1.0 rules; a refused request gets an [*Error] with the HTTP
// status to answer, a stable code and a message naming the input, the rule
// and the fix. A batch is all or nothing: one bad element refuses it whole,
// and the error says which element.
//
// [NewRequest] and [Encode] write an event in binary content mode, with
// attribute values percent-encoded as the binding requires. [Webhook]
// sends events to an HTTP endpoint that way over a shared, tuned
// connection pool, and classifies failures: [IsPermanent] tells a refusal
// that retrying cannot fix from one worth retrying, and [RetryAfter] gives
// the delay a server asked for.
package cehttp
