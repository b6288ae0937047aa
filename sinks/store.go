package sinks

import (
	"context"
	"errors"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Sentinel errors every Store and the Writer return, wrapped with context.
var (
	// ErrNotFound: Get found no record with that (source, id).
	ErrNotFound = errors.New("sinks: record not found")
	// ErrBadQuery: a query parameter is invalid; the message names it.
	ErrBadQuery = errors.New("sinks: bad query")
	// ErrClosed: the store or writer was used after Close.
	ErrClosed = errors.New("sinks: closed")
	// ErrSchemaTooNew: the store's schema was written by a newer auditbus;
	// starting would risk corrupting it.
	ErrSchemaTooNew = errors.New("sinks: schema newer than this build knows")
	// ErrUnavailable: a flush kept failing after all retries.
	ErrUnavailable = errors.New("sinks: store unavailable")
)

// Record is one audited event plus where it was seen.
type Record struct {
	// Event is the whole CloudEvent; stores keep every attribute, every
	// extension and the data bytes exactly.
	Event event.Event
	// Transport names the bus driver the event came through ("kafka", "amqp",
	// "mem", "http").
	Transport string
	// Topic is the topic, queue or path the event was read from.
	Topic string
	// Partition and Offset locate the event in its source; Offset holds the
	// delivery tag for transports without offsets.
	Partition int
	Offset    int64
	// Route is the name of the route that handled the event, if any.
	Route string
	// Outcome says what became of the event: one of the Outcome constants,
	// or "" when the writer of the record does not know.
	Outcome string
	// Replay is the id of the replay job that published this copy of the
	// event again, or "" for the original. It is part of the record's
	// identity (source, id, replay), so a replayed copy is audited beside
	// the original instead of overwriting it or being dropped as a duplicate.
	Replay string
	// Received is when auditbus took the event from its source.
	Received time.Time
}

// Outcomes a record can carry.
const (
	// OutcomeDelivered: every destination of the route accepted the event.
	OutcomeDelivered = "delivered"
	// OutcomeDeadLettered: at least one destination gave up on the event and
	// it was parked in the route's dead-letter destination.
	OutcomeDeadLettered = "deadlettered"
	// OutcomeFiltered: the route's filter did not match; nothing was sent.
	OutcomeFiltered = "filtered"
	// OutcomeAccepted: the event was taken in (HTTP ingest) and handed to a
	// transport with no route involved.
	OutcomeAccepted = "accepted"
	// OutcomePoison: the message was not a valid CloudEvent; the record keeps
	// what could be read of it and it went to dead letter.
	OutcomePoison = "poison"
)

// Time is the instant a record is indexed under: the event's time, or
// Received when the event has none, so every record sorts somewhere.
func (r *Record) Time() time.Time {
	if t := r.Event.Time(); !t.IsZero() {
		return t
	}
	return r.Received
}

// Page is one page of query results.
type Page struct {
	Records []Record
	// Next is the cursor of the following page, or "" on the last page.
	Next string
}

// Count is the number of records of one type in one time bucket.
type Count struct {
	// Start is the bucket's first instant; the bucket is [Start, Start+Bucket).
	Start time.Time
	Type  string
	N     int64
}

// CountQuery asks for record counts per bucket and type in [From, To).
type CountQuery struct {
	From, To time.Time
	// Bucket is the bucket width; buckets start at From.
	Bucket time.Duration
	// Type filters like Query.Type.
	Type       string
	TypePrefix bool
}

// Validate reports the first bad parameter, wrapping ErrBadQuery.
func (q CountQuery) Validate() error {
	switch {
	case q.From.IsZero():
		return badParam("from", "required")
	case q.To.IsZero():
		return badParam("to", "required")
	case !q.To.After(q.From):
		return badParam("to", "must be after from")
	case q.Bucket <= 0:
		return badParam("bucket", "must be positive")
	}
	return nil
}

// Store keeps audit records. Implementations are safe for concurrent use.
type Store interface {
	// Append stores recs and returns only once they are durable. A record's
	// identity is (source, id, replay); the store keeps one record per
	// identity. When an identity is already stored, the record with the
	// later Received wins (ties keep the stored one), so retrying a failed
	// Append is safe and an outcome recorded later (a route's verdict after
	// the ingest's "accepted", a redrive's "delivered" after
	// "deadlettered") supersedes the earlier one. Within one call, the same
	// rule applies between duplicates.
	Append(ctx context.Context, recs []Record) error
	// Query returns one page of records matching q, ordered by
	// (time, source, id) in q's direction. Paging with Page.Next neither skips
	// nor repeats records that were stored before the first page, however
	// many records are appended meanwhile.
	Query(ctx context.Context, q Query) (Page, error)
	// Get returns the original record (Replay "") with this source and id,
	// or an error wrapping ErrNotFound.
	Get(ctx context.Context, source, id string) (Record, error)
	// Counts returns the non-zero counts per bucket and type, ordered by
	// bucket start then type.
	Counts(ctx context.Context, q CountQuery) ([]Count, error)
	// Close releases the store; later calls fail with ErrClosed.
	Close() error
}

// OriginalsCounter is a Store that counts the original records (Replay "")
// matching a Query's filters, one per identity, without paging through
// them; a Query's cursor, limit and order do not change the count. Both
// stores of this module implement it; replays use it for their totals.
type OriginalsCounter interface {
	CountOriginals(ctx context.Context, q Query) (int64, error)
}
