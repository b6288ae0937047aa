package sqlite

import (
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/ledgertree"
	"github.com/transparency-dev/merkle/rfc6962"
)

// chunk is a run of prepared records, numbered from first in the Append.
type chunk struct {
	first int
	recs  []encoded
	err   error
}

// encoded is a record with what its rows need computed ahead: its digest
// (set by Prepare), its event's attributes as stored, its entries' keys.
type encoded struct {
	r     *sinks.Record
	attrs []byte
	keys  [][16]byte
}

// encodeChunks prepares recs into chunks of chunkRecs on out, until done,
// until a record fails, or until quit closes.
func encodeChunks(recs []sinks.Record, out chan<- chunk, quit <-chan struct{}) {
	defer close(out)
	for start := 0; start < len(recs); start += chunkRecs {
		end := min(start+chunkRecs, len(recs))
		c := chunk{first: start, recs: make([]encoded, end-start)}
		for i := start; i < end && c.err == nil; i++ {
			if err := encode(&c.recs[i-start], &recs[i]); err != nil {
				c.err = fmt.Errorf("record %d of %d: %w", i+1, len(recs), err)
			}
		}
		select {
		case out <- c:
		case <-quit:
			return
		}
		if c.err != nil {
			return
		}
	}
}

func encode(er *encoded, r *sinks.Record) error {
	if err := r.Prepare(); err != nil {
		return err
	}
	// The data goes in its own column so its bytes never pass through a
	// JSON re-encoding; a shallow copy keeps the caller's event intact.
	e := r.Event
	e.DataEncoded, e.DataBase64 = nil, false
	attrs, err := e.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encode event %q from %q: %w", e.ID(), e.Source(), err)
	}
	er.r, er.attrs = r, attrs
	er.keys = make([][16]byte, len(r.Entries))
	for i := range r.Entries {
		er.keys[i] = r.Entries[i].Key()
	}
	return nil
}

// appendVersion adds the record's version row to a's rows and returns
// about how many bytes it takes.
func (er *encoded) appendVersion(a *appender, conflict bool) int {
	r := er.r
	e := &r.Event
	at := r.Time()
	if at.IsZero() {
		at = a.now
	}
	stored := a.now
	if len(r.Entries) > 0 && !r.Entries[0].Time.IsZero() {
		stored = r.Entries[0].Time
	}
	var data any // NULL for no data, not an empty blob
	if e.DataEncoded != nil {
		data = e.DataEncoded
	}
	source, id, typ, subject := e.Source(), e.ID(), e.Type(), e.Subject()
	a.versions = append(a.versions, source, id, r.Digest[:], at.UnixNano(), stored.UnixNano(), typ, subject,
		er.attrs, data, e.DataBase64, conflict)
	// The identity and digest are in the table and three indexes.
	return len(er.attrs) + len(e.DataEncoded) + 4*(len(source)+len(id)+len(r.Digest)) + 2*len(typ) + len(subject) + 64
}

// appendEntry adds the row of the record's entry i, at the log's next
// position, to a's rows and returns about how many bytes it takes.
func (er *encoded) appendEntry(a *appender, i int) int {
	en := &er.r.Entries[i]
	at := en.Time
	if at.IsZero() {
		at = a.now
	}
	a.entries = append(a.entries, int64(a.size), er.keys[i][:], at.UnixNano(), en.Kind, en.Source, en.ID, en.Digest[:],
		en.Transport, en.Topic, int64(en.Partition), en.Offset, en.Request, en.Principal, en.Route, en.Destination,
		int64(en.Attempts), en.Error, en.Replay, en.TraceID, en.SpanID, en.Signature)
	// The leaf of the entry as it is stored: position, time in
	// nanoseconds, the fields as given.
	leaf := *en
	leaf.Log, leaf.Seq, leaf.Time = a.log, a.size, time.Unix(0, at.UnixNano())
	a.leaf = ledgertree.AppendLeaf(append(a.leaf[:0], rfc6962.RFC6962LeafHashPrefix), &leaf)
	h := sha256.Sum256(a.leaf)
	a.leaves = append(a.leaves, h[:]...)
	return 2*(len(en.Source)+len(en.ID)+len(en.Digest)+len(en.Route)+len(en.Destination)+len(en.Kind)) +
		len(en.Transport) + len(en.Topic) + len(en.Request) + len(en.Principal) + len(en.Error) + len(en.Replay) +
		len(en.TraceID) + len(en.SpanID) + len(en.Signature) + 3*len(a.log) + 96
}
