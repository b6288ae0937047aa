package sinks

import "context"

// Scanner is a Store that reads all of an ascending Query's records faster
// than paging through Query does, by planning many pages per round trip.
// Scan calls fn with q's records after q.Cursor in Query's ascending order,
// about q.PageSize() at a time, and returns once every record was handed
// over or at fn's first error, which it returns. The records are those
// paging through Query would return; a record stored while Scan runs may
// be handed over or not, and may be handed over beside a superseded one
// (a duplicate, never a loss). A descending q is refused with ErrBadQuery.
// o says what of the records the caller needs. The ClickHouse store
// implements it; replays read through it.
type Scanner interface {
	Scan(ctx context.Context, q Query, o ScanOptions, fn func(recs []Record) error) error
}

// ScanOptions say what a scan's caller needs of the records.
type ScanOptions struct {
	// EventsOnly: the caller reads only each record's Event, Replay and
	// Received, so a store may leave Transport, Topic, Partition, Offset,
	// Route and Outcome unset instead of reading them. A replay that is
	// not a redrive publishes the events and nothing else.
	EventsOnly bool
}

// Scan reads q's records as store's Scan does when it is a Scanner, and
// otherwise by paging through Query.
func Scan(ctx context.Context, store Store, q Query, o ScanOptions, fn func(recs []Record) error) error {
	if q.Desc {
		return badParam("order", "a scan reads in ascending order")
	}
	if s, ok := store.(Scanner); ok {
		return s.Scan(ctx, q, o, fn)
	}
	return PageAll(ctx, store, q, fn)
}

// PageAll pages through q with store's Query from q.Cursor on and hands
// each non-empty page's records to fn, until the last page or fn's first
// error.
func PageAll(ctx context.Context, store Store, q Query, fn func(recs []Record) error) error {
	for {
		p, err := store.Query(ctx, q)
		if err != nil {
			return err
		}
		if len(p.Records) > 0 {
			if err := fn(p.Records); err != nil {
				return err
			}
		}
		if p.Next == "" {
			return nil
		}
		q.Cursor = p.Next
	}
}
