package gossip

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// dropLogEvery spaces the log lines about one subscription's drops.
const dropLogEvery = 10 * time.Second

// DropObserver is told what an at-most-once transport discarded for a
// subscription (matching pattern, in group, "" for a broadcast one) because
// it could not keep up: n events since the last call. It may be called from
// any goroutine, and must not block.
type DropObserver func(pattern EventType, group string, n int)

// ObserveDrops adds f to the observers of every subscription's drops, those
// made before and after it (middleware.Meter counts them as
// gossip.dropped). Only at-most-once transports (NATS core mode) ever drop;
// on the others f is never called.
func (b *EventBus) ObserveDrops(f DropObserver) {
	b.mu.Lock()
	defer b.mu.Unlock()
	obs := append(append([]DropObserver(nil), b.dropObservers.load()...), f)
	b.dropObservers.p.Store(&obs)
}

// dropObservers is a copy-on-write list, read without a lock on each drop.
type dropObservers struct {
	p atomic.Pointer[[]DropObserver]
}

func (o *dropObservers) load() []DropObserver {
	if p := o.p.Load(); p != nil {
		return *p
	}
	return nil
}

// dropCounter counts what an at-most-once transport discarded for one
// subscription (driver.SubscribeSpec.Dropped), tells the bus's observers
// and logs it: the first drop at once, then at most one line per
// dropLogEvery with the count since the last, and a last line when the
// subscription closes with drops not yet logged.
type dropCounter struct {
	log       *slog.Logger
	pattern   EventType
	group     string
	observers *dropObservers

	total atomic.Uint64

	mu       sync.Mutex
	unlogged uint64
	lastLog  time.Time
}

func (c *dropCounter) add(n int) {
	if n <= 0 {
		return
	}
	c.total.Add(uint64(n))
	for _, f := range c.observers.load() {
		f(c.pattern, c.group, n)
	}
	c.mu.Lock()
	c.unlogged += uint64(n)
	now := time.Now()
	if !c.lastLog.IsZero() && now.Sub(c.lastLog) < dropLogEvery {
		c.mu.Unlock()
		return
	}
	c.logLocked(now, "gossip: the transport dropped events this subscription had no room for (slow consumer)")
}

// flush logs the drops not logged yet, once the subscription is closed and
// the transport reports no more.
func (c *dropCounter) flush() {
	c.mu.Lock()
	if c.unlogged == 0 {
		c.mu.Unlock()
		return
	}
	c.logLocked(time.Now(), "gossip: the transport dropped events this subscription had no room for (slow consumer); the subscription is closed")
}

// logLocked logs the unlogged drops; c.mu is held, and released.
func (c *dropCounter) logLocked(now time.Time, msg string) {
	n := c.unlogged
	c.unlogged, c.lastLog = 0, now
	c.mu.Unlock()
	c.log.Warn(msg, "pattern", string(c.pattern), "group", c.group, "dropped", n, "dropped_total", c.total.Load())
}

// Dropped is the number of events the transport discarded because this
// subscription could not keep up: only at-most-once transports (NATS core
// mode) ever drop; the others make the publisher wait or keep the events.
// ObserveDrops and middleware.Meter see the same counts.
func (s *Subscription) Dropped() uint64 {
	if s.drops == nil {
		return 0
	}
	return s.drops.total.Load()
}
