package clickhouse

import (
	"context"
	"fmt"
	"slices"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/auditbus/auditbus/sinks"
)

// An Append asks the server which of its versions and entry keys are
// stored before it takes its turn to insert, so that one Append's
// lookups run while another inserts. What the appends that committed in
// between stored, the lookup may have missed: the store keeps the
// versions and keys of its last recentCommits commits in memory and adds
// those to the lookup when its turn comes (catchUp). A lookup that began
// before a failed append, or before the recovery after one, is asked
// again in turn: what a failed append stored is known only to the server.

// recentCommits is how many commits' versions and keys the store keeps
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
// of the store's commit count gen and failure count epoch when it began.
type lookup struct {
	gen, epoch uint64
	stored     map[ident]knownVersions
	have       map[[16]byte]bool
}

// commit is what one successful append stored: its new versions and the
// keys of its new entries, and its number among the store's commits.
type commit struct {
	gen      uint64
	versions []vkey
	keys     [][16]byte
}

// lookUp asks the server which of p's versions are stored, then which
// keys of the entries of those versions: an entry is inserted only once
// its version is stored (by the same Append or an earlier one), so the
// entries of a version the server does not have are new, and a batch of
// new events asks only one question.
func (s *Store) lookUp(ctx context.Context, p *pending) (lookup, error) {
	// Read before asking: a commit counted here returned before the
	// questions were sent, so the server's answers include it.
	l := lookup{gen: s.gen.Load(), epoch: s.epoch.Load()}
	var err error
	if l.stored, err = s.storedVersions(ctx, p.versions); err != nil {
		return l, err
	}
	var keys [][16]byte
	for i, en := range p.entries {
		if l.stored[ident{en.Source, en.ID}].has(en.Digest) {
			keys = append(keys, p.keys[i])
		}
	}
	l.have, err = s.storedKeys(ctx, keys)
	return l, err
}

// current makes l current at the caller's turn (it holds appendMu): it
// adds what the commits since l began stored, or, when l began before a
// failure or a recovery, or before the oldest commit the store still
// keeps, asks the server again.
func (s *Store) current(ctx context.Context, p *pending, l lookup) (lookup, error) {
	stale := l.epoch != s.epoch.Load() || len(s.recent) > 0 && s.recent[0].gen > l.gen+1
	if stale {
		return s.lookUp(ctx, p)
	}
	for i := range s.recent {
		c := &s.recent[i]
		if c.gen <= l.gen {
			continue
		}
		for _, k := range c.keys {
			l.have[k] = true
		}
		for _, v := range c.versions {
			known := l.stored[idOf(v)]
			if !known.has(v.digest) {
				known.digests = append(known.digests, v.digest)
				l.stored[idOf(v)] = known
			}
		}
	}
	return l, nil
}

// remember records c as the store's latest commit. The caller holds
// appendMu.
func (s *Store) remember(versions []vkey, keys [][16]byte) {
	gen := s.gen.Load() + 1
	if len(s.recent) == recentCommits {
		s.recent = slices.Delete(s.recent, 0, 1)
	}
	s.recent = append(s.recent, commit{gen: gen, versions: versions, keys: keys})
	s.gen.Store(gen)
}

// storedVersions looks up the stored versions of the identities of vs.
func (s *Store) storedVersions(ctx context.Context, vs []encodedVersion) (map[ident]knownVersions, error) {
	t, err := ext.NewTable("batch", ext.Column("source", "String"), ext.Column("id", "String"))
	if err != nil {
		return nil, err
	}
	for i := range vs {
		if err := t.Append(vs[i].k.source, vs[i].k.id); err != nil {
			return nil, err
		}
	}
	rows, err := s.conn.Query(ch.Context(ctx, ch.WithExternalTable(t)), "SELECT source, id, digest, min(added_ns) AS first FROM "+s.n.idents+
		" WHERE (source, id) IN (SELECT source, id FROM batch) GROUP BY source, id, digest ORDER BY first, digest")
	if err != nil {
		return nil, fmt.Errorf("look up stored versions: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := make(map[ident]knownVersions)
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

// storedKeys looks up which of keys are stored.
func (s *Store) storedKeys(ctx context.Context, keys [][16]byte) (map[[16]byte]bool, error) {
	have := make(map[[16]byte]bool, len(keys))
	if len(keys) == 0 {
		return have, nil
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
	rows, err := s.conn.Query(ch.Context(ctx, ch.WithExternalTable(t)), "SELECT key FROM "+s.n.keys+" WHERE key IN (SELECT key FROM batch)")
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
