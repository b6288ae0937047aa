package sinks

import "context"

// Scanner is a Store that reads all of an ascending Query's items faster
// than paging through Query does, by planning many pages per round trip.
// Scan calls fn with q's items after q.Cursor in Query's ascending order,
// about q.PageSize() at a time, and returns once every item was handed
// over or at fn's first error, which it returns. The items are those
// paging through Query would return; a version stored while Scan runs may
// be handed over or not, never twice. A descending q is refused with
// ErrBadQuery.
// o says what of the items the caller needs. The ClickHouse store
// implements it; replays read through it.
type Scanner interface {
	Scan(ctx context.Context, q Query, o ScanOptions, fn func(items []Item) error) error
}

// ScanOptions say what a scan's caller needs of the items.
type ScanOptions struct {
	// EventsOnly: the caller reads only each item's Event, Digest and
	// Time, so a store may leave the trail unread. A replay publishes the
	// events and nothing else.
	EventsOnly bool
}

// Scan reads q's items as store's Scan does when it is a Scanner, and
// otherwise by paging through Query.
func Scan(ctx context.Context, store Store, q Query, o ScanOptions, fn func(items []Item) error) error {
	if q.Desc {
		return badParam("order", "a scan reads in ascending order")
	}
	if s, ok := store.(Scanner); ok {
		return s.Scan(ctx, q, o, fn)
	}
	q.NoTrail = q.NoTrail || o.EventsOnly
	return PageAll(ctx, store, q, fn)
}

// PageAll pages through q with store's Query from q.Cursor on and hands
// each non-empty page's items to fn, until the last page or fn's first
// error.
func PageAll(ctx context.Context, store Store, q Query, fn func(items []Item) error) error {
	for {
		p, err := store.Query(ctx, q)
		if err != nil {
			return err
		}
		if len(p.Items) > 0 {
			if err := fn(p.Items); err != nil {
				return err
			}
		}
		if p.Next == "" {
			return nil
		}
		q.Cursor = p.Next
	}
}
