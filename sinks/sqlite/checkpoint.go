package sqlite

import (
	"context"
	"database/sql"
	"sync/atomic"
)

const (
	// checkpointBytes is roughly how much an Append writes to the log
	// before the checkpointer is asked to copy it into the database:
	// about SQLite's own default of 1,000 pages.
	checkpointBytes = 4 << 20
	// restartFrames is the log size, in frames, past which a checkpoint
	// also waits for the writer so that the log starts over. A PASSIVE
	// checkpoint never blocks the writer, but a writer that never pauses
	// would then never see a fully copied log, and the file would grow
	// without bound.
	restartFrames = 16384
)

// checkpointer copies the write-ahead log into the database on its own
// connection and goroutine, so the copy (reads, writes and an fsync of the
// database file) runs beside the appends instead of inside one of their
// commits. Its errors only delay the copy: the log stays valid and the
// next attempt copies what is left.
type checkpointer struct {
	conn    *sql.Conn
	kick    chan struct{}
	quit    chan struct{}
	stopped chan struct{}
	frames  atomic.Int64 // log size in frames at the last checkpoint
	pending int          // bytes appended since the last kick; the writer's, under Store.wmu
}

func startCheckpointer(conn *sql.Conn) *checkpointer {
	c := &checkpointer{conn: conn, kick: make(chan struct{}, 1), quit: make(chan struct{}), stopped: make(chan struct{})}
	go c.run()
	return c
}

// appended records that a commit wrote about n bytes to the log and asks
// for a checkpoint once enough have gathered. It never blocks.
func (c *checkpointer) appended(n int) {
	c.pending += n
	if c.pending < checkpointBytes {
		return
	}
	c.pending = 0
	select {
	case c.kick <- struct{}{}:
	default: // one is already due
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
		mode := "PASSIVE"
		if c.frames.Load() >= restartFrames {
			mode = "RESTART"
		}
		var busy, log, copied int64
		err := c.conn.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &log, &copied)
		switch {
		case err != nil:
		case mode == "RESTART" && busy == 0:
			c.frames.Store(0) // the next commit starts the log over
		default:
			c.frames.Store(log)
		}
	}
}

// stop ends the goroutine after the checkpoint in progress, if any.
func (c *checkpointer) stop() {
	close(c.quit)
	<-c.stopped
	_ = c.conn.Close()
}
