package clickhouse

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/auditbus/auditbus/sinks"
	"github.com/cloudevents/sdk-go/v2/event"
)

// versionInsert are the versions table's columns in the order
// versionRows fills them.
const versionInsert = "hour, type, time_ns, source, id, digest, subject, attrs, data, data_flags, stored_ns, added_ns, conflict"

// versionRows holds version rows column-wise, the shape the driver
// appends fastest.
type versionRows struct {
	hour                             []uint32
	typ, source, id, digest, subject []string
	timeNs, stored, added            []int64
	attrs, data                      [][]byte
	flags, conflict                  []uint8
}

// encodedVersion is a version encoded for its row but for when it is
// added and whether it conflicts.
type encodedVersion struct {
	k              vkey
	ev             *event.Event
	timeNs, stored int64
	attrs          []byte
}

// encode fills in v's attrs unless they are: the event as the SDK's
// structured JSON without data, whose bytes go in their own column so
// they never pass through a JSON re-encoding.
func (v *encodedVersion) encode() error {
	if v.attrs != nil {
		return nil
	}
	c := *v.ev // a shallow copy keeps the caller's event intact
	c.DataEncoded, c.DataBase64 = nil, false
	attrs, err := c.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encode event %q from %q: %w", c.ID(), c.Source(), err)
	}
	v.attrs = attrs
	return nil
}

// newVersionRows holds up to n rows before it grows.
func newVersionRows(n int) versionRows {
	return versionRows{
		hour: make([]uint32, 0, n), typ: make([]string, 0, n), source: make([]string, 0, n), id: make([]string, 0, n),
		digest: make([]string, 0, n), subject: make([]string, 0, n), timeNs: make([]int64, 0, n), stored: make([]int64, 0, n),
		added: make([]int64, 0, n), attrs: make([][]byte, 0, n), data: make([][]byte, 0, n), flags: make([]uint8, 0, n),
		conflict: make([]uint8, 0, n),
	}
}

func (c *versionRows) add(v *encodedVersion, added int64, conflict bool) {
	var flags, confl uint8
	if v.ev.DataEncoded != nil {
		flags |= flagHasData
	}
	if v.ev.DataBase64 {
		flags |= flagBase64
	}
	if conflict {
		confl = 1
	}
	c.hour = append(c.hour, hourOf(v.timeNs))
	c.typ = append(c.typ, v.ev.Type())
	c.timeNs = append(c.timeNs, v.timeNs)
	c.source = append(c.source, v.k.source)
	c.id = append(c.id, v.k.id)
	c.digest = append(c.digest, string(v.k.digest[:]))
	c.subject = append(c.subject, v.ev.Subject())
	c.attrs = append(c.attrs, v.attrs)
	c.data = append(c.data, v.ev.DataEncoded)
	c.flags = append(c.flags, flags)
	c.stored = append(c.stored, v.stored)
	c.added = append(c.added, added)
	c.conflict = append(c.conflict, confl)
}

func (c *versionRows) len() int { return len(c.hour) }

func (c *versionRows) all() []any {
	return []any{c.hour, c.typ, c.timeNs, c.source, c.id, c.digest, c.subject, c.attrs, c.data, c.flags, c.stored, c.added, c.conflict}
}

// entryInsert are the entries table's columns in the order entryRows
// fills them.
const entryInsert = "log, seq, time_ns, hour, kind, source, id, digest, key, transport, topic, `partition`, `offset`, " +
	"request, principal, route, destination, attempts, error, replay"

// fullEntryInsert adds the columns of migrations 0005 and 0006, which
// appends write (entryInsert is what the ledger migration writes, before
// them).
const fullEntryInsert = entryInsert + ", trace_id, span_id, signature"

// entryRows holds entry rows column-wise.
type entryRows struct {
	log                                 []string
	seq                                 []uint64
	timeNs, partition, offset           []int64
	hour, attempts                      []uint32
	kind, source, id, digest, key       []string
	transport, topic, request, princ    []string
	route, destination, errText, replay []string
	traceID, spanID, signature          []string
}

// newEntryRows holds up to n rows before it grows.
func newEntryRows(n int) entryRows {
	str := func() []string { return make([]string, 0, n) }
	return entryRows{
		log: str(), seq: make([]uint64, 0, n), timeNs: make([]int64, 0, n), partition: make([]int64, 0, n), offset: make([]int64, 0, n),
		hour: make([]uint32, 0, n), attempts: make([]uint32, 0, n), kind: str(), source: str(), id: str(), digest: str(), key: str(),
		transport: str(), topic: str(), request: str(), princ: str(), route: str(), destination: str(), errText: str(), replay: str(),
		traceID: str(), spanID: str(), signature: str(),
	}
}

func (c *entryRows) add(en *sinks.Entry, key [16]byte) {
	t := en.Time.UnixNano()
	c.log = append(c.log, en.Log)
	c.seq = append(c.seq, en.Seq)
	c.timeNs = append(c.timeNs, t)
	c.hour = append(c.hour, hourOf(t))
	c.kind = append(c.kind, en.Kind)
	c.source = append(c.source, en.Source)
	c.id = append(c.id, en.ID)
	c.digest = append(c.digest, string(en.Digest[:]))
	c.key = append(c.key, string(key[:]))
	c.transport = append(c.transport, en.Transport)
	c.topic = append(c.topic, en.Topic)
	c.partition = append(c.partition, int64(en.Partition))
	c.offset = append(c.offset, en.Offset)
	c.request = append(c.request, en.Request)
	c.princ = append(c.princ, en.Principal)
	c.route = append(c.route, en.Route)
	c.destination = append(c.destination, en.Destination)
	c.attempts = append(c.attempts, uint32(min(en.Attempts, 1<<32-1)))
	c.errText = append(c.errText, en.Error)
	c.replay = append(c.replay, en.Replay)
	c.traceID = append(c.traceID, en.TraceID)
	c.spanID = append(c.spanID, en.SpanID)
	c.signature = append(c.signature, en.Signature)
}

func (c *entryRows) len() int { return len(c.log) }

func (c *entryRows) all() []any {
	return []any{c.log, c.seq, c.timeNs, c.hour, c.kind, c.source, c.id, c.digest, c.key, c.transport, c.topic,
		c.partition, c.offset, c.request, c.princ, c.route, c.destination, c.attempts, c.errText, c.replay}
}

// full is all and the columns fullEntryInsert adds.
func (c *entryRows) full() []any { return append(c.all(), c.traceID, c.spanID, c.signature) }

// insert writes cols (of the named columns, in order) into table with one
// batch insert.
func insert(ctx context.Context, conn driver.Conn, table, columns string, cols []any) error {
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+columns+")")
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	defer func() { _ = batch.Close() }()
	for i, col := range cols {
		if err := batch.Column(i).Append(col); err != nil {
			return fmt.Errorf("column %d: %w", i, err)
		}
	}
	return batch.Send()
}

// pending is what one Append wants to store, worked out before it asks
// the server anything.
type pending struct {
	versions []encodedVersion // the batch's distinct versions, first seen first, not encoded yet
	entries  []*sinks.Entry   // every entry, in order
	keys     [][16]byte       // their keys
	// varied is true when two of versions have one identity: only then
	// can a version of the batch conflict with another of the batch.
	varied bool
	// first has the digest of each identity's first version in the batch.
	first map[ident]sinks.Digest
	// repeats is false when no two entries of the batch can have one key:
	// each version is in one record, whose entries' keys differ.
	repeats bool
}

// encode encodes the versions of p that l does not find stored: only
// those are inserted, and a record whose version is stored (a delivery
// after its receipt, a replay) costs no encoding.
func (p *pending) encode(l lookup) error {
	for i := range p.versions {
		v := &p.versions[i]
		if !l.stored[idOf(v.k)].has(v.k.digest) {
			if err := v.encode(); err != nil {
				return err
			}
		}
	}
	return nil
}

// plan prepares recs (see sinks.Record.Prepare), fills in the entries'
// zero times with now and lists each distinct version once.
func plan(recs []sinks.Record, now time.Time) (pending, error) {
	n := 0
	for i := range recs {
		n += len(recs[i].Entries)
	}
	p := pending{versions: make([]encodedVersion, 0, len(recs)), entries: make([]*sinks.Entry, 0, n), keys: make([][16]byte, 0, n)}
	// The other versions of identities with several go in more.
	first := make(map[ident]sinks.Digest, len(recs))
	p.first = first
	var more map[vkey]bool
	for i := range recs {
		r := &recs[i]
		if err := r.Prepare(); err != nil {
			return p, err
		}
		at := len(p.keys)
		for j := range r.Entries {
			en := &r.Entries[j]
			if en.Time.IsZero() {
				en.Time = now
			}
			p.entries = append(p.entries, en)
			p.keys = append(p.keys, en.Key())
		}
		p.repeats = p.repeats || repeated(p.keys[at:])
		k := vkey{r.Event.Source(), r.Event.ID(), r.Digest}
		if d, ok := first[idOf(k)]; !ok {
			first[idOf(k)] = k.digest
		} else if d == k.digest {
			p.repeats = true // this version's entries are in two records
			continue
		} else {
			if more == nil {
				more = map[vkey]bool{}
			}
			n := len(more)
			if more[k] = true; len(more) == n {
				p.repeats = true
				continue
			}
			p.varied = true
		}
		t, stored := r.Time(), now
		if t.IsZero() {
			t = now
		}
		if len(r.Entries) > 0 {
			stored = r.Entries[0].Time
		}
		p.versions = append(p.versions, encodedVersion{k: k, ev: &r.Event, timeNs: t.UnixNano(), stored: stored.UnixNano()})
	}
	return p, nil
}

// repeated reports whether keys, one record's, may hold a key twice: it
// compares them pair by pair, up to a record's usual few entries.
func repeated(keys [][16]byte) bool {
	if len(keys) > 8 {
		return true
	}
	for i := range keys {
		if slices.Contains(keys[i+1:], keys[i]) {
			return true
		}
	}
	return false
}

// Append stores recs: each version not stored yet, flagged when another
// version of its (source, id) was stored before, then each entry whose key
// is new, numbered on from the log's last seq. An Append asks the server
// what is stored (see lookUp) while others insert, then inserts in two
// turns: its versions, one append at a time (versionsMu), then its
// entries, one append at a time (entriesMu), taken before the versions
// turn is left so that appends insert entries in the order they inserted
// versions. One append's entries are inserted while the next one's
// versions are: the server writes both, and their views, at once. Within
// an append the versions land before the entries, so an entry's version is
// always stored, and two appends never take the same key or seq. After a
// failed one, the next first reads the log's last seq back from the server
// (see recoverLog), so an append that landed although it failed is neither
// repeated nor followed by a hole.
func (s *Store) Append(ctx context.Context, recs []sinks.Record) (sinks.AppendResult, error) {
	var res sinks.AppendResult
	ctx, done, err := s.begin(ctx)
	if err != nil {
		return res, err
	}
	defer done()
	if len(recs) == 0 {
		return res, nil
	}
	now := time.Now().UTC()
	// The server looks the batch's identities up while plan hashes it.
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answer := s.lookUpAhead(lctx, recs)
	p, err := plan(recs, now)
	if err != nil {
		cancel()
		_, _ = answer()
		return res, fmt.Errorf("%s: append: %w", s.name, err)
	}
	l, err := answer()
	if err == nil {
		l, err = s.lookUpKeys(ctx, &p, l)
	}
	if err != nil {
		return res, fmt.Errorf("%s: append %d records: %w", s.name, len(recs), err)
	}
	if err := p.encode(l); err != nil {
		return res, fmt.Errorf("%s: append: %w", s.name, err)
	}
	s.versionsMu.Lock()
	if l, err = s.currentVersions(ctx, &p, l); err == nil {
		res, err = s.insertVersions(ctx, p, l, now)
	}
	if err != nil {
		// A failed insert may have landed: lookups that began before ask
		// again.
		s.epoch.Add(1)
		s.versionsMu.Unlock()
		return sinks.AppendResult{}, fmt.Errorf("%s: append %d records: %w", s.name, len(recs), err)
	}
	s.entriesMu.Lock()
	s.versionsMu.Unlock()
	defer s.entriesMu.Unlock()
	if s.dirty {
		if err := s.recoverLog(ctx); err != nil {
			return sinks.AppendResult{}, fmt.Errorf("%s: append %d records: %w", s.name, len(recs), err)
		}
	}
	if l, err = s.currentKeys(ctx, &p, l, res.Versions == len(p.versions)); err == nil {
		err = s.insertEntries(ctx, p, l, &res)
	}
	if err != nil {
		s.dirty = true
		s.epoch.Add(1)
		return sinks.AppendResult{}, fmt.Errorf("%s: append %d records: %w", s.name, len(recs), err)
	}
	return res, nil
}

// insertVersions is Append's versions turn (it holds versionsMu), with l's
// versions current: it inserts the versions of p not stored yet, records
// them as the latest versions commit and returns what it added.
func (s *Store) insertVersions(ctx context.Context, p pending, l lookup, now time.Time) (sinks.AppendResult, error) {
	var res sinks.AppendResult
	stored := l.stored
	added := make([]vkey, 0, len(p.versions))
	vr := newVersionRows(len(p.versions))
	for i := range p.versions {
		v := &p.versions[i]
		known := stored[idOf(v.k)]
		if known.has(v.k.digest) {
			continue
		}
		if err := v.encode(); err != nil { // stored when p.encode looked, removed by Retain since
			return res, err
		}
		conflict := len(known.digests) > 0
		if conflict {
			res.Conflicts = append(res.Conflicts, sinks.Conflict{Source: v.k.source, ID: v.k.id, Digest: v.k.digest, Earlier: known.digests[0]})
		}
		vr.add(v, s.stamp(now), conflict)
		added = append(added, v.k)
		if p.varied { // a later version of the batch may have this one's identity
			known.digests = append(known.digests, v.k.digest)
			stored[idOf(v.k)] = known
		}
	}
	res.Versions = vr.len()
	if vr.len() > 0 {
		if err := insert(ctx, s.conn, s.n.vers, versionInsert, vr.all()); err != nil {
			return res, fmt.Errorf("insert %d versions: %w", vr.len(), err)
		}
	}
	s.versionCommits.add(added)
	return res, nil
}

// insertEntries is Append's entries turn (it holds entriesMu), with l's
// keys current: it numbers the entries of p whose keys are new on from
// the log's last seq, inserts them, records their keys as the latest keys
// commit and counts them in res.
func (s *Store) insertEntries(ctx context.Context, p pending, l lookup, res *sinks.AppendResult) error {
	fresh := make([]int, 0, len(p.entries))
	keys := p.keys // the fresh entries' keys
	if have := l.have; len(have) > 0 || p.repeats {
		if have == nil {
			have = make(map[[16]byte]bool, len(p.keys))
		}
		keys = make([][16]byte, 0, len(p.entries))
		// It marks the batch's keys too, in case one repeats.
		for i, k := range p.keys {
			n := len(have)
			if have[k] = true; len(have) == n {
				res.Duplicates++
				continue
			}
			fresh = append(fresh, i)
			keys = append(keys, k)
		}
	} else { // none is stored and none repeats: every entry is fresh
		for i := range p.keys {
			fresh = append(fresh, i)
		}
	}
	// Numbered day by day: each insert below fills one day partition,
	// which the server writes as one part, so an insert lands whole or not
	// at all, and the inserts land in seq order.
	slices.SortStableFunc(fresh, func(a, b int) int { return cmp.Compare(dayOf(p.entries[a]), dayOf(p.entries[b])) })
	seq := s.seq
	for len(fresh) > 0 {
		day := dayOf(p.entries[fresh[0]])
		n := 1
		for n < len(fresh) && dayOf(p.entries[fresh[n]]) == day {
			n++
		}
		er := newEntryRows(n)
		for _, i := range fresh[:n] {
			en := p.entries[i]
			seq++
			en.Log, en.Seq = s.cfg.Log, seq
			er.add(en, p.keys[i])
		}
		if err := insert(ctx, s.conn, s.n.entries, fullEntryInsert, er.full()); err != nil {
			return fmt.Errorf("insert %d entries: %w", n, err)
		}
		s.seq = seq
		res.Entries += n
		fresh = fresh[n:]
	}
	s.keyCommits.add(keys)
	return nil
}

// stamp is the added_ns of a version added at now: now in nanoseconds,
// kept increasing within the store so that its versions order as added.
// The caller holds versionsMu.
func (s *Store) stamp(now time.Time) int64 {
	s.added = max(now.UnixNano(), s.added+1)
	return s.added
}

// dayOf is the day partition of an entry, in days since 1970.
func dayOf(en *sinks.Entry) uint32 { return hourOf(en.Time.UnixNano()) / 24 }

// recoverLog makes the store's view of its log the server's after a failed
// append: it reads the log's last seq back, and when entries of the
// failed append landed (their seqs are past the one the store knew), it
// writes any of their rows the views missed into the trails, keys and
// logs tables, so the next append finds them.
func (s *Store) recoverLog(ctx context.Context) error {
	last, err := s.lastSeq(ctx)
	if err != nil {
		return err
	}
	if last > s.seq {
		var lo, hi uint32
		if err := s.conn.QueryRow(ctx, "SELECT min(hour), max(hour) FROM "+s.n.entries+" WHERE log = ? AND seq > ? AND seq <= ?",
			s.cfg.Log, s.seq, last).Scan(&lo, &hi); err != nil {
			return fmt.Errorf("recover log %q: %w", s.cfg.Log, err)
		}
		landed := " WHERE log = ? AND seq > ? AND seq <= ? AND hour >= ? AND hour <= ?"
		args := []any{s.cfg.Log, s.seq, last, lo, hi}
		for _, st := range []struct{ table, cols string }{{s.n.trails, "*"}, {s.n.keys, "key, hour, log, seq"}} {
			q := "INSERT INTO " + st.table + " SELECT " + st.cols + " FROM " + s.n.entries + landed +
				" AND seq NOT IN (SELECT seq FROM " + st.table + landed + ")"
			if err := s.conn.Exec(ctx, q, append(args, args...)...); err != nil {
				return fmt.Errorf("recover log %q: complete %s: %w", s.cfg.Log, st.table, err)
			}
		}
		if err := s.recountLog(ctx, lo, hi); err != nil {
			return err
		}
		if err := s.conn.Exec(ctx, "INSERT INTO "+s.n.logs+" (log, seq) SELECT ?, ?", s.cfg.Log, last); err != nil {
			return fmt.Errorf("recover log %q: %w", s.cfg.Log, err)
		}
		s.seq = last
	}
	s.dirty = false
	s.epoch.Add(1) // lookups that began before may miss what it wrote
	return nil
}

// lastSeq reads the last seq of the store's log from the server: the
// highest of its entries, or of the logs table once retention dropped
// them.
func (s *Store) lastSeq(ctx context.Context) (uint64, error) {
	var a, b uint64
	err := s.conn.QueryRow(ctx, "SELECT (SELECT max(seq) FROM "+s.n.entries+" WHERE log = ?), (SELECT max(seq) FROM "+s.n.logs+" WHERE log = ?)",
		s.cfg.Log, s.cfg.Log).Scan(&a, &b)
	if err != nil {
		return 0, fmt.Errorf("read the last seq of log %q: %w", s.cfg.Log, err)
	}
	return max(a, b), nil
}
