package router

import (
	"context"
	"fmt"
	"time"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// Poison is a message a transport could not read as a CloudEvent.
type Poison struct {
	// Transport, Topic and Group say where it was read; they pick the route.
	Transport, Topic, Group string
	// Partition and Offset locate it, where the transport has them.
	Partition int
	Offset    int64
	// ID identifies the message stably across redeliveries (e.g. topic,
	// partition and offset, or a digest of the body), so that a redelivered
	// poison message is the version already recorded, not a new one.
	ID string
	// Payload is the message body as read.
	Payload []byte
	// Reason says why it is not a CloudEvent.
	Reason error
}

// Poison parks a message that is not a CloudEvent in the dead letter of
// the route reading it, as an event of type PoisonType whose data is the
// raw payload and whose deadletterreason says why, and records it with a
// poison entry (where it was read, the route and the reason). The event
// has no time attribute, so that a redelivery of the message makes the
// same version; its recorded time is the entry's. It returns an error (so the transport keeps the
// message) when no route reads that source, the route has no dead letter,
// or the dead letter or audit store is unreachable.
func (r *Router) Poison(ctx context.Context, p Poison) error {
	var rt *route
	for _, c := range r.routes {
		s := c.cfg.Source
		if !s.HTTP && s.Transport == p.Transport && s.Topic == p.Topic && (p.Group == "" || s.Group == p.Group) {
			rt = c
			break
		}
	}
	if rt == nil {
		return fmt.Errorf("poison message from %s topic %q (group %q): no route reads it", p.Transport, p.Topic, p.Group)
	}
	e := event.New()
	e.SetID(p.ID)
	e.SetSource("/auditbus/poison/" + p.Transport + "/" + p.Topic)
	e.SetType(PoisonType)
	_ = e.SetData("application/octet-stream", p.Payload)
	reason := "not a CloudEvent"
	if p.Reason != nil {
		reason = p.Reason.Error()
	}
	e.SetExtension(ExtDeadLetterReason, reason)
	e.SetExtension(ExtDeadLetterRoute, rt.cfg.Name)
	if rt.dead == nil {
		return fmt.Errorf("route %q: poison message %s: the route has no dead letter; it stays unacknowledged", rt.cfg.Name, p.ID)
	}
	if err := rt.park(ctx, []bus.Event{e}); err != nil {
		return fmt.Errorf("route %q: dead-letter poison message %s: %w", rt.cfg.Name, p.ID, err)
	}
	now := time.Now().UTC()
	rec := sinks.Record{Event: e, Entries: []sinks.Entry{{
		Kind: sinks.KindPoison, Time: now, Transport: p.Transport, Topic: p.Topic, Partition: p.Partition, Offset: p.Offset,
		Route: rt.cfg.Name, Error: reason,
	}}}
	if err := rt.write(ctx, []sinks.Record{rec}); err != nil {
		return err
	}
	rt.r.o.Metrics.finished(rt.cfg.Name, map[string]int{sinks.KindPoison: 1}, now)
	r.o.Logger.Warn("poison message dead-lettered", "route", rt.cfg.Name, "transport", p.Transport, "topic", p.Topic, "id", p.ID, "reason", reason)
	return nil
}
