package signing

import (
	"context"
	"errors"
	"fmt"

	"github.com/auditbus/auditbus/bus"
)

// PublishMiddleware signs every event of every batch published through the
// bus with s, in place (the caller's events carry the signature
// afterwards). It runs after the bus has filled a missing id and time, so
// those are signed too. A batch with an event s cannot sign (one lacking
// an extension s covers) is not published; the error names the event.
func PublishMiddleware(s *Signer) bus.PublishMiddleware {
	return func(next bus.PublishFunc) bus.PublishFunc {
		return func(ctx context.Context, topic string, events []bus.Event) error {
			for i := range events {
				if err := s.Sign(&events[i]); err != nil {
					return fmt.Errorf("auditbus: publish to %q: event #%d: %w", topic, i, err)
				}
			}
			return next(ctx, topic, events)
		}
	}
}

// WithSigner is a bus option that signs every published event with s (see
// PublishMiddleware).
func WithSigner(s *Signer) bus.Option {
	return bus.WithPublishMiddleware(PublishMiddleware(s))
}

// RefuseFunc takes over messages that did not verify. It has the shape of
// bus.SubscribeConfig.OnExhausted, so the subscription's dead-letter
// callback serves for both: msgs holds one message, as it arrived, and err
// is its *VerifyError. Returning nil means it took the message over (it
// parked it in a dead letter, say).
type RefuseFunc func(ctx context.Context, msgs []bus.Message, err error) error

// VerifyHandler returns handler middleware that verifies every event of a
// batch against keys and hands the handler only the verified ones, each as
// Verified returns it (its context attributes, data and signed extensions:
// nothing the signature does not cover).
//
// Each event that does not verify goes to refuse. If refuse is nil, or
// returns an error, the batch fails with that error without reaching the
// handler, and takes the subscription's own poison path: retried up to
// MaxAttempts, then handed whole to its OnExhausted callback (which may
// dead-letter it) or, without one, left unacknowledged while the
// subscription stops. Verification does not change on retry, so a refuse
// that takes its messages over is the way to keep a batch's good events
// flowing. refuse may see a message again if the batch is redelivered.
func VerifyHandler(keys KeySet, refuse RefuseFunc) bus.HandlerMiddleware {
	return func(next bus.Handler) bus.Handler {
		return func(ctx context.Context, msgs []bus.Message) error {
			verified := make([]bus.Message, 0, len(msgs))
			var failed error
			for i := range msgs {
				ev, _, err := Verified(&msgs[i].Event, keys)
				if err == nil {
					m := msgs[i]
					m.Event = ev
					verified = append(verified, m)
					continue
				}
				if refuse == nil {
					failed = errors.Join(failed, err)
					continue
				}
				if rerr := refuse(ctx, msgs[i:i+1], err); rerr != nil {
					return fmt.Errorf("%w; refusing it failed: %w", err, rerr)
				}
			}
			if failed != nil {
				return failed
			}
			if len(verified) == 0 {
				return nil
			}
			return next(ctx, verified)
		}
	}
}

// WithVerifier is a bus option that puts VerifyHandler(keys, refuse) on
// every subscription of the bus. To verify one subscription only, wrap its
// handler: VerifyHandler(keys, refuse)(h).
func WithVerifier(keys KeySet, refuse RefuseFunc) bus.Option {
	return bus.WithHandlerMiddleware(VerifyHandler(keys, refuse))
}
