package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/auditbus/auditbus/sinks"
	"github.com/auditbus/auditbus/sinks/ledgertree"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// storedVersion is one version of GET /v1/events/{id}, with its trail.
type storedVersion struct {
	Event  json.RawMessage `json:"event"`
	Digest string          `json:"digest"`
	Trail  []ledgerEntry   `json:"trail"`
}

// versionsOf fetches every version of the event (source, id); nil when
// the store has none.
func (vf *verifier) versionsOf(ctx context.Context, id, source string) ([]storedVersion, error) {
	var out struct {
		Items []storedVersion `json:"items"`
	}
	err := vf.c.getJSON(ctx, vf.c.endpoint(map[string][]string{"source": {source}}, "v1", "events", id), &out)
	if isNotFound(err) {
		return nil, nil
	}
	return out.Items, err
}

// recompute is the digest of a version's event as the daemon sent it.
func recompute(v *storedVersion) (claimed, got sinks.Digest, err error) {
	if claimed, err = sinks.ParseDigest(v.Digest); err != nil {
		return claimed, got, err
	}
	e := event.New()
	if err := e.UnmarshalJSON(v.Event); err != nil {
		return claimed, got, fmt.Errorf("the event of version %s does not decode: %w", v.Digest, err)
	}
	got, err = sinks.DigestEvent(&e)
	return claimed, got, err
}

// prefetch reads every version of the store, a page of 10,000 at a time
// without trails, and remembers those whose event hashes to their digest,
// up to maxVersions: the entries of a log then need no request per
// version. A version it does not remember is fetched on its own.
func (vf *verifier) prefetch(ctx context.Context) error {
	q := map[string][]string{"limit": {"10000"}, "trail": {"false"}}
	for {
		var page struct {
			Items []storedVersion `json:"items"`
			Next  string          `json:"next"`
		}
		if err := vf.c.getJSON(ctx, vf.c.endpoint(q, "v1", "events"), &page); err != nil {
			return err
		}
		for i := range page.Items {
			if len(vf.versions) >= maxVersions {
				return nil
			}
			if claimed, got, err := recompute(&page.Items[i]); err == nil && claimed == got {
				vf.versions[got] = true
			}
		}
		if page.Next == "" {
			return nil
		}
		q["cursor"] = []string{page.Next}
	}
}

// version checks that the version (source, id, d) is stored and that its
// event hashes to d. It returns what failed ("" when it verifies), or the
// daemon's error.
func (vf *verifier) version(ctx context.Context, source, id string, d sinks.Digest) (string, error) {
	if vf.versions[d] {
		return "", nil
	}
	vs, err := vf.versionsOf(ctx, id, source)
	if err != nil {
		return "", err
	}
	if len(vf.versions) >= maxVersions {
		clear(vf.versions)
	}
	for i := range vs {
		claimed, got, err := recompute(&vs[i])
		if err != nil {
			return "event digest: " + err.Error(), nil
		}
		if claimed == got {
			vf.versions[got] = true
		} else if claimed == d {
			return fmt.Sprintf("event digest: the stored event %q from %q hashes to %s, not to the entry's %s: its content was changed", id, source, got, d), nil
		}
	}
	if !vf.versions[d] {
		return fmt.Sprintf("missing event version: the entry names version %s of event %q from %q, which the store does not hold", d, id, source), nil
	}
	return "", nil
}

// event verifies one event: each version's digest, and each entry's
// inclusion in its log's signed checkpoint.
func (vf *verifier) event(ctx context.Context, id, source string) error {
	vs, err := vf.versionsOf(ctx, id, source)
	if err != nil {
		return err
	}
	if len(vs) == 0 {
		return &verifyFailure{what: fmt.Sprintf("event %q from %q: not in the audit store", id, source)}
	}
	cps := map[string]*log.Checkpoint{}
	for i := range vs {
		v := &vs[i]
		claimed, got, err := recompute(v)
		var at ledgerEntry
		if len(v.Trail) > 0 {
			at = v.Trail[0]
		}
		if err != nil {
			return &verifyFailure{at.Log, at.Seq, "event digest: " + err.Error()}
		}
		if claimed != got {
			return &verifyFailure{at.Log, at.Seq, fmt.Sprintf("event digest: the stored event hashes to %s, not to its digest %s: its content was changed", got, claimed)}
		}
		for j := range v.Trail {
			e := &v.Trail[j]
			e.Source, e.ID = source, id
			cp, ok := cps[e.Log]
			if !ok {
				n, err := vf.checkpoint(ctx, e.Log)
				if err != nil {
					return err
				}
				if cp, err = vf.openCheckpoint(e.Log, n); err != nil {
					return &verifyFailure{e.Log, e.Seq, fmt.Sprintf("signature: the latest checkpoint is not signed by key %q: %v", vf.key.Name(), err)}
				}
				cps[e.Log] = cp
			}
			if e.Seq > cp.Size {
				return &verifyFailure{e.Log, e.Seq, fmt.Sprintf("not yet in a checkpoint (the latest holds %d entries): try again after AUDITBUS_LEDGER_CHECKPOINT_INTERVAL", cp.Size)}
			}
			en := e.entry(claimed)
			var p struct {
				Hashes [][]byte `json:"hashes"`
			}
			q := logQuery(e.Log, "seq", strconv.FormatUint(e.Seq, 10), "size", strconv.FormatUint(cp.Size, 10))
			if err := vf.c.getJSON(ctx, vf.c.endpoint(q, "v1", "ledger", "proof", "inclusion"), &p); err != nil {
				return err
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, e.Seq-1, cp.Size, ledgertree.LeafHash(&en), p.Hashes, cp.Hash); err != nil {
				return &verifyFailure{e.Log, e.Seq, fmt.Sprintf("inclusion: the %s entry is not in the signed tree of %d entries: %v", e.Kind, cp.Size, err)}
			}
			fmt.Fprintf(vf.s.out, "log %q seq %d: %s entry of version %s included in the signed checkpoint of %d entries\n",
				e.Log, e.Seq, e.Kind, shortDigest(claimed.String()), cp.Size)
		}
	}
	return nil
}
