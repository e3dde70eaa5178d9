package gossip

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// dropLogEvery spaces the log lines about one subscription's drops.
const dropLogEvery = 10 * time.Second

// dropCounter counts what an at-most-once transport discarded for one
// subscription (driver.SubscribeSpec.Dropped) and logs it: the first drop at
// once, then at most one line per dropLogEvery with the count since the last.
type dropCounter struct {
	log     *slog.Logger
	pattern EventType
	group   string

	total atomic.Uint64

	mu       sync.Mutex
	unlogged uint64
	lastLog  time.Time
}

func (c *dropCounter) add(n int) {
	if n <= 0 {
		return
	}
	total := c.total.Add(uint64(n))
	c.mu.Lock()
	c.unlogged += uint64(n)
	now := time.Now()
	if !c.lastLog.IsZero() && now.Sub(c.lastLog) < dropLogEvery {
		c.mu.Unlock()
		return
	}
	n64 := c.unlogged
	c.unlogged, c.lastLog = 0, now
	c.mu.Unlock()
	c.log.Warn("gossip: the transport dropped events this subscription had no room for (slow consumer)",
		"pattern", string(c.pattern), "group", c.group, "dropped", n64, "dropped_total", total)
}

// Dropped is the number of events the transport discarded because this
// subscription could not keep up: only at-most-once transports (NATS core
// mode) ever drop; the others make the publisher wait or keep the events.
func (s *Subscription) Dropped() uint64 {
	if s.drops == nil {
		return 0
	}
	return s.drops.total.Load()
}
