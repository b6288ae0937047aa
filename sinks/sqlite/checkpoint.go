package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync"
	"sync/atomic"
)

const (
	// checkpointBytes is roughly how much an Append writes to the log
	// before the checkpointer is asked to copy it into the database:
	// about SQLite's own default of 1,000 pages.
	checkpointBytes = 4 << 20
	// restartFrames is the log size, in frames, past which a checkpoint
	// that copied the whole log also waits for the writer so that the log
	// starts over. A PASSIVE checkpoint never blocks the writer, but a
	// writer that never pauses would then never see a fully copied log,
	// and the file would grow without bound.
	restartFrames = 16384
	// behindBytes is how far appends may run ahead of the last finished
	// checkpoint (about restartFrames pages) before an Append waits for
	// the checkpointer: when it cannot keep up, the appends slow down
	// instead of the log growing.
	behindBytes = 64 << 20
)

// checkpointer copies the write-ahead log into the database on its own
// connection and goroutine, so the copy (reads, writes and an fsync of the
// database file) runs beside the appends instead of inside one of their
// commits. Its errors only delay the copy: the log stays valid and the
// next attempt copies what is left.
type checkpointer struct {
	db      *sql.DB
	conn    *sql.Conn
	kick    chan struct{}
	quit    chan struct{}
	stopped chan struct{}

	every, restart, behind int // checkpointBytes, restartFrames, behindBytes

	pending int          // bytes appended since the last kick; the writer's, under Store.wmu
	ahead   atomic.Int64 // bytes appended since the last finished checkpoint began

	mu   sync.Mutex
	done chan struct{} // closed when the checkpoint in progress or next ends
}

// startCheckpointer starts one on conn that checkpoints after every bytes
// appended, restarts the log past restart frames and holds appends that
// run behind bytes ahead.
func startCheckpointer(db *sql.DB, conn *sql.Conn, every, restart, behind int) *checkpointer {
	c := &checkpointer{db: db, conn: conn, kick: make(chan struct{}, 1), quit: make(chan struct{}), stopped: make(chan struct{}),
		every: every, restart: restart, behind: behind, done: make(chan struct{})}
	go c.run()
	return c
}

// appended records that a commit wrote about n bytes to the log and asks
// for a checkpoint once enough have gathered. It never blocks.
func (c *checkpointer) appended(n int) {
	c.ahead.Add(int64(n))
	c.pending += n
	if c.pending < c.every {
		return
	}
	c.pending = 0
	c.poke()
}

func (c *checkpointer) poke() {
	select {
	case c.kick <- struct{}{}:
	default: // one is already due
	}
}

// keepUp waits for one checkpoint to end when the appends have run too far
// ahead of the last one. The writer calls it before a transaction.
func (c *checkpointer) keepUp(ctx context.Context) error {
	if c.ahead.Load() < int64(c.behind) {
		return nil
	}
	c.mu.Lock()
	done := c.done
	c.mu.Unlock()
	c.poke()
	select {
	case <-done:
		return nil
	case <-c.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *checkpointer) run() {
	defer close(c.stopped)
	for {
		select {
		case <-c.quit:
			return
		case <-c.kick:
		}
		c.checkpoint()
		c.mu.Lock()
		close(c.done)
		c.done = make(chan struct{})
		c.mu.Unlock()
	}
}

func (c *checkpointer) checkpoint() {
	// What is appended from here on may not be in this checkpoint.
	began := c.ahead.Load()
	log, ok := c.pragma("PASSIVE")
	if !ok {
		return
	}
	if log >= int64(c.restart) {
		// The log is copied but long. Start it over now, not at the next
		// kick: a writer that never pauses keeps adding to it meanwhile.
		// RESTART copies what was appended since, waits for the writer's
		// transaction and for readers still in the log, and holds new
		// writers only while it runs.
		if _, ok := c.pragma("RESTART"); !ok {
			return
		}
	}
	c.ahead.Add(-began)
}

// pragma runs one wal_checkpoint in mode and reports the log's size in
// frames and whether every frame was copied. Anything short of that only
// delays the copy: a later checkpoint copies what this one did not.
func (c *checkpointer) pragma(mode string) (log int64, ok bool) {
	var busy, copied int64
	err := c.conn.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &log, &copied)
	switch {
	case errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn):
		// The connection broke; the next kick uses a new one.
		_ = c.conn.Close()
		if conn, err := c.db.Conn(context.Background()); err == nil {
			c.conn = conn
		}
		return 0, false
	case err != nil:
		return 0, false
	}
	// busy: another connection was checkpointing, or (RESTART) readers
	// stayed in the log; copied < log: readers still use frames this one
	// could not copy.
	return log, busy == 0 && copied >= log
}

// stop ends the goroutine after the checkpoint in progress, if any.
func (c *checkpointer) stop() {
	close(c.quit)
	<-c.stopped
	_ = c.conn.Close()
}
