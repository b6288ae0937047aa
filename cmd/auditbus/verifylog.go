package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/ledgertree"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

var rangeFactory = &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// ledgerEntry is an entry as GET /v1/ledger answers it.
type ledgerEntry struct {
	Log         string    `json:"log"`
	Seq         uint64    `json:"seq"`
	Time        time.Time `json:"time"`
	Kind        string    `json:"kind"`
	Source      string    `json:"source"`
	ID          string    `json:"id"`
	Digest      string    `json:"digest"`
	Transport   string    `json:"transport"`
	Topic       string    `json:"topic"`
	Partition   int       `json:"partition"`
	Offset      int64     `json:"offset"`
	Request     string    `json:"request"`
	Principal   string    `json:"principal"`
	Route       string    `json:"route"`
	Destination string    `json:"destination"`
	Attempts    int       `json:"attempts"`
	Error       string    `json:"error"`
	Replay      string    `json:"replay"`
	Signature   string    `json:"signature"`
}

func (e *ledgerEntry) entry(d sinks.Digest) sinks.Entry {
	return sinks.Entry{Log: e.Log, Seq: e.Seq, Time: e.Time, Kind: e.Kind, Source: e.Source, ID: e.ID, Digest: d,
		Transport: e.Transport, Topic: e.Topic, Partition: e.Partition, Offset: e.Offset, Request: e.Request,
		Principal: e.Principal, Route: e.Route, Destination: e.Destination, Attempts: e.Attempts, Error: e.Error, Replay: e.Replay,
		Signature: e.Signature}
}

// checkpoint fetches log's latest checkpoint note, or a verifyFailure
// when it has none.
func (vf *verifier) checkpoint(ctx context.Context, l string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, vf.c.endpoint(logQuery(l), "v1", "ledger", "checkpoint"), nil)
	if err != nil {
		return nil, err
	}
	resp, err := vf.c.do(req)
	if isNotFound(err) {
		return nil, &verifyFailure{l, 1, "missing checkpoint: the daemon has no checkpoint of the log"}
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 64<<10))
}

// openCheckpoint checks a checkpoint's signature and origin.
func (vf *verifier) openCheckpoint(l string, n []byte) (*log.Checkpoint, error) {
	cp, _, _, err := log.ParseCheckpoint(n, l, vf.key)
	return cp, err
}

// log verifies one log: the checkpoint's signature, consistency with the
// last verified state, every entry and version up to the checkpoint, and
// the tree. It returns the new state of the log.
func (vf *verifier) log(ctx context.Context, l string, prev logState) (logState, error) {
	n, err := vf.checkpoint(ctx, l)
	if err != nil {
		return prev, err
	}
	// What the entries are checked against: the signed checkpoint, or the
	// last verified state when the checkpoint cannot be trusted.
	var fail *verifyFailure
	size, root := prev.Size, prev.Root
	cp, err := vf.openCheckpoint(l, n)
	switch {
	case err != nil:
		fail = &verifyFailure{l, prev.Size + 1, fmt.Sprintf("signature: the latest checkpoint is not signed by key %q: %v", vf.key.Name(), err)}
	case cp.Size < prev.Size:
		fail = &verifyFailure{l, cp.Size + 1, fmt.Sprintf("consistency: the checkpoint has %d entries, fewer than the %d verified before: the log was cut or rewritten", cp.Size, prev.Size)}
	case prev.Size > 0:
		var p struct {
			Hashes [][]byte `json:"hashes"`
		}
		q := logQuery(l, "from", strconv.FormatUint(prev.Size, 10), "to", strconv.FormatUint(cp.Size, 10))
		err := vf.c.getJSON(ctx, vf.c.endpoint(q, "v1", "ledger", "proof", "consistency"), &p)
		if err == nil {
			err = proof.VerifyConsistency(rfc6962.DefaultHasher, prev.Size, cp.Size, p.Hashes, prev.Root, cp.Hash)
		}
		if err != nil {
			fail = &verifyFailure{l, prev.Size + 1, fmt.Sprintf("consistency: the log of %d entries does not extend the one of %d verified before: %v", cp.Size, prev.Size, err)}
		}
	}
	if fail == nil {
		size, root = cp.Size, cp.Hash
	}
	leaves, err := vf.entries(ctx, l, size)
	if err != nil {
		return prev, err
	}
	rng := rangeFactory.NewEmptyRange(0)
	for _, h := range leaves {
		_ = rng.Append(h, nil)
	}
	got := rfc6962.DefaultHasher.EmptyRoot()
	if size > 0 {
		got, _ = rng.GetRootHash(nil)
	}
	if !bytes.Equal(got, root) {
		seq := vf.locate(ctx, l, leaves, size, root, prev)
		what := "leaf hash: the entry differs from the one the checkpoint holds"
		if fail != nil {
			what = fail.what + "; leaf hash: the entry differs from the one the last verified checkpoint holds"
		}
		return prev, &verifyFailure{l, seq, what}
	}
	if fail != nil {
		return prev, fail
	}
	if err := vf.exported(l, size, n); err != nil {
		return prev, err
	}
	st := logState{Size: size, Root: root, Range: rng.Hashes(), TailFrom: size - uint64(min(len(leaves), stateTail))}
	st.Tail = leaves[st.TailFrom:]
	return st, nil
}

// entries reads the log's entries 1..size, checks that none is missing
// and that each version they name hashes to its digest, and returns their
// leaf hashes.
func (vf *verifier) entries(ctx context.Context, l string, size uint64) ([][]byte, error) {
	leaves := make([][]byte, 0, min(size, 1<<20))
	last := time.Now()
	for uint64(len(leaves)) < size {
		at := uint64(len(leaves))
		var page struct {
			Entries []ledgerEntry `json:"entries"`
		}
		q := logQuery(l, "after_seq", strconv.FormatUint(at, 10), "limit", strconv.Itoa(sinks.MaxLimit))
		err := vf.c.getJSON(ctx, vf.c.endpoint(q, "v1", "ledger"), &page)
		if isNotFound(err) {
			page.Entries, err = nil, nil
		}
		if err != nil {
			return nil, err
		}
		if len(page.Entries) == 0 {
			return nil, &verifyFailure{l, at + 1, fmt.Sprintf("missing entry: the log ends at seq %d, the checkpoint holds %d entries", at, size)}
		}
		for i := range page.Entries {
			e := &page.Entries[i]
			seq := uint64(len(leaves)) + 1
			if seq > size {
				break
			}
			if e.Seq != seq || e.Log != l {
				return nil, &verifyFailure{l, seq, fmt.Sprintf("missing entry: the log goes on with seq %d of log %q", e.Seq, e.Log)}
			}
			d, err := sinks.ParseDigest(e.Digest)
			if err != nil {
				return nil, &verifyFailure{l, seq, "event digest: " + err.Error()}
			}
			what, err := vf.version(ctx, e.Source, e.ID, d)
			if err != nil {
				return nil, err
			}
			if what != "" {
				return nil, &verifyFailure{l, seq, what}
			}
			en := e.entry(d)
			leaves = append(leaves, ledgertree.LeafHash(&en))
		}
		if vf.tty && time.Since(last) > 250*time.Millisecond {
			last = time.Now()
			fmt.Fprintf(vf.s.errOut, "\rverify log %q: %d of %d entries", l, len(leaves), size)
		}
	}
	if vf.tty && size > 0 {
		fmt.Fprintf(vf.s.errOut, "\rverify log %q: %d of %d entries\n", l, len(leaves), size)
	}
	return leaves, nil
}

// locate finds the first seq whose leaf is not the one the tree of size
// with root holds. Each clue gives a bound that is never past it: a
// consistency proof from the daemon that checks against root shows a
// prefix intact (exact while the daemon's tree is intact); the state's
// compact range and tail leaves, verified before, show where the entries
// leave them, whatever the daemon says.
func (vf *verifier) locate(ctx context.Context, l string, leaves [][]byte, size uint64, root []byte, prev logState) uint64 {
	lo, hi := uint64(0), size
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if vf.prefixConsistent(ctx, l, leaves, mid, size, root) {
			lo = mid
		} else {
			hi = mid
		}
	}
	good := lo // the first good leaves are intact
	ids := compact.RangeNodes(0, size, nil)
	if prev.Size != size || !bytes.Equal(prev.Root, root) || len(prev.Range) != len(ids) {
		return good + 1
	}
	rng := rangeFactory.NewEmptyRange(0)
	for _, h := range leaves {
		_ = rng.Append(h, nil)
	}
	// The first subtree of the verified range that the entries do not
	// rebuild holds the first changed entry; the verified tail leaves
	// pinpoint it when the subtree lies within them.
	for j, id := range ids {
		if bytes.Equal(rng.Hashes()[j], prev.Range[j]) {
			continue
		}
		a, b := id.Coverage()
		good = max(good, a)
		if a >= prev.TailFrom {
			for i := a; i < b; i++ {
				if !bytes.Equal(leaves[i], prev.Tail[i-prev.TailFrom]) {
					return max(good, i) + 1
				}
			}
		}
		break
	}
	return good + 1
}

// prefixConsistent reports whether the daemon proves the tree of the
// first m leaves consistent with the tree of size with root.
func (vf *verifier) prefixConsistent(ctx context.Context, l string, leaves [][]byte, m, size uint64, root []byte) bool {
	rng := rangeFactory.NewEmptyRange(0)
	for _, h := range leaves[:m] {
		_ = rng.Append(h, nil)
	}
	r, _ := rng.GetRootHash(nil)
	var p struct {
		Hashes [][]byte `json:"hashes"`
	}
	q := logQuery(l, "from", strconv.FormatUint(m, 10), "to", strconv.FormatUint(size, 10))
	if err := vf.c.getJSON(ctx, vf.c.endpoint(q, "v1", "ledger", "proof", "consistency"), &p); err != nil {
		return false
	}
	return proof.VerifyConsistency(rfc6962.DefaultHasher, m, size, p.Hashes, r, root) == nil
}
