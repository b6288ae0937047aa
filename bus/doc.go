// Package bus publishes and subscribes CloudEvents over any broker through
// one API.
//
// Events are CloudEvents 1.0 ([event.Event] from the CloudEvents Go SDK).
// A [Transport] moves them: the embedded in-process transport (package
// bus/mem) or a broker driver. A [Bus] sits in front of a Transport: it
// validates every event against the CloudEvents spec and a size limit, fills
// a missing id (a time-ordered UUIDv7) and time, and runs the middleware that
// metrics, tracing and signing plug into.
//
// # Delivery
//
// Every consumer group of a topic receives every event published to it after
// the group was created (fan-out); consumers that share a group share its
// events (competing consumers). Handlers receive events in batches. A batch
// is acknowledged only when its handler returns nil; an error makes the
// transport deliver the same batch again after a backoff, up to
// [SubscribeConfig.MaxAttempts] attempts. Delivery is at-least-once: a
// handler must tolerate duplicates, which an event's (source, id) identifies.
// Events sharing a partition key (the "partitionkey" extension) are handled
// in publish order on transports that keep order.
//
// # Errors
//
// Errors name the operation, the topic and, for a bad event, its position,
// id and the offending attribute. They wrap the sentinels [ErrInvalidEvent],
// [ErrTooLarge], [ErrClosed], [ErrNoRoute] and [ErrMaxAttempts] for use with
// [errors.Is].
package bus
