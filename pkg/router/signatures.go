package router

import (
	"context"
	"fmt"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/pkg/refusal"
	"github.com/auditbus/auditbus/pkg/signers"
	"github.com/auditbus/auditbus/sinks"
)

// SignatureChecker checks an event's signature against the daemon's signer
// registry; *signers.Registry is one.
type SignatureChecker interface {
	Check(ev *bus.Event) signers.Result
}

// RefusedError is Ingest's error when an HTTP-fed route that requires
// signatures refuses events of a request: nothing of the request was
// delivered, and each refused event is recorded with a refused entry.
type RefusedError struct {
	// Route is the route that refused.
	Route string
	// Index is the position of the first refused event in the request,
	// Refused how many were refused, and Events how many the request held.
	Index, Refused, Events int
	// Err is the first refused event's refusal.
	Err *refusal.Error
}

// Error names the route, the first refused event and the rule.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("route %q refused %d of the request's %d events, so none was delivered; event #%d: %v",
		e.Route, e.Refused, e.Events, e.Index, e.Err)
}

// Unwrap returns the refusal.
func (e *RefusedError) Unwrap() error { return e.Err }

// checked is what checking a batch's signatures found.
type checked struct {
	// sigs holds each message's result; nil when there is no registry.
	sigs []signers.Result
	// refused holds the refusal of each message the route refuses; nil
	// when it refuses none.
	refused []*refusal.Error
	n       int // how many refused
}

// entry is message i's Signature text, "" when nothing was checked.
func (c *checked) entry(i int) string {
	if c.sigs == nil {
		return ""
	}
	return c.sigs[i].Entry
}

// refusal is message i's refusal, or nil.
func (c *checked) refusal(i int) *refusal.Error {
	if c.refused == nil {
		return nil
	}
	return c.refused[i]
}

// check verifies each message once against the signer registry. A route
// that requires signatures refuses the messages that are not signed by a
// key allowed for their source and type. Without a registry it does
// nothing, so routes of a daemon without signers pay nothing.
func (rt *route) check(msgs []bus.Message) checked {
	c := rt.r.o.Signatures
	if c == nil {
		return checked{}
	}
	out := checked{sigs: make([]signers.Result, len(msgs))}
	for i := range msgs {
		out.sigs[i] = c.Check(&msgs[i].Event)
		if !rt.cfg.RequireSignatures || out.sigs[i].OK() {
			continue
		}
		if out.refused == nil {
			out.refused = make([]*refusal.Error, len(msgs))
		}
		out.refused[i] = out.sigs[i].Refusal(&msgs[i].Event, fmt.Sprintf("route %q requires signatures", rt.cfg.Name))
		out.n++
	}
	return out
}

// refusedEntry is the refused entry of message m, received at start: who
// offered it, where, and why it was refused; dest names the dead letter
// it was parked in, if any.
func (rt *route) refusedEntry(at sinks.Entry, c *checked, i int, start time.Time, principal, dest string) sinks.Entry {
	e := at
	e.Kind, e.Time, e.Principal, e.Destination = sinks.KindRefused, start, principal, dest
	e.Error, e.Signature = c.refused[i].Error(), c.sigs[i].Entry
	return e
}

// refuseRequest records the refused events of an HTTP request, counts them
// and returns the *RefusedError Ingest answers with; the other events of
// the request are neither delivered nor recorded, as for any request
// refused as a whole.
func (rt *route) refuseRequest(ctx context.Context, msgs []bus.Message, from reception, c *checked, start time.Time) error {
	recs := make([]sinks.Record, 0, c.n)
	first := -1
	for i := range msgs {
		if c.refusal(i) == nil {
			continue
		}
		if first < 0 {
			first = i
		}
		m := &msgs[i]
		at := sinks.Entry{Transport: from.transport, Offset: m.Offset, Request: from.request, Route: rt.cfg.Name}
		recs = append(recs, sinks.Record{Event: m.Event, Entries: []sinks.Entry{rt.refusedEntry(at, c, i, start, from.principal, "")}})
	}
	if err := rt.write(ctx, recs); err != nil {
		return err
	}
	rt.countRefused(from.transport, c)
	rt.r.o.Logger.Warn("events refused", "route", rt.cfg.Name, "transport", from.transport, "principal", from.principal,
		"refused", c.n, "events", len(msgs), "first", c.refused[first].Error())
	return &RefusedError{Route: rt.cfg.Name, Index: first, Refused: c.n, Events: len(msgs), Err: c.refused[first]}
}

// parkRefused parks the refused events of a broker batch in the route's
// dead letter, each with the refusal as its reason. Without a dead letter
// the batch stays unacknowledged at the source, as poison does.
func (rt *route) parkRefused(ctx context.Context, msgs []bus.Message, c *checked) error {
	first := c.refused[0]
	for _, r := range c.refused {
		if r != nil {
			first = r
			break
		}
	}
	if rt.dead == nil {
		return fmt.Errorf("route %q: %d events refused (first: %v) and the route has no dead letter; they stay unacknowledged at the source",
			rt.cfg.Name, c.n, first)
	}
	parked := make([]bus.Event, 0, c.n)
	for i := range msgs {
		if r := c.refusal(i); r != nil {
			e := msgs[i].Event.Clone()
			e.SetExtension(ExtDeadLetterReason, r.Error())
			e.SetExtension(ExtDeadLetterRoute, rt.cfg.Name)
			parked = append(parked, e)
		}
	}
	if err := rt.park(ctx, parked); err != nil {
		return fmt.Errorf("route %q: dead-letter %d refused events: %w", rt.cfg.Name, len(parked), err)
	}
	rt.r.o.Logger.Warn("events refused and dead-lettered", "route", rt.cfg.Name, "transport", rt.cfg.Source.Transport,
		"topic", rt.cfg.Source.Topic, "events", len(parked), "first", first.Error())
	return nil
}

// countRefused counts c's refusals by reason.
func (rt *route) countRefused(transport string, c *checked) {
	if rt.r.o.Refusals == nil {
		return
	}
	for _, r := range c.refused {
		if r != nil {
			rt.r.o.Refusals.Count(transport, r.Reason, 1)
		}
	}
}
