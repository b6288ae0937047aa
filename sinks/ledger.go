package sinks

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"go.opentelemetry.io/otel/trace"
)

// Kinds of ledger entries: what happened to an event version.
const (
	// KindReceived: auditbus took the version from a source (HTTP ingest
	// or a broker topic); the entry names the transport, the position in
	// the source and the principal that sent it.
	KindReceived = "received"
	// KindFiltered: a route's filter did not match; nothing was sent.
	KindFiltered = "filtered"
	// KindDelivered: one destination of a route accepted the version.
	KindDelivered = "delivered"
	// KindDeadLettered: one destination of a route gave up on the version,
	// which was parked in the route's dead letter; Error says why.
	KindDeadLettered = "deadlettered"
	// KindPoison: a message that was not a valid CloudEvent; the version
	// keeps what could be read of it and Error says why.
	KindPoison = "poison"
	// KindReplayed: a replay job published the version again to a
	// destination.
	KindReplayed = "replayed"
	// KindRefused: auditbus refused the version when it was offered (a
	// missing or bad signature, a source, type, topic or route its
	// principal may not use); the entry names the principal and the
	// transport, and Error says which rule refused it. The version is
	// kept as evidence of the attempt.
	KindRefused = "refused"
)

// Kinds lists every entry kind, in the order a trail usually shows them.
var Kinds = []string{KindReceived, KindRefused, KindFiltered, KindDelivered, KindDeadLettered, KindPoison, KindReplayed}

// ValidKind reports whether k is one of Kinds.
func ValidKind(k string) bool { return slices.Contains(Kinds, k) }

// Digest is the SHA-256 of an event's canonical encoding (see
// DigestEvent): with (source, id) it names one version of an event.
type Digest [sha256.Size]byte

// String is "sha256:" and the digest in lower-case hex.
func (d Digest) String() string { return "sha256:" + hex.EncodeToString(d[:]) }

// IsZero reports whether d is unset.
func (d Digest) IsZero() bool { return d == Digest{} }

// ParseDigest reads a Digest's String form.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 2*len(d) {
		return d, fmt.Errorf("digest %q: want sha256: and 64 hex digits", s)
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return Digest{}, fmt.Errorf("digest %q: %w", s, err)
	}
	return d, nil
}

// Entry is one thing that happened to one event version. Entries are
// appended to a log and never changed: (Log, Seq) is the entry's position,
// assigned by the store when it first stores the entry.
type Entry struct {
	// Log names the writer (one daemon instance) whose log holds the
	// entry, and Seq its position there, counting up from 1 without gaps.
	// The store sets both; what a caller puts there is ignored.
	Log string
	Seq uint64
	// Time is when auditbus recorded what happened (the server's clock,
	// not the event's time attribute, which is the producer's claim).
	// Zero means now, as the store sees it.
	Time time.Time
	// Kind is one of the Kind constants.
	Kind string
	// Source, ID and Digest name the version. A Record's Append fills them
	// in from the record's event.
	Source, ID string
	Digest     Digest
	// Transport ("http", "kafka", "amqp", "mem"), Topic, Partition and
	// Offset locate the version in the source it was received from, or the
	// message a route took it from; Offset holds the delivery tag for
	// transports without offsets.
	Transport string
	Topic     string
	Partition int
	Offset    int64
	// Request identifies one HTTP request that carried the version, for
	// hops with no position in a broker, so that two posts of the same
	// event are two receptions while a retried write of one is not.
	Request string
	// Principal is who handed the version over: the JWT subject for HTTP,
	// "transport:topic" for a broker.
	Principal string
	// Route and Destination name the route and the destination of a
	// filtered, delivered, dead-lettered, poison or replayed entry.
	Route       string
	Destination string
	// Attempts is how many delivery attempts a delivered or dead-lettered
	// entry took.
	Attempts int
	// Error is why a version was dead-lettered or was poison.
	Error string
	// Replay is the replay job that published the version again (replayed
	// entries, and the delivered entries of a redrive).
	Replay string
	// TraceID and SpanID are the W3C trace and span the hop happened
	// under, in lower-case hex, so that an auditor can go from an entry to
	// its trace; empty when the hop was not traced. They are not part of
	// the entry's Key (a redelivery under another trace is the same hop)
	// nor of its ledger leaf: they point into tracing, which is not
	// evidence.
	TraceID, SpanID string
	// Signature is what checking the version's signature against the
	// daemon's signer registry found, for received and refused entries:
	// "verified: KEYID", "unsigned" or "invalid: REASON" (see
	// SignatureVerified and the others); empty when nothing was checked
	// (no signer registry, or another kind of entry). It is evidence, so
	// it is part of the entry's ledger leaf (auditbus-leaf-v2 when it is
	// set) but not of its Key: the same hop checked again against another
	// registry is still the same hop.
	Signature string
}

// What Entry.Signature starts with.
const (
	// SignatureVerified: a key of the signer registry signed the version
	// and may sign for its source and type; the key id follows.
	SignatureVerified = "verified"
	// SignatureUnsigned: the version carries no signature.
	SignatureUnsigned = "unsigned"
	// SignatureInvalid: the signature is malformed, does not match the
	// version, was made by a key the registry does not hold, or by one
	// that may not sign for the version's source or type; the reason
	// follows.
	SignatureInvalid = "invalid"
)

// SignatureResult is the text of Entry.Signature: status, then ": " and
// detail when there is one.
func SignatureResult(status, detail string) string {
	if detail == "" {
		return status
	}
	return status + ": " + detail
}

// TraceIDs are sc's trace and span ids as Entry.TraceID and SpanID hold
// them, or empty when sc is not valid (the hop was not traced).
func TraceIDs(sc trace.SpanContext) (traceID, spanID string) {
	if !sc.IsValid() {
		return "", ""
	}
	return sc.TraceID().String(), sc.SpanID().String()
}

// Key is the entry's identity: the same hop recorded twice (a retried
// flush, a redelivered message, a resumed replay) has the same Key, and a
// store keeps only the first. It covers the version, the kind, where the
// version came from (an AMQP delivery tag aside) and where it went, and the
// replay job; not Time, Log, Seq, Attempts, Principal or Error, which a
// repeat of the hop may see differently.
func (e *Entry) Key() [16]byte {
	// The fields of a usual entry fit the buffer on the stack, so a key
	// costs no allocation on the hot path.
	var buf [256]byte
	b := append(buf[:0], "auditbus-entry-v1"...)
	b = appendField(b, e.Source)
	b = appendField(b, e.ID)
	b = append(b, e.Digest[:]...)
	for _, s := range [...]string{e.Kind, e.Transport, e.Topic, e.Request, e.Route, e.Destination, e.Replay} {
		b = appendField(b, s)
	}
	b = binary.AppendVarint(b, int64(e.Partition))
	if e.Transport != "amqp" {
		// An AMQP delivery tag counts deliveries on one channel: a message
		// redelivered after a restart has another, so it is not part of
		// the hop's identity there. The same content received again from
		// the same queue by the same route is one hop.
		b = binary.AppendVarint(b, e.Offset)
	}
	sum := sha256.Sum256(b)
	return [16]byte(sum[:16])
}

// Validate reports what is wrong with an entry a caller wants appended.
func (e *Entry) Validate() error {
	if !ValidKind(e.Kind) {
		return fmt.Errorf("entry kind %q is not one of %s", e.Kind, strings.Join(Kinds, ", "))
	}
	if e.Attempts < 0 {
		return fmt.Errorf("entry %s: attempts %d is negative", e.Kind, e.Attempts)
	}
	return nil
}

// Record is what one hop adds to the audit store: an event version and the
// entries of what happened to it. The store keeps the version once, however
// many records carry it, and appends each entry it has not seen (by Key).
type Record struct {
	// Event is the whole CloudEvent; stores keep every attribute, every
	// extension and the data bytes exactly.
	Event event.Event
	// Digest is DigestEvent(&Event); Append computes it when it is zero.
	Digest Digest
	// Entries are appended in order; their Source, ID and Digest are set
	// from Event.
	Entries []Entry
}

// Prepare computes the record's digest if it is unset and points every
// entry at the record's version. Stores call it at the start of Append.
func (r *Record) Prepare() error {
	if r.Digest.IsZero() {
		d, err := DigestEvent(&r.Event)
		if err != nil {
			return err
		}
		r.Digest = d
	}
	for i := range r.Entries {
		en := &r.Entries[i]
		if err := en.Validate(); err != nil {
			return fmt.Errorf("event %q from %q: %w", r.Event.ID(), r.Event.Source(), err)
		}
		en.Source, en.ID, en.Digest = r.Event.Source(), r.Event.ID(), r.Digest
	}
	return nil
}

// Time is the instant a version is indexed under: the event's time, or
// the time of the record's first entry when the event has none.
func (r *Record) Time() time.Time {
	if t := r.Event.Time(); !t.IsZero() {
		return t
	}
	for _, en := range r.Entries {
		if !en.Time.IsZero() {
			return en.Time
		}
	}
	return time.Time{}
}

// Item is one event version as a query returns it, with its trail.
type Item struct {
	Event  event.Event
	Digest Digest
	// Conflict: another version of the same (source, id) with other
	// content was stored before this one.
	Conflict bool
	// Time is the instant the version is indexed under (Record.Time when
	// it was first stored).
	Time time.Time
	// Trail is every entry of the version, from every log, ordered by
	// (Time, Log, Seq). Empty when the query asked for events only.
	Trail []Entry
}

// Conflict is a version stored beside an earlier one of the same identity.
type Conflict struct {
	Source, ID string
	// Digest is the new version's, Earlier the digest of a version stored
	// before it.
	Digest, Earlier Digest
}

// AppendResult is what an Append did besides storing.
type AppendResult struct {
	// Versions is how many versions were new to the store.
	Versions int
	// Entries is how many entries were appended.
	Entries int
	// Duplicates is how many entries were not appended because an entry
	// with the same Key was already stored (or came earlier in the call).
	Duplicates int
	// Conflicts lists the new versions that conflict with an earlier one.
	Conflicts []Conflict
}

// Add adds o's counts to r.
func (r *AppendResult) Add(o AppendResult) {
	r.Versions += o.Versions
	r.Entries += o.Entries
	r.Duplicates += o.Duplicates
	r.Conflicts = append(r.Conflicts, o.Conflicts...)
}

// LogInfo describes one log of the ledger.
type LogInfo struct {
	Name string
	// Size is the number of entries, which is also the last Seq.
	Size uint64
}

// ErrNoLog: Entries was asked for a log the store does not hold.
var ErrNoLog = errors.New("sinks: no such log")

// appendField appends s with its length in front, so that no two lists
// of fields encode alike.
func appendField[T string | []byte](b []byte, s T) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// DefaultLogName is the log a store appends to when none is configured:
// the host's name (a pod's name on Kubernetes), so replicas sharing one
// store each write their own log, or "auditbus" when the host has none.
func DefaultLogName() string {
	if h, err := os.Hostname(); err == nil && ValidLogName(h) == nil {
		return h
	}
	return "auditbus"
}

// ValidLogName reports what is wrong with a log name: it must be 1 to 128
// characters of letters, digits and . _ - : /
func ValidLogName(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("log name %q: want 1 to 128 characters", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-:/", c)) {
			return fmt.Errorf("log name %q: %q is not allowed (letters, digits and . _ - : / are)", name, c)
		}
	}
	return nil
}
