package sinks

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors every Store and the Writer return, wrapped with context.
var (
	// ErrNotFound: Get found no version with that (source, id).
	ErrNotFound = errors.New("sinks: event not found")
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

// Page is one page of query results.
type Page struct {
	Items []Item
	// Next is the cursor of the following page, or "" on the last page.
	Next string
}

// Count is the number of event versions of one type in one time bucket.
type Count struct {
	// Start is the bucket's first instant; the bucket is [Start, Start+Bucket).
	Start time.Time
	Type  string
	N     int64
}

// CountQuery asks for version counts per bucket and type in [From, To)
// of the versions' indexed time (Item.Time).
type CountQuery struct {
	From, To time.Time
	// Bucket is the bucket width; buckets start at From.
	Bucket time.Duration
	// Type filters like Query.Type.
	Type       string
	TypePrefix bool
	// Within narrows the counts like Query.Within.
	Within Within
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

// Store is the audit ledger: event versions, stored once each, and the
// entries of what happened to them, appended and never changed.
// Implementations are safe for concurrent use.
type Store interface {
	// Append stores recs and returns only once they are durable. Each
	// record's version (source, id, digest) is stored once: a version
	// already stored is left as it is, and a new version of a (source, id)
	// stored before with other content is kept beside it, marked as a
	// conflict and listed in the result. Each entry is appended to the
	// store's log with the next Seq unless an entry with the same Key is
	// already stored or came earlier in recs (a duplicate, counted in the
	// result). So retrying an Append, whole or after part of it was
	// stored, stores nothing twice and leaves no hole in the log.
	Append(ctx context.Context, recs []Record) (AppendResult, error)
	// Query returns one page of versions matching q, ordered by (time,
	// source, id, digest) in q's direction, each with its whole trail
	// unless q.NoTrail. Paging with Page.Next neither skips nor repeats
	// versions that were stored before the first page, however many are
	// appended meanwhile.
	Query(ctx context.Context, q Query) (Page, error)
	// Get returns every version of the event (source, id), in the order
	// they were first stored, each with its trail, or an error wrapping
	// ErrNotFound.
	Get(ctx context.Context, source, id string) ([]Item, error)
	// Counts returns the non-zero version counts per bucket and type,
	// ordered by bucket start then type.
	Counts(ctx context.Context, q CountQuery) ([]Count, error)
	// Logs lists the logs of the ledger with their sizes, by name.
	Logs(ctx context.Context) ([]LogInfo, error)
	// Entries returns up to limit (at most MaxLimit) entries of log with
	// Seq greater than afterSeq, in Seq order; ErrNoLog when the store has
	// no entry in that log.
	Entries(ctx context.Context, log string, afterSeq uint64, limit int) ([]Entry, error)
	// Retain removes every version and entry stored on a day (UTC) that
	// ends before cutoff, whole days only. It is the only way anything is
	// ever removed, and returns the number of days removed.
	Retain(ctx context.Context, cutoff time.Time) (int, error)
	// Close releases the store; later calls fail with ErrClosed.
	Close() error
}

// VersionCounter is a Store that counts the versions matching a Query's
// filters without paging through them; a Query's cursor, limit and order
// do not change the count. Both stores of this module implement it;
// replays use it for their totals.
type VersionCounter interface {
	CountVersions(ctx context.Context, q Query) (int64, error)
}

// OutcomeCounter is a Store that counts what routes did: the entries
// with a route (received by a route, filtered, delivered, deadlettered,
// poison, replayed to a route's destination) per bucket of the entries'
// time and per kind, in Count.Type. CountQuery.Type does not apply. Both stores of this module
// implement it; the explorer's overview stacks its chart by outcome with
// it.
type OutcomeCounter interface {
	CountOutcomes(ctx context.Context, q CountQuery) ([]Count, error)
}
