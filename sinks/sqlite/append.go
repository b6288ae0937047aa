package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/ledgertree"
)

// Append stores recs in one transaction: each new version once, each
// entry new by Key at the next position of the store's log. A failed
// Append stores nothing, so a retry leaves no hole in the log.
func (s *Store) Append(ctx context.Context, recs []sinks.Record) (sinks.AppendResult, error) {
	if s.closed.Load() {
		return sinks.AppendResult{}, sinks.ErrClosed
	}
	if len(recs) == 0 {
		return sinks.AppendResult{}, nil
	}
	// Records are digested and encoded on another goroutine, a chunk or
	// two ahead of the inserts, so that work runs beside SQLite's.
	// Append waits for it to end: it writes to recs (Prepare), which are
	// the caller's again once Append returns.
	chunks := make(chan chunk, 2)
	quit, encoded := make(chan struct{}), make(chan struct{})
	defer func() {
		close(quit)
		<-encoded
	}()
	go func() {
		defer close(encoded)
		encodeChunks(recs, chunks, quit)
	}()

	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return sinks.AppendResult{}, sinks.ErrClosed
	}
	if err := s.ckpt.keepUp(ctx); err != nil {
		return sinks.AppendResult{}, fmt.Errorf("%s: append %d records: %w", s, len(recs), err)
	}
	if err := s.writer(ctx); err != nil {
		return sinks.AppendResult{}, err
	}
	a := appender{w: s.w, log: s.log, now: time.Now().UTC(), total: len(recs),
		known: map[[2]string][]sinks.Digest{}, before: map[[2]string]int{},
		keys: map[[16]byte]bool{}, looked: map[sinks.Digest]bool{}}
	err := s.w.conn.Raw(func(dc any) error {
		c, ok := dc.(driver.ConnBeginTx)
		if !ok {
			return errors.New("driver cannot begin with a context")
		}
		// The statements run without ctx's cancellation: given a
		// cancellable context, the driver starts a goroutine per statement
		// to interrupt it. ctx is checked once per chunk instead.
		a.run = context.WithoutCancel(ctx)
		tx, err := c.BeginTx(a.run, driver.TxOptions{})
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		if err := a.append(ctx, chunks); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit %d records: %w", len(recs), err)
		}
		return nil
	})
	s.broke(err)
	if err != nil {
		return sinks.AppendResult{}, fmt.Errorf("%s: %w", s, err)
	}
	s.ckpt.appended(a.bytes)
	return a.res, nil
}

// writer opens the writing connection again when the last one broke; the
// caller holds wmu.
func (s *Store) writer(ctx context.Context) error {
	if s.w != nil {
		return nil
	}
	w, err := openWriter(ctx, s.db, s.log, s.sync)
	if err != nil {
		return fmt.Errorf("%s: writing connection: %w", s, err)
	}
	s.w = w
	return nil
}

// broke closes the writing connection when err says it broke, for the
// next write to open another; the caller holds wmu.
func (s *Store) broke(err error) {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		s.w.close()
		s.w = nil
	}
}

// appender is the state of one Append inside its transaction.
type appender struct {
	w     *writer
	run   context.Context
	log   string
	now   time.Time
	total int // records in the Append
	// known holds the digests of every version of each (source, id) met
	// so far, stored before (in the order stored) or by this Append.
	known map[[2]string][]sinks.Digest
	// before is how many of known's digests of an identity were stored
	// before this Append.
	before map[[2]string]int
	// keys holds the entry keys appended by this Append, and the stored
	// keys of the versions in looked.
	keys   map[[16]byte]bool
	looked map[sinks.Digest]bool
	// size is the log's last seq; sized tells it was read.
	size  uint64
	sized bool
	res   sinks.AppendResult
	bytes int // about what the rows add to the database
	// leaves are the leaf hashes of the entries appended, in seq order,
	// for level 0 of the log's Merkle tree; leaf is the scratch buffer
	// one is encoded in.
	leaves []byte
	leaf   []byte
	// counts is what the Append adds to the per-minute counts.
	counts tally

	versions, entries []any // rows of the chunk being stored
}

// append stores every chunk and records the log's new size.
func (a *appender) append(ctx context.Context, chunks <-chan chunk) error {
	for c := range chunks {
		if c.err != nil {
			return c.err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("append %d records: %w", a.total, err)
		}
		if err := a.chunk(&c); err != nil {
			return err
		}
	}
	if err := a.counts.store(a.run, a.w); err != nil {
		return err
	}
	if a.res.Entries == 0 {
		return nil
	}
	if _, err := a.w.setSize.(driver.StmtExecContext).ExecContext(a.run, named(a.log, int64(a.size))); err != nil {
		return fmt.Errorf("record the size of log %q: %w", a.log, err)
	}
	return a.storeLeaves()
}

// storeLeaves adds the leaf hashes of the entries appended to level 0 of
// the log's Merkle tree, in the same transaction, so that the tree's
// builder never reads the entries back: in runs cut where an index is a
// multiple of ledgertree.TileWidth, as the builder cuts them. When level 0
// does not end right before this Append's first entry (a log older than
// the tree, whose leaves the builder is still hashing) it leaves them to
// the builder.
func (a *appender) storeLeaves() error {
	n := uint64(len(a.leaves) / sinks.HashSize)
	first := a.size - n
	end, err := a.w.levelEnd(a.run, a.log, 0)
	if err != nil {
		return fmt.Errorf("read the tree of log %q: %w", a.log, err)
	}
	if uint64(end) != first {
		return nil
	}
	ins := a.w.insertTree.(driver.StmtExecContext)
	for at, b := first, a.leaves; len(b) > 0; {
		k := min(uint64(len(b)/sinks.HashSize), ledgertree.TileWidth-at%ledgertree.TileWidth)
		if _, err := ins.ExecContext(a.run, named(a.log, int64(0), int64(at), int64(at+k), b[:k*sinks.HashSize])); err != nil {
			return fmt.Errorf("store the tree of log %q: %w", a.log, err)
		}
		at, b = at+k, b[k*sinks.HashSize:]
	}
	return nil
}

// chunk stores one chunk: it looks up the versions and entry keys the
// store already holds, then inserts what is new.
func (a *appender) chunk(c *chunk) error {
	if err := a.lookUpVersions(c); err != nil {
		return err
	}
	a.versions, a.entries = a.versions[:0], a.entries[:0]
	// Entries of versions stored before this Append may be stored too.
	var maybe []*sinks.Record
	for i := range c.recs {
		er := &c.recs[i]
		r := er.r
		id := [2]string{r.Event.Source(), r.Event.ID()}
		prev := a.known[id]
		if at := indexDigest(prev, r.Digest); at >= 0 {
			if at < a.before[id] && len(r.Entries) > 0 && !a.looked[r.Digest] {
				a.looked[r.Digest] = true
				maybe = append(maybe, r)
			}
			continue
		}
		if len(prev) > 0 {
			a.res.Conflicts = append(a.res.Conflicts, sinks.Conflict{Source: id[0], ID: id[1], Digest: r.Digest, Earlier: prev[0]})
		}
		a.known[id] = append(prev, r.Digest)
		a.res.Versions++
		a.bytes += er.appendVersion(a, len(prev) > 0)
		a.counts.version(r, a.now, len(prev) > 0)
	}
	if err := a.lookUpKeys(maybe); err != nil {
		return err
	}
	for i := range c.recs {
		er := &c.recs[i]
		for j := range er.r.Entries {
			k := er.keys[j]
			if a.keys[k] {
				a.res.Duplicates++
				continue
			}
			if err := a.nextSeq(); err != nil {
				return err
			}
			a.keys[k] = true
			a.res.Entries++
			a.bytes += er.appendEntry(a, j)
			a.counts.entry(&er.r.Entries[j], a.now)
		}
	}
	if err := a.w.versions.insert(a.run, a.versions); err != nil {
		return fmt.Errorf("insert versions of records %d to %d of %d, from event %q of %q: %w",
			c.first+1, c.first+len(c.recs), a.total, c.recs[0].r.Event.ID(), c.recs[0].r.Event.Source(), err)
	}
	if err := a.w.entries.insert(a.run, a.entries); err != nil {
		return fmt.Errorf("insert entries of records %d to %d of %d, from event %q of %q: %w",
			c.first+1, c.first+len(c.recs), a.total, c.recs[0].r.Event.ID(), c.recs[0].r.Event.Source(), err)
	}
	return nil
}

// nextSeq moves the log's size on by one, reading it first if need be.
func (a *appender) nextSeq() error {
	if !a.sized {
		n, err := a.w.logSize(a.run, a.log)
		if err != nil {
			return fmt.Errorf("read the size of log %q: %w", a.log, err)
		}
		a.size, a.sized = n, true
	}
	a.size++
	return nil
}

// lookUpVersions reads the digests of the stored versions of the chunk's
// identities that this Append has not met yet.
func (a *appender) lookUpVersions(c *chunk) error {
	var ids [][2]string
	for i := range c.recs {
		r := c.recs[i].r
		id := [2]string{r.Event.Source(), r.Event.ID()}
		if _, ok := a.known[id]; !ok {
			a.known[id] = nil
			ids = append(ids, id)
		}
	}
	for start := 0; start < len(ids); start += lookupIDs {
		group := ids[start:min(start+lookupIDs, len(ids))]
		args := make([]driver.NamedValue, 0, 2*lookupIDs)
		for i := range lookupIDs {
			id := group[min(i, len(group)-1)] // the last one again fills the statement
			args = append(args, driver.NamedValue{Ordinal: 2*i + 1, Value: id[0]}, driver.NamedValue{Ordinal: 2*i + 2, Value: id[1]})
		}
		err := a.w.query(a.run, a.w.versionsOf, args, func(row []driver.Value) {
			id := [2]string{row[0].(string), row[1].(string)}
			var d sinks.Digest
			copy(d[:], row[2].([]byte))
			if indexDigest(a.known[id], d) < 0 {
				a.known[id] = append(a.known[id], d)
				a.before[id]++
			}
		})
		if err != nil {
			return fmt.Errorf("look up the versions of event %q of %q and %d more: %w", group[0][1], group[0][0], len(group)-1, err)
		}
	}
	return nil
}

// lookUpKeys adds the stored entry keys of the versions of recs to a's
// keys, so that their entries count as duplicates.
func (a *appender) lookUpKeys(recs []*sinks.Record) error {
	for start := 0; start < len(recs); start += lookupVersions {
		group := recs[start:min(start+lookupVersions, len(recs))]
		args := make([]driver.NamedValue, 0, 3*lookupVersions)
		for i := range lookupVersions {
			r := group[min(i, len(group)-1)] // the last one again fills the statement
			args = append(args, driver.NamedValue{Ordinal: 3*i + 1, Value: r.Event.Source()},
				driver.NamedValue{Ordinal: 3*i + 2, Value: r.Event.ID()}, driver.NamedValue{Ordinal: 3*i + 3, Value: r.Digest[:]})
		}
		err := a.w.query(a.run, a.w.keysStored, args, func(row []driver.Value) {
			var k [16]byte
			copy(k[:], row[0].([]byte))
			a.keys[k] = true
		})
		if err != nil {
			return fmt.Errorf("look up the entries of event %q of %q and %d more: %w", group[0].Event.ID(), group[0].Event.Source(), len(group)-1, err)
		}
	}
	return nil
}

// indexDigest is the index of d in ds, or -1.
func indexDigest(ds []sinks.Digest, d sinks.Digest) int {
	for i, x := range ds {
		if x == d {
			return i
		}
	}
	return -1
}

// named numbers vs as a statement's arguments.
func named(vs ...any) []driver.NamedValue {
	args := make([]driver.NamedValue, len(vs))
	for i, v := range vs {
		args[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return args
}
