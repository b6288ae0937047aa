package kafka

import (
	"sync"

	kafkago "github.com/segmentio/kafka-go"
)

// committer commits the offsets of one generation from a single goroutine.
// Partition readers mark the offset after each handled batch and go on
// reading; the committer sends whatever was marked since its last commit as
// one OffsetCommit request. Concurrent commits on kafka-go's group
// connection each wait for their own response and spin while they do, so
// funnelling them through one goroutine is both cheaper and fewer round
// trips. The pending set holds one offset per partition, so it is bounded.
type committer struct {
	s   *subscription
	gen *kafkago.Generation

	mu      sync.Mutex
	pending map[int]int64
	kick    chan struct{}
	quit    chan struct{}
	done    chan struct{}
}

func newCommitter(s *subscription, gen *kafkago.Generation) *committer {
	c := &committer{
		s: s, gen: gen, pending: make(map[int]int64),
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
	}
	go c.run()
	return c
}

// mark records that everything before next in partition is handled.
func (c *committer) mark(partition int, next int64) {
	c.mu.Lock()
	c.pending[partition] = next
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// close commits what is still pending and stops the goroutine. Call it
// after every partition reader of the generation has returned.
func (c *committer) close() {
	close(c.quit)
	<-c.done
}

func (c *committer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.kick:
			c.flush()
		case <-c.quit:
			c.flush()
			return
		}
	}
}

func (c *committer) flush() {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.mu.Unlock()
		return
	}
	offsets := c.pending
	c.pending = make(map[int]int64, len(offsets))
	c.mu.Unlock()
	if err := c.gen.CommitOffsets(map[string]map[int]int64{c.s.topic: offsets}); err != nil {
		// The generation ended under us: those batches are delivered again
		// to whoever gets the partitions (at-least-once).
		c.s.t.cfg.Logger.Warn("kafka commit failed; handled batches may be delivered again",
			"topic", c.s.topic, "group", c.s.group, "offsets", offsets, "error", err)
	}
}
