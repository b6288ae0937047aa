// Package replay publishes events from the audit store again: a replay job
// reads the event versions an audit filter selects, in time order, and
// publishes a copy of each to a destination (a transport topic, a webhook
// or a destination of a route) with its original id, source, time,
// attributes and data bytes, marked with the extensions ExtReplay and
// ExtReplayTime, and records a replayed entry on the original version for
// each copy the destination accepted. Jobs are rate-limited, retry with
// backoff, keep order per partition key, and are checkpointed to a
// directory so that a replay interrupted by a crash resumes where it left
// off (the entries of what it published again are stored once). A redrive
// delivers the versions a destination of a route dead-lettered again, and
// records each delivery as a delivered entry, so that a later redrive no
// longer selects it.
package replay
