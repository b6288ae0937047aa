package replay

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/pkg/cehttp"
	"github.com/auditbus/auditbus/pkg/egress"
)

// Target is where a replay publishes.
type Target interface {
	// Publish sends events in order and returns once the target accepted
	// all of them. On error some may have been accepted: a *PartialError
	// says how many, otherwise the job publishes the batch again (which
	// may duplicate, never lose). An error wrapping bus.ErrInvalidEvent or
	// bus.ErrTooLarge, or one cehttp.IsPermanent reports, refuses an event
	// for good; a *bus.EventError's Index, or a *PartialError's, says which.
	Publish(ctx context.Context, events []bus.Event) error
	// String names the target in job listings, errors and the job
	// directory. It must be stable and unique among the targets a
	// Manager's Resolve knows, since a resumed job finds its target by it.
	String() string
}

// PartialError is a Publish that stopped at event Index of the batch: the
// events before it were accepted, Index failed with Err, the rest were not
// sent.
type PartialError struct {
	Index int
	Err   error
}

// Error names the failed event's position and the cause.
func (e *PartialError) Error() string {
	return fmt.Sprintf("event #%d of the batch: %v", e.Index, e.Err)
}

// Unwrap returns the cause.
func (e *PartialError) Unwrap() error { return e.Err }

// TopicTarget publishes to topic on transport t. transport names the
// transport ("kafka", "amqp", "mem") in the target's name,
// "transport:topic", the default name of a route's topic destination.
func TopicTarget(transport string, t bus.Transport, topic string) Target {
	return &topicTarget{name: transport + ":" + topic, t: t, topic: topic}
}

type topicTarget struct {
	name  string
	t     bus.Transport
	topic string
}

func (t *topicTarget) Publish(ctx context.Context, events []bus.Event) error {
	return t.t.Publish(ctx, t.topic, events)
}

func (t *topicTarget) String() string { return t.name }
func (t *topicTarget) isNil() bool    { return t == nil || t.t == nil || t.topic == "" }

// WebhookTarget posts each event to h in the CloudEvents HTTP binary
// content mode, one at a time and in order. Its name is the webhook's URL
// (without any password).
func WebhookTarget(h *cehttp.Webhook) Target { return &webhookTarget{h: h} }

type webhookTarget struct{ h *cehttp.Webhook }

func (w *webhookTarget) Publish(ctx context.Context, events []bus.Event) error {
	for i := range events {
		if err := w.h.Send(ctx, &events[i]); err != nil {
			return &PartialError{Index: i, Err: opaque(w.h.URL(), err)}
		}
	}
	return nil
}

func (w *webhookTarget) String() string { return w.h.URL() }
func (w *webhookTarget) isNil() bool    { return w == nil || w.h == nil }

// opaqueError is a webhook's failure as a job reports it: the status
// code, or a fixed message, and nothing the target sent (its body, a
// redirect's Location) or that tells one network error from another
// (refused or timed out), so a job cannot be used to read or map what
// its target sees. It wraps the failure, for retry decisions.
type opaqueError struct {
	msg string
	err error
}

func (e *opaqueError) Error() string { return e.msg }
func (e *opaqueError) Unwrap() error { return e.err }

func opaque(url string, err error) error {
	var se *cehttp.SendError
	switch {
	case errors.As(err, &se) && se.StatusCode != 0:
		return &opaqueError{msg: fmt.Sprintf("webhook %s answered %d %s", url, se.StatusCode, http.StatusText(se.StatusCode)), err: err}
	case errors.Is(err, egress.ErrDenied):
		return &opaqueError{msg: fmt.Sprintf("webhook %s: its address is not allowed by the egress policy (%s, %s)", url, egress.AllowVar, egress.DenyVar), err: err}
	case errors.As(err, &se):
		return &opaqueError{msg: fmt.Sprintf("webhook %s: no answer (the connection failed or timed out)", url), err: err}
	}
	return err
}

// Named gives t another name, such as the name of the route destination it
// stands for, so that a Manager's Resolve can find it again by that name.
func Named(name string, t Target) Target { return &named{name: name, Target: t} }

type named struct {
	name string
	Target
}

func (n *named) String() string { return n.name }
func (n *named) isNil() bool    { return n == nil || isNil(n.Target) }
