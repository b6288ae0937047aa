package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// verifyState is what --state keeps between runs: per log, the last
// verified checkpoint's size and root, the compact range of the tree at
// that size (at most 64 hashes) and the leaf hashes of its last entries,
// so that a rewritten log is caught and the first rewritten entry found
// without trusting the daemon.
type verifyState struct {
	Logs map[string]logState `json:"logs"`
}

type logState struct {
	Size  uint64   `json:"size"`
	Root  []byte   `json:"root"`
	Range [][]byte `json:"range"`
	// TailFrom is the index of the first leaf in Tail.
	TailFrom uint64   `json:"tail_from"`
	Tail     [][]byte `json:"tail"`
}

// stateTail is how many of the last leaf hashes a log's state keeps.
const stateTail = 1024

func loadState(path string) (*verifyState, error) {
	st := &verifyState{Logs: map[string]logState{}}
	if path == "" {
		return st, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%s is not a state auditbus verify wrote: %w", path, err)
	}
	if st.Logs == nil {
		st.Logs = map[string]logState{}
	}
	return st, nil
}

// save writes the state to a temporary file and renames it into place,
// so a crash leaves the old state or the new one.
func (st *verifyState) save(path string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".verify-state-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// shortRoot is a root for messages.
func shortRoot(root []byte) string {
	s := base64.StdEncoding.EncodeToString(root)
	if len(s) > 12 {
		s = s[:12] + "..."
	}
	return s
}
