// Package signers is the daemon's signer registry: which public key, under
// which key id, may sign CloudEvents of which sources and types. It reads
// the registry file (AUDITBUS_SIGNERS_FILE) strictly, and checks an event
// once: its DSSE signature (package bus/signing) and whether the key that
// made it may speak for the event's source and type. The result is what
// the event's received ledger entry records (sinks.Entry.Signature), and,
// on a route that requires signatures, why the event is refused.
package signers

import (
	"crypto"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/auditbus/auditbus/bus"
	"github.com/auditbus/auditbus/bus/signing"
	"github.com/auditbus/auditbus/pkg/refusal"
	"github.com/auditbus/auditbus/sinks"
)

// Any, as a source or type prefix, lets a key sign for every source or
// every type.
const Any = "*"

// Registry holds the signers of a registry file. Its methods are safe for
// concurrent use; it never changes once loaded.
type Registry struct {
	keys map[string]*signer
}

// signer is one key of the registry.
type signer struct {
	id             string
	line           int
	pub            crypto.PublicKey
	pemKey         string // the key's PKIX DER, to find a key given twice
	sources, types []string
	verified       string // the entry text of an event it verified
}

// PublicKey returns the key registered under keyID: a Registry is a
// signing.KeySet.
func (r *Registry) PublicKey(keyID string) (crypto.PublicKey, bool) {
	s, ok := r.keys[keyID]
	if !ok {
		return nil, false
	}
	return s.pub, true
}

// KeyIDs lists the registry's key ids, sorted.
func (r *Registry) KeyIDs() []string {
	ids := make([]string, 0, len(r.keys))
	for id := range r.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Result is what checking one event found.
type Result struct {
	// Entry is the text of the received entry's Signature:
	// "verified: KEYID", "unsigned" or "invalid: REASON: DETAIL".
	Entry string
	// KeyID is the key that signed the event, when one verified.
	KeyID string
	// Reason is empty when the event is verified by a key allowed to sign
	// it, else the refusal reason a route requiring signatures gives:
	// refusal.SignatureMissing, SignatureInvalid, SignerUnknown or
	// SignerNotAllowed.
	Reason string
	// Detail says in words what is wrong; empty when Reason is.
	Detail string
}

// OK reports whether the event is signed by a key allowed to sign it.
func (r Result) OK() bool { return r.Reason == "" }

// Refusal is the refusal of the event by a route requiring signatures,
// whose rule is described by rule (e.g. `route "orders" requires
// signatures`); nil when the event is OK.
func (r Result) Refusal(ev *bus.Event, rule string) *refusal.Error {
	if r.OK() {
		return nil
	}
	return &refusal.Error{Reason: r.Reason, Rule: fmt.Sprintf("%s: event %q from %q: %s", rule, ev.ID(), ev.Source(), r.Detail)}
}

// unsigned is the Result of every unsigned event.
var unsigned = Result{Entry: sinks.SignatureUnsigned, Reason: refusal.SignatureMissing,
	Detail: "it carries no signature (no dssematerial extension); sign it with a key of the signer registry"}

// Check verifies ev's signature against the registry's keys and, when a
// key verifies it, whether that key may sign for ev's source and type. It
// does not change ev.
func (r *Registry) Check(ev *bus.Event) Result {
	id, err := signing.Verify(ev, r)
	if err != nil {
		return failed(err)
	}
	s := r.keys[id]
	src, typ := ev.Source(), ev.Type()
	if !matches(s.sources, src) {
		return notAllowed(s, fmt.Sprintf("key %q may sign sources %s, not %q", id, list(s.sources), src))
	}
	if !matches(s.types, typ) {
		return notAllowed(s, fmt.Sprintf("key %q may sign types %s, not %q", id, list(s.types), typ))
	}
	return Result{Entry: s.verified, KeyID: id}
}

// failed is the Result of a signature that did not verify.
func failed(err error) Result {
	ve, ok := errors.AsType[*signing.VerifyError](err)
	switch {
	case errors.Is(err, signing.ErrUnsigned):
		return unsigned
	case !ok:
		return invalid(refusal.SignatureInvalid, err.Error())
	case errors.Is(err, signing.ErrUnknownKey):
		return invalid(refusal.SignerUnknown, ve.Check+": "+ve.Reason)
	default:
		return invalid(refusal.SignatureInvalid, ve.Check+": "+ve.Reason)
	}
}

func invalid(reason, detail string) Result {
	return Result{Entry: sinks.SignatureResult(sinks.SignatureInvalid, reason+": "+detail), Reason: reason, Detail: detail}
}

func notAllowed(s *signer, detail string) Result {
	r := invalid(refusal.SignerNotAllowed, detail)
	r.KeyID = s.id
	return r
}

// matches reports whether one of prefixes matches s.
func matches(prefixes []string, s string) bool {
	for _, p := range prefixes {
		if p == Any || strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func list(prefixes []string) string {
	q := make([]string, len(prefixes))
	for i, p := range prefixes {
		q[i] = strconv.Quote(p)
	}
	return strings.Join(q, ", ")
}
