package nats

import (
	"context"
	"fmt"
	"sync"

	natsgo "github.com/nats-io/nats.go"

	"github.com/gossipbus/gossip/gossip/driver"
)

// publishCore hands msgs to nats.go, which writes them out at once: when
// Publish returns they may still be in the client (Close flushes them).
// With SyncFlush it flushes too: the server has read them when it returns.
// Core NATS stores nothing: an event no subscriber is listening for is gone
// (at-most-once).
func (c *Conn) publishCore(ctx context.Context, msgs []*driver.Message) error {
	for _, m := range msgs {
		w := encodeMessage(c.publishSubject(m.Type), m, "")
		err := c.nc.PublishMsg(&w.Msg)
		w.release()
		if err != nil {
			return c.publishError(ctx, m, err)
		}
	}
	if !c.cfg.syncFlush {
		return nil
	}
	fctx, cancel := withDeadline(ctx)
	defer cancel()
	if err := c.nc.FlushWithContext(fctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("nats: publish: flush: %w", err)
	}
	return nil
}

// coreSub is a plain NATS subscription (a queue subscription for a group).
// It settles nothing: gossip redelivers failed events in process.
type coreSub struct {
	c       *Conn
	sub     *natsgo.Subscription
	ch      chan driver.Delivery
	dropped func(n int) // SubscribeSpec.Dropped
	lost    int         // the drops reported so far (nats.go's count)

	stopping chan struct{} // closed by Stop: a blocked hand-over gives up
	mu       sync.RWMutex  // the callback holds it shared; Stop takes it to close ch
	stopped  bool
	stopOnce sync.Once
}

func (c *Conn) subscribeCore(ctx context.Context, spec driver.SubscribeSpec) (driver.Subscription, error) {
	s := &coreSub{c: c, ch: make(chan driver.Delivery, spec.BufferSize), stopping: make(chan struct{}), dropped: spec.Dropped}
	if s.dropped == nil {
		s.dropped = func(int) {}
	}
	subject := c.Subject(spec.Pattern)
	var err error
	if spec.Group == "" {
		s.sub, err = c.nc.Subscribe(subject, s.handOver)
	} else {
		s.sub, err = c.nc.QueueSubscribe(subject, consumerName(spec.Group, spec.Pattern), s.handOver)
	}
	if err != nil {
		return nil, fmt.Errorf("nats: subscribe %s: %w", subject, err)
	}
	// Messages the handlers cannot keep up with wait in the client, up to
	// PendingMsgs messages and PendingBytes bytes; nats.go drops what comes
	// beyond (a slow consumer), and handOver reports the count.
	if err := s.sub.SetPendingLimits(c.cfg.pendingMsgs, c.cfg.pendingBytes); err != nil {
		_ = s.sub.Unsubscribe()
		return nil, fmt.Errorf("nats: subscribe %s: pending limits: %w", subject, err)
	}
	// Subscribe is live once the server has the interest.
	fctx, cancel := withDeadline(ctx)
	defer cancel()
	if err := c.nc.FlushWithContext(fctx); err != nil {
		_ = s.sub.Unsubscribe()
		return nil, fmt.Errorf("nats: subscribe %s: flush: %w", subject, err)
	}
	return s, nil
}

// handOver runs on the subscription's goroutine, one message at a time: it
// waits for room in the Deliveries channel, so a slow handler holds the
// rest in the client's pending queue, where nats.go drops what is over its
// limits. Each drop happens while messages wait in that queue, so the
// handOver of one of them reports it.
func (s *coreSub) handOver(msg *natsgo.Msg) {
	s.reportDrops()
	m, err := s.c.decode(msg.Subject, msg.Header, msg.Data)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.stopped {
		return
	}
	select {
	case s.ch <- driver.Delivery{Message: m, Err: err, Attempt: 1}:
	case <-s.stopping:
	}
}

// reportDrops tells gossip how many messages nats.go dropped since the last
// report. Only the subscription's goroutine calls it.
func (s *coreSub) reportDrops() {
	if n, err := s.sub.Dropped(); err == nil && n > s.lost {
		s.dropped(n - s.lost)
		s.lost = n
	}
}

func (s *coreSub) Deliveries() <-chan driver.Delivery { return s.ch }

// Stop unsubscribes and closes the Deliveries channel. Messages the client
// held but had not handed over are dropped: core NATS is at-most-once.
// Once Stop returns the server has dropped the interest, so events
// published after it go to the group's other members.
func (s *coreSub) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		close(s.stopping)
		// Unsubscribe fails only on a closed or draining connection, where
		// the interest goes anyway; the flush is best effort too.
		if s.sub.Unsubscribe() == nil {
			fctx, cancel := withDeadline(ctx)
			_ = s.c.nc.FlushWithContext(fctx)
			cancel()
		}
		s.mu.Lock()
		s.stopped = true
		close(s.ch)
		s.mu.Unlock()
	})
	return nil
}

// Close stops the subscription if Stop did not.
func (s *coreSub) Close(ctx context.Context) error { return s.Stop(ctx) }
