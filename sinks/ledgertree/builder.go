package ledgertree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/auditbus/auditbus/sinks"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// TailCheck is how many of the last leaves Start recomputes from their
// entries and compares with the stored hashes.
const TailCheck = 1024

// BuilderOptions configure a Builder; zero fields take the defaults shown.
type BuilderOptions struct {
	// Store holds the log's entries and its tree. Required.
	Store interface {
		sinks.Store
		sinks.TreeStore
	}
	// Log is the log the builder extends. Required.
	Log string
	// Signer signs checkpoints; nil makes unsigned ones.
	Signer note.Signer
	// Interval is the least time between two checkpoints (default 1s).
	Interval time.Duration
	// Poll is how often the builder looks for new entries (default 100ms).
	Poll time.Duration
	// Batch is how many entries one read takes (default sinks.MaxLimit).
	Batch int
	// Checkpointed, if set, is told of every checkpoint stored.
	Checkpointed func(size uint64, at time.Time)
	// Logger receives failures the builder retries; nil discards them.
	Logger *slog.Logger
}

// Builder extends one log's tree as entries are appended to it, storing
// the hashes beside them, and stores a checkpoint at most every Interval
// while the tree grows. It reads what the store made durable, so the
// writers' hot path does no hashing.
type Builder struct {
	o    BuilderOptions
	last sinks.StoredCheckpoint // latest checkpoint stored

	mu   sync.Mutex // guards size and leaf while a build runs
	size uint64     // leaves in the stored tree, as the last build saw it
	leaf []byte     // the leaf being hashed, reused
	stop chan struct{}
	done chan struct{}
}

// StartBuilder resumes log's tree from the store, checks it (the stored
// hashes of the last TailCheck leaves against their entries, and the
// latest checkpoint against the stored tree) and starts building. A tree
// that does not match is an error naming the log and the first seq that
// fails: start-up stops there instead of signing a bad checkpoint.
func StartBuilder(ctx context.Context, o BuilderOptions) (*Builder, error) {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 100 * time.Millisecond
	}
	if o.Batch <= 0 || o.Batch > sinks.MaxLimit {
		o.Batch = sinks.MaxLimit
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	size, err := o.Store.TreeEnd(ctx, o.Log, 0)
	if err != nil {
		return nil, fmt.Errorf("ledger tree of log %q: %w", o.Log, err)
	}
	b := &Builder{o: o, size: size, stop: make(chan struct{}), done: make(chan struct{})}
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	if err := b.build(ctx); err != nil {
		return nil, err
	}
	if err := b.checkpoint(ctx, true); err != nil {
		return nil, err
	}
	go b.run()
	return b, nil
}

// CorruptError is a stored tree that does not match the log's entries or
// its latest checkpoint.
type CorruptError struct {
	Log  string
	Seq  uint64
	What string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("ledger tree of log %q does not match the store at seq %d: %s; the entries or the tree hashes were changed outside auditbus (run auditbus verify against a copy to see what)",
		e.Log, e.Seq, e.What)
}

// check compares the stored tree with the tail of the log and with the
// latest checkpoint.
func (b *Builder) check(ctx context.Context) error {
	size := b.size
	if size == 0 {
		return nil
	}
	from := uint64(0)
	if size > TailCheck {
		from = size - TailCheck
	}
	stored, err := b.o.Store.TreeHashes(ctx, b.o.Log, 0, from, size)
	if err != nil {
		return fmt.Errorf("ledger tree of log %q: %w", b.o.Log, err)
	}
	for at := from; at < size; {
		ens, err := b.o.Store.Entries(ctx, b.o.Log, at, min(b.o.Batch, int(size-at)))
		if errors.Is(err, sinks.ErrNoLog) {
			ens, err = nil, nil
		}
		if err != nil {
			return fmt.Errorf("ledger tree of log %q: %w", b.o.Log, err)
		}
		if len(ens) == 0 {
			return &CorruptError{b.o.Log, at + 1, fmt.Sprintf("the tree has %d leaves but the entry at seq %d is missing", size, at+1)}
		}
		for i := range ens {
			en := &ens[i]
			if en.Seq != at+1 {
				return &CorruptError{b.o.Log, at + 1, "the entry at this seq is missing"}
			}
			off := (at - from) * sinks.HashSize
			if !bytes.Equal(LeafHash(en), stored[off:off+sinks.HashSize]) {
				return &CorruptError{b.o.Log, at + 1, "the entry's leaf hash differs from the stored one"}
			}
			at++
		}
	}
	cp, err := b.o.Store.LatestCheckpoint(ctx, b.o.Log)
	if errors.Is(err, sinks.ErrNoCheckpoint) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger checkpoint of log %q: %w", b.o.Log, err)
	}
	b.last = cp
	body, err := ParseBody(cp.Note)
	if err != nil || body.Size != cp.Size || body.Origin != b.o.Log {
		return &CorruptError{b.o.Log, cp.Size, "the latest checkpoint is not a checkpoint of this log at its size"}
	}
	if cp.Size > size {
		return &CorruptError{b.o.Log, size + 1, fmt.Sprintf("the latest checkpoint has %d leaves, the stored tree %d", cp.Size, size)}
	}
	root, err := RootAt(ctx, b.o.Store, b.o.Log, cp.Size)
	if err != nil {
		return fmt.Errorf("ledger tree of log %q: %w", b.o.Log, err)
	}
	if !bytes.Equal(root, body.Hash) {
		return &CorruptError{b.o.Log, cp.Size, "the stored tree's root differs from the latest checkpoint's"}
	}
	return nil
}

// Size is the number of leaves the tree holds.
func (b *Builder) Size() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size
}

// Close builds what was appended so far, stores a last checkpoint and
// stops. Close it after the writers, before the store.
func (b *Builder) Close(ctx context.Context) error {
	close(b.stop)
	<-b.done
	err := b.build(ctx)
	if err == nil {
		err = b.checkpoint(ctx, true)
	}
	return err
}

func (b *Builder) run() {
	defer close(b.done)
	tick := time.NewTicker(b.o.Poll)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := b.build(ctx)
		if err == nil {
			err = b.checkpoint(ctx, false)
		}
		cancel()
		if err != nil {
			b.o.Logger.Warn("ledger tree not extended; retrying", "log", b.o.Log, "error", err)
		}
	}
}

// build brings the stored tree up to the log: level 0 first (the leaves
// of the entries the store did not hash as it appended them, read back),
// then each stored level above from the one below, a tile of 256 hashes
// making one hash.
func (b *Builder) build(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.leaves(ctx); err != nil {
		return err
	}
	for level := uint8(Stride); ; level += Stride {
		below, err := b.o.Store.TreeEnd(ctx, b.o.Log, level-Stride)
		if err != nil {
			return err
		}
		have, err := b.o.Store.TreeEnd(ctx, b.o.Log, level)
		if err != nil {
			return err
		}
		want := below / TileWidth
		if want == 0 {
			return nil
		}
		for have < want {
			// 64 tiles a read: 512 KiB.
			upto := min(want, have+64)
			hs, err := b.o.Store.TreeHashes(ctx, b.o.Log, level-Stride, have*TileWidth, upto*TileWidth)
			if err != nil {
				return err
			}
			run := sinks.HashRun{Level: level, Start: have, Hashes: make([]byte, 0, (upto-have)*sinks.HashSize)}
			for t := range upto - have {
				run.Hashes = append(run.Hashes, foldTile(hs[t*TileWidth*sinks.HashSize:(t+1)*TileWidth*sinks.HashSize])...)
			}
			if err := b.o.Store.AppendTree(ctx, b.o.Log, cutRuns([]sinks.HashRun{run})); err != nil {
				return err
			}
			have = upto
		}
	}
}

// leaves hashes the entries stored after the end of level 0 and stores
// their leaf hashes there.
func (b *Builder) leaves(ctx context.Context) error {
	for {
		// The log's size first: a store that hashes leaves as it appends
		// has level 0 end there or later, and then nothing is read back
		// (reading entries an Append is hashing that moment would only
		// lose the race to store their leaves).
		logs, err := b.o.Store.Logs(ctx)
		if err != nil {
			return err
		}
		var size uint64
		for _, l := range logs {
			if l.Name == b.o.Log {
				size = l.Size
			}
		}
		end, err := b.o.Store.TreeEnd(ctx, b.o.Log, 0)
		if err != nil {
			return err
		}
		b.size = end
		if end >= size {
			return nil
		}
		ens, err := b.o.Store.Entries(ctx, b.o.Log, end, b.o.Batch)
		if errors.Is(err, sinks.ErrNoLog) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(ens) == 0 {
			return nil
		}
		run := sinks.HashRun{Start: end, Hashes: make([]byte, 0, len(ens)*sinks.HashSize)}
		for i := range ens {
			if ens[i].Seq != end+uint64(i)+1 {
				return fmt.Errorf("log %q: entry seq %d follows %d: the log has a hole", b.o.Log, ens[i].Seq, end+uint64(i))
			}
			b.leaf = AppendLeaf(append(b.leaf[:0], rfc6962.RFC6962LeafHashPrefix), &ens[i])
			run.Hashes = append(run.Hashes, HashLeaf(b.leaf)...)
		}
		if err := b.o.Store.AppendTree(ctx, b.o.Log, cutRuns([]sinks.HashRun{run})); err != nil {
			return err
		}
		b.size = run.End()
		if len(ens) < b.o.Batch {
			return nil
		}
	}
}

// foldTile is the hash of the perfect subtree over a tile's hashes.
func foldTile(b []byte) []byte {
	hs := make([][]byte, len(b)/sinks.HashSize)
	for i := range hs {
		hs[i] = b[i*sinks.HashSize : (i+1)*sinks.HashSize]
	}
	for len(hs) > 1 {
		for i := 0; i < len(hs)/2; i++ {
			hs[i] = hashChildren(hs[2*i], hs[2*i+1])
		}
		hs = hs[:len(hs)/2]
	}
	return hs[0]
}

// checkpoint stores a checkpoint of the tree when it grew since the last
// one and Interval has passed (or always, when force).
func (b *Builder) checkpoint(ctx context.Context, force bool) error {
	b.mu.Lock()
	size := b.size
	b.mu.Unlock()
	now := time.Now()
	if size == 0 || size == b.last.Size && !b.last.Time.IsZero() || !force && now.Sub(b.last.Time) < b.o.Interval {
		return nil
	}
	root, err := RootAt(ctx, b.o.Store, b.o.Log, size)
	if err != nil {
		return err
	}
	n, err := Sign(Checkpoint(b.o.Log, size, root), b.o.Signer)
	if err != nil {
		return fmt.Errorf("sign the checkpoint of log %q: %w", b.o.Log, err)
	}
	cp := sinks.StoredCheckpoint{Size: size, Time: now, Note: n}
	if err := b.o.Store.AppendCheckpoint(ctx, b.o.Log, cp); err != nil {
		return err
	}
	b.last = cp
	if b.o.Checkpointed != nil {
		b.o.Checkpointed(size, now)
	}
	return nil
}
