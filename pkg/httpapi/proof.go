package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/auditbus/auditbus/pkg/apierror"
	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/ledgertree"
)

// proofParams reads the parameters of a ledger proof endpoint: each of
// names at most once, log required and valid, the others non-negative
// integers. Errors name the parameter.
func proofParams(rawQuery, endpoint string, names ...string) (string, map[string]uint64, error) {
	v, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", nil, fmt.Errorf("the query string is malformed: %w", err)
	}
	all := append([]string{"log"}, names...)
	for k, vals := range v {
		switch {
		case !slices.Contains(all, k):
			return "", nil, fmt.Errorf("parameter %q: unknown; %s accepts %s", clip(k), endpoint, strings.Join(all, ", "))
		case len(vals) != 1:
			return "", nil, fmt.Errorf("parameter %q: given %d times; give it once", k, len(vals))
		}
	}
	log := v.Get("log")
	if log == "" {
		return "", nil, errors.New(`parameter "log": required; GET /v1/ledger/logs lists the logs`)
	}
	if err := sinks.ValidLogName(log); err != nil {
		return "", nil, fmt.Errorf("parameter \"log\": %w", err)
	}
	nums := map[string]uint64{}
	for _, n := range names {
		s, ok := v[n]
		if !ok {
			continue
		}
		if nums[n], err = strconv.ParseUint(s[0], 10, 64); err != nil {
			return "", nil, fmt.Errorf("parameter %q: %q is not a size or position (0 or a positive integer)", n, clip(s[0]))
		}
	}
	return log, nums, nil
}

// treeOf is the store's tree, the size of log's tree and the size of its
// latest checkpoint (0 without one), or false after answering: 404 when
// the store keeps no trees, 400 naming "log" when log has no tree.
func (s *Server) treeOf(w http.ResponseWriter, r *http.Request, log string) (sinks.TreeStore, uint64, sinks.StoredCheckpoint, bool) {
	ts, ok := s.o.Store.(sinks.TreeStore)
	if !ok {
		apierror.Write(w, http.StatusNotFound, CodeNotFound, "this audit store keeps no Merkle tree of its ledger")
		return nil, 0, sinks.StoredCheckpoint{}, false
	}
	size, err := ts.TreeEnd(r.Context(), log, 0)
	if err != nil {
		s.storeFailed(w, r, "ledger tree", err)
		return nil, 0, sinks.StoredCheckpoint{}, false
	}
	cp, err := ts.LatestCheckpoint(r.Context(), log)
	if err != nil && !errors.Is(err, sinks.ErrNoCheckpoint) {
		s.storeFailed(w, r, "ledger checkpoint", err)
		return nil, 0, sinks.StoredCheckpoint{}, false
	}
	if size == 0 && cp.Size == 0 {
		badQuery(w, fmt.Errorf("parameter \"log\": the ledger has no tree of log %q (yet); GET /v1/ledger/logs lists the logs", clip(log)))
		return nil, 0, sinks.StoredCheckpoint{}, false
	}
	// Proofs go up to the latest checkpoint: the tree beyond it may still
	// be being built.
	return ts, cp.Size, cp, true
}

// proofRequest reads a proof endpoint's parameters and finds the log's
// tree, answering the request itself (and returning false) when it
// cannot.
type proofRequest struct {
	log  string
	nums map[string]uint64
	ts   sinks.TreeStore
	have uint64 // the latest checkpoint's size, the largest a proof may ask
	cp   sinks.StoredCheckpoint
}

func (s *Server) startProof(w http.ResponseWriter, r *http.Request, endpoint string, names ...string) (proofRequest, bool) {
	var p proofRequest
	var err error
	if p.log, p.nums, err = proofParams(r.URL.RawQuery, endpoint, names...); err != nil {
		badQuery(w, err)
		return p, false
	}
	var ok bool
	p.ts, p.have, p.cp, ok = s.treeOf(w, r, p.log)
	return p, ok
}

// finishProof answers a proof or the error computing it.
func (s *Server) finishProof(w http.ResponseWriter, r *http.Request, op string, a proofAnswer, err error) {
	if err != nil {
		s.storeFailed(w, r, op, err)
		return
	}
	writeValue(w, http.StatusOK, a)
}

// checkpoint is GET /v1/ledger/checkpoint?log=L: the latest checkpoint
// of the log, the signed note as stored.
func (s *Server) checkpoint(w http.ResponseWriter, r *http.Request) {
	p, ok := s.startProof(w, r, "GET /v1/ledger/checkpoint")
	if !ok {
		return
	}
	log, cp := p.log, p.cp
	if cp.Size == 0 {
		apierror.Write(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("log %q has no checkpoint yet; the daemon writing it makes one within AUDITBUS_LEDGER_CHECKPOINT_INTERVAL of its entries", clip(log)))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(cp.Note)
}

// proofAnswer is the JSON of the proof endpoints: the proof's hashes in
// standard base64, in the order RFC 6962 verifiers take them.
type proofAnswer struct {
	Log    string   `json:"log"`
	Seq    uint64   `json:"seq,omitempty"`
	Size   uint64   `json:"size,omitempty"`
	From   uint64   `json:"from,omitempty"`
	To     uint64   `json:"to,omitempty"`
	Hashes [][]byte `json:"hashes"`
}

// inclusion is GET /v1/ledger/proof/inclusion?log=L&seq=N&size=S: the
// inclusion proof of the entry at seq N (leaf N-1) in the tree of size
// S, by default the latest checkpoint's.
func (s *Server) inclusion(w http.ResponseWriter, r *http.Request) {
	p, ok := s.startProof(w, r, "GET /v1/ledger/proof/inclusion", "seq", "size")
	if !ok {
		return
	}
	size, given := p.nums["size"]
	if !given {
		size = p.cp.Size
	}
	seq, given := p.nums["seq"]
	var err error
	switch {
	case !given:
		err = errors.New(`parameter "seq": required: the position of the entry to prove`)
	case size > p.have:
		err = fmt.Errorf("parameter \"size\": %d is beyond log %q's latest checkpoint, of %d entries", size, clip(p.log), p.have)
	case size == 0:
		err = errors.New(`parameter "size": give the tree size of a checkpoint (log has no checkpoint yet)`)
	case seq < 1 || seq > size:
		err = fmt.Errorf("parameter \"seq\": %d is not in the tree of size %d (1 to %d)", seq, size, size)
	}
	if err != nil {
		badQuery(w, err)
		return
	}
	hashes, err := ledgertree.InclusionProof(r.Context(), p.ts, p.log, seq-1, size)
	s.finishProof(w, r, "inclusion proof", proofAnswer{Log: p.log, Seq: seq, Size: size, Hashes: hashes}, err)
}

// consistency is GET /v1/ledger/proof/consistency?log=L&from=S1&to=S2:
// the proof that the tree of size S2 (by default the latest checkpoint's)
// extends the one of size S1.
func (s *Server) consistency(w http.ResponseWriter, r *http.Request) {
	p, ok := s.startProof(w, r, "GET /v1/ledger/proof/consistency", "from", "to")
	if !ok {
		return
	}
	to, given := p.nums["to"]
	if !given {
		to = p.cp.Size
	}
	from, given := p.nums["from"]
	var err error
	switch {
	case !given:
		err = errors.New(`parameter "from": required: the size of the older tree`)
	case to > p.have:
		err = fmt.Errorf("parameter \"to\": %d is beyond log %q's latest checkpoint, of %d entries", to, clip(p.log), p.have)
	case from > to:
		err = fmt.Errorf("parameter \"from\": %d is larger than to, %d", from, to)
	}
	if err != nil {
		badQuery(w, err)
		return
	}
	hashes, err := ledgertree.ConsistencyProof(r.Context(), p.ts, p.log, from, to)
	s.finishProof(w, r, "consistency proof", proofAnswer{Log: p.log, From: from, To: to, Hashes: hashes}, err)
}
