// Package replay publishes events from the audit store again: a replay job
// reads the records an audit filter selects, in time order, and publishes a
// copy of each to a destination (a transport topic or a webhook) with its
// original id, source, time, attributes and data bytes, marked with the
// extensions ExtReplay and ExtReplayTime. Jobs are rate-limited, retry with
// backoff, keep order per partition key, and are checkpointed to a
// directory so that a replay interrupted by a crash resumes where it left
// off. A redrive is a replay of a route's dead-lettered events whose
// successful deliveries are audited again as delivered.
package replay
