package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/auditbus/auditbus/sinks"
)

// An Append asks the server which of its versions and entry keys are
// stored before it takes its turn to insert, so that one Append's
// lookups run while another inserts. What the appends that committed in
// between stored, the lookup may have missed: the store keeps the
// versions and the keys of its last recentCommits commits of each in
// memory and adds those to the lookup when its turn comes (currentVersions,
// currentKeys). A lookup that began before a failed append, or before the
// recovery after one, is asked again in turn: what a failed append stored
// is known only to the server.

// recentCommits is how many commits' versions, and keys, the store keeps
// for lookups that began before them. The Writer runs two flushers, so
// one commit at most falls between an Append's lookup and its turn.
const recentCommits = 16

// ident is an event's identity, (source, id).
type ident struct{ source, id string }

func idOf(k vkey) ident { return ident{k.source, k.id} }

// knownVersions are the digests of an identity's stored versions, the
// first stored first.
type knownVersions struct{ digests []sinks.Digest }

func (k knownVersions) has(d sinks.Digest) bool { return slices.Contains(k.digests, d) }

// lookup is what was stored of an Append's versions and entry keys, as
// of the store's commit counts of versions and keys, and its failure
// count epoch, when it began.
type lookup struct {
	vgen, kgen, epoch uint64
	stored            map[ident]knownVersions
	have              map[[16]byte]bool
}

// commits are the last recentCommits commits of one stage of appends
// (versions, or entry keys), each numbered; gen is the last one's number.
// The stage's mutex guards recent and changes gen; gen is read without
// it when a lookup begins.
type commits[T any] struct {
	gen    atomic.Uint64
	recent []commit[T]
}

// commit is what one successful stage of an append stored, and its number.
type commit[T any] struct {
	gen  uint64
	what []T
}

// add records what as the latest commit.
func (c *commits[T]) add(what []T) {
	gen := c.gen.Load() + 1
	if len(c.recent) == recentCommits {
		c.recent = slices.Delete(c.recent, 0, 1)
	}
	c.recent = append(c.recent, commit[T]{gen: gen, what: what})
	c.gen.Store(gen)
}

// since calls fn with what each commit after gen stored, or returns false
// when the oldest of those is no longer kept.
func (c *commits[T]) since(gen uint64, fn func(what []T)) bool {
	if len(c.recent) > 0 && c.recent[0].gen > gen+1 {
		return false
	}
	for i := range c.recent {
		if c.recent[i].gen > gen {
			fn(c.recent[i].what)
		}
	}
	return true
}

// lookUp asks the server which of p's versions are stored, then which
// keys of the entries of those versions: an entry is inserted only once
// its version is stored (by the same Append or an earlier one), so the
// entries of a version the server does not have are new, and a batch of
// new events asks only one question.
func (s *Store) lookUp(ctx context.Context, p *pending) (lookup, error) {
	ids := make([]ident, len(p.versions))
	for i := range p.versions {
		ids[i] = idOf(p.versions[i].k)
	}
	l, err := s.lookUpVersions(ctx, ids)
	if err != nil {
		return l, err
	}
	return s.lookUpKeys(ctx, p, l)
}

// lookUpVersions begins a lookup: which versions of the identities ids
// are stored. It needs no digest, so Append asks it while it works out
// its batch's digests and keys (see lookUpAhead).
func (s *Store) lookUpVersions(ctx context.Context, ids []ident) (lookup, error) {
	// Read before asking: a commit counted here returned before the
	// questions were sent, so the server's answers include it.
	l := lookup{vgen: s.versionCommits.gen.Load(), kgen: s.keyCommits.gen.Load(), epoch: s.epoch.Load()}
	var err error
	l.stored, err = s.storedVersions(ctx, ids)
	return l, err
}

// lookUpAhead asks lookUpVersions for the identities of recs in a
// goroutine and returns what waits for its answer. The identities are
// read before it returns, so the caller may go on to prepare recs.
func (s *Store) lookUpAhead(ctx context.Context, recs []sinks.Record) func() (lookup, error) {
	ids := make([]ident, len(recs))
	for i := range recs {
		ids[i] = ident{recs[i].Event.Source(), recs[i].Event.ID()}
	}
	type answer struct {
		l   lookup
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		l, err := s.lookUpVersions(ctx, ids)
		ch <- answer{l, err}
	}()
	return func() (lookup, error) {
		a := <-ch
		return a.l, a.err
	}
}

// lookUpKeys completes l, begun by lookUpVersions for p's identities:
// which keys of p's entries of stored versions are stored.
func (s *Store) lookUpKeys(ctx context.Context, p *pending, l lookup) (lookup, error) {
	var err error
	var keys [][16]byte
	for i, en := range p.entries {
		if l.stored[ident{en.Source, en.ID}].has(en.Digest) {
			keys = append(keys, p.keys[i])
		}
	}
	var versions []vkey
	if len(keys) > 0 {
		for i := range p.versions {
			if k := p.versions[i].k; l.stored[idOf(k)].has(k.digest) {
				versions = append(versions, k)
			}
		}
	}
	l.have, err = s.storedKeys(ctx, versions, keys)
	return l, err
}

// currentVersions makes l's versions current at the caller's turn to
// insert versions (it holds versionsMu): it adds the versions the commits
// since l began stored, or, when l began before a failure or a recovery,
// or before the oldest commit the store still keeps, asks the server
// again.
func (s *Store) currentVersions(ctx context.Context, p *pending, l lookup) (lookup, error) {
	if l.epoch != s.epoch.Load() {
		return s.lookUp(ctx, p)
	}
	ok := s.versionCommits.since(l.vgen, func(vs []vkey) {
		for _, v := range vs {
			if _, ours := p.first[idOf(v)]; !ours {
				continue // l is read for p's identities only
			}
			known := l.stored[idOf(v)]
			if !known.has(v.digest) {
				known.digests = append(known.digests, v.digest)
				l.stored[idOf(v)] = known
			}
		}
	})
	if !ok {
		return s.lookUp(ctx, p)
	}
	return l, nil
}

// currentKeys makes l's keys current at the caller's turn to insert
// entries (it holds entriesMu, and its versions are stored): it adds the
// keys the commits since l began stored, or asks the server again as
// currentVersions does. The appends that stored a version after l began
// stored its entries before this turn (entry turns follow version turns
// in order), so their keys are among those commits'. When this append
// stored every version of p (added), no other append stored entries of
// them before this turn, so no commit has a key of p's entries.
func (s *Store) currentKeys(ctx context.Context, p *pending, l lookup, added bool) (lookup, error) {
	if l.epoch != s.epoch.Load() {
		return s.lookUp(ctx, p)
	}
	if added {
		return l, nil
	}
	ok := s.keyCommits.since(l.kgen, func(keys [][16]byte) {
		for _, k := range keys {
			l.have[k] = true
		}
	})
	if !ok {
		return s.lookUp(ctx, p)
	}
	return l, nil
}

// storedVersions looks up the stored versions of the identities ids (a
// repeated one is asked once).
func (s *Store) storedVersions(ctx context.Context, ids []ident) (map[ident]knownVersions, error) {
	t, err := ext.NewTable("batch", ext.Column("source", "String"), ext.Column("id", "String"))
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if err := t.Append(id.source, id.id); err != nil {
			return nil, err
		}
	}
	rows, err := s.conn.Query(ch.Context(ctx, ch.WithExternalTable(t)), "SELECT source, id, digest, min(added_ns) AS first FROM "+s.n.idents+
		" WHERE (source, id) IN (SELECT source, id FROM batch) GROUP BY source, id, digest ORDER BY first, digest")
	if err != nil {
		return nil, fmt.Errorf("look up stored versions: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := map[ident]knownVersions{} // the batch's versions go in too, when they may conflict with each other
	var (
		k      ident
		digest []byte
		first  int64
	)
	for rows.Next() {
		if err := rows.Scan(&k.source, &k.id, &digest, &first); err != nil {
			return nil, fmt.Errorf("look up stored versions: %w", err)
		}
		kv := out[k]
		kv.digests = append(kv.digests, sinks.Digest(digest))
		out[k] = kv
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up stored versions: %w", err)
	}
	return out, nil
}

// storedKeys looks up which of keys, the keys of entries of versions,
// are stored. It reads them from the trails, by version: the trails are
// ordered by version, so the server reads the granules of those versions
// only, where a batch of keys (hashes, spread evenly over the keys table's
// order) would touch most of the keys table's granules, and so read all
// of it, as it grows. An entry's key hashes its version, so an entry with
// one of keys is among the entries of versions.
func (s *Store) storedKeys(ctx context.Context, versions []vkey, keys [][16]byte) (map[[16]byte]bool, error) {
	have := make(map[[16]byte]bool, len(keys))
	if len(keys) == 0 {
		return have, nil
	}
	vt, err := ext.NewTable("versions", ext.Column("source", "String"), ext.Column("id", "String"), ext.Column("digest", "FixedString(32)"))
	if err != nil {
		return nil, err
	}
	for i := range versions {
		if err := vt.Append(versions[i].source, versions[i].id, string(versions[i].digest[:])); err != nil {
			return nil, err
		}
	}
	t, err := ext.NewTable("batch", ext.Column("key", "FixedString(16)"))
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := t.Append(string(k[:])); err != nil {
			return nil, err
		}
	}
	rows, err := s.conn.Query(ch.Context(ctx, ch.WithExternalTable(vt, t)), "SELECT key FROM "+s.n.trails+
		" WHERE (source, id, digest) IN (SELECT source, id, digest FROM versions) AND key IN (SELECT key FROM batch)")
	if err != nil {
		return nil, fmt.Errorf("look up stored entry keys: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var key []byte
	for rows.Next() {
		if err := rows.Scan(&key); err != nil {
			return nil, fmt.Errorf("look up stored entry keys: %w", err)
		}
		have[[16]byte(key)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up stored entry keys: %w", err)
	}
	return have, nil
}
