package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"

	"github.com/auditbus/auditbus/sinks/ledgertree"
	"golang.org/x/mod/sumdb/note"
)

var verifyHelp = helpText{usage: `
Usage: auditbus verify --public-key FILE [--state FILE] [--checkpoints FILE] [--log NAME]...
       auditbus verify event ID --source S --public-key FILE

Checks the audit ledger trusting nothing but the public key. For every log
(or those given with --log) it fetches the latest checkpoint and checks its
signature, reads every entry up to it and every event version they name,
recomputes each version's digest from the event, each leaf from its entry
and the Merkle tree from the leaves, and checks the root against the
checkpoint. A changed byte of event data, a changed, missing or moved
entry, a bad signature: each is reported with the log and the first seq
that fails.

With --state the last verified checkpoint of each log is kept in FILE, and
the next run also checks that the log extends it (a consistency proof): a
log rewritten from an earlier point, even with a freshly recomputed tree,
is caught. --checkpoints appends every checkpoint verified to FILE (JSON
lines), to keep them outside the store.

"verify event" checks one event: each version's digest, and the inclusion
proof of each of its entries against its log's signed checkpoint.
`, after: `
Examples:
  auditbus verify --public-key ledger.pub --state verify-state.json
  auditbus verify event order-42 --source urn:shop --public-key ledger.pub

Exit codes: 0 everything verifies, 1 something does not (or the daemon
failed), 2 usage error.
`}

type verifyFlags struct {
	daemon                   daemonFlags
	publicKey, state, export string
	source                   string
	logs                     multiFlag
}

func runVerify(ctx context.Context, args []string, s stdio) int {
	var f verifyFlags
	fs := newFlagSet("verify", s.errOut)
	f.daemon.register(fs)
	fs.StringVar(&f.publicKey, "public-key", "", "the checkpoints' signed-note verifier key, as auditbus keygen --public wrote it (required)")
	fs.StringVar(&f.state, "state", "", "file keeping the last verified checkpoint of each log, read and updated")
	fs.StringVar(&f.export, "checkpoints", "", "file to append every verified checkpoint to (JSON lines)")
	fs.StringVar(&f.source, "source", "", "verify event: the event's source")
	fs.Var(&f.logs, "log", "verify only this log (repeatable; default every log)")
	pos, code, ok := parseArgs(fs, args, verifyHelp, s)
	if !ok {
		return code
	}
	set := setFlags(fs)
	event := len(pos) > 0 && pos[0] == "event"
	switch {
	case event && len(pos) != 2:
		return usageError(s, "verify", "event takes one event id: auditbus verify event ID --source S")
	case event && f.source == "":
		return usageError(s, "verify", "event %q: give its --source (an event is its source and id)", pos[1])
	case !event && len(pos) > 0:
		return usageError(s, "verify", "unexpected argument %q (to verify one event: auditbus verify event ID --source S)", pos[0])
	case !event && f.source != "":
		return usageError(s, "verify", "--source goes with verify event ID")
	case f.publicKey == "":
		return usageError(s, "verify", "--public-key FILE is required: the verifier trusts only that key")
	}
	v, err := ledgertree.LoadVerifier(f.publicKey)
	if err != nil {
		return usageError(s, "verify", "--public-key: %v", err)
	}
	c, err := f.daemon.client(set)
	if err != nil {
		return usageError(s, "verify", "%v", err)
	}
	vf := &verifier{c: c, key: v, s: s, versions: map[[32]byte]bool{}}
	vf.tty, _ = terminal(s.errOut)
	if event {
		return vf.exit(vf.event(ctx, pos[1], f.source))
	}
	st, err := loadState(f.state)
	if err != nil {
		return usageError(s, "verify", "--state: %v", err)
	}
	if f.export != "" {
		out, err := os.OpenFile(f.export, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return usageError(s, "verify", "--checkpoints: %v", err)
		}
		defer out.Close()
		vf.export = out
	}
	logs := []string(f.logs)
	if len(logs) == 0 {
		if logs, err = vf.allLogs(ctx); err != nil {
			return failure(s, "verify", err)
		}
	}
	if err := vf.prefetch(ctx); err != nil {
		return failure(s, "verify", err)
	}
	failed := false
	for _, l := range logs {
		res, err := vf.log(ctx, l, st.Logs[l])
		if code := vf.exit(err); code != exitOK {
			failed = true
			continue
		}
		st.Logs[l] = res
		fmt.Fprintf(s.out, "log %q: %d entries verified against checkpoint %s\n", l, res.Size, shortRoot(res.Root))
	}
	if f.state != "" {
		if err := st.save(f.state); err != nil {
			return failure(s, "verify", err)
		}
	}
	if failed {
		return exitFailure
	}
	return exitOK
}

// verifier checks logs and events through one daemon.
type verifier struct {
	c      *client
	key    note.Verifier
	s      stdio
	tty    bool
	export io.Writer
	// versions are the digests of versions already recomputed; cleared
	// when it holds maxVersions, so its memory stays bounded.
	versions map[[32]byte]bool
}

// maxVersions bounds verifier.versions: about 64 MiB.
const maxVersions = 1 << 20

// verifyFailure is something that does not verify: the log, the first
// seq that fails, and what.
type verifyFailure struct {
	log  string
	seq  uint64
	what string
}

func (f *verifyFailure) Error() string {
	if f.log == "" {
		return f.what
	}
	return fmt.Sprintf("log %q seq %d: %s", f.log, f.seq, f.what)
}

// exit reports err and returns the exit code: exitOK for nil, exitFailure
// for a verifyFailure or a daemon that failed.
func (vf *verifier) exit(err error) int {
	var f *verifyFailure
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &f):
		fmt.Fprintf(vf.s.out, "FAIL %v\n", f)
		return exitFailure
	}
	return failure(vf.s, "verify", err)
}

// allLogs lists the ledger's logs.
func (vf *verifier) allLogs(ctx context.Context) ([]string, error) {
	var out struct {
		Logs []struct {
			Name string `json:"name"`
		} `json:"logs"`
	}
	if err := vf.c.getJSON(ctx, vf.c.endpoint(nil, "v1", "ledger", "logs"), &out); err != nil {
		return nil, err
	}
	var names []string
	for _, l := range out.Logs {
		names = append(names, l.Name)
	}
	slices.Sort(names)
	return names, nil
}

// exported appends a verified checkpoint to the --checkpoints file.
func (vf *verifier) exported(log string, size uint64, n []byte) error {
	if vf.export == nil {
		return nil
	}
	b, err := json.Marshal(struct {
		Log  string `json:"log"`
		Size uint64 `json:"size"`
		Note string `json:"note"`
	}{log, size, string(n)})
	if err != nil {
		return err
	}
	_, err = vf.export.Write(append(b, '\n'))
	return err
}

// logQuery is ?log=L plus more parameters.
func logQuery(log string, kv ...string) url.Values {
	q := url.Values{"log": {log}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return q
}
