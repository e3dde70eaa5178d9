package redis

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gossipbus/gossip/gossip/driver"
)

// pubsubSub is a Pub/Sub-mode subscription: SUBSCRIBE for an event type,
// PSUBSCRIBE for a pattern. It settles nothing: gossip retries in process.
type pubsubSub struct {
	c       *conn
	pattern string
	ps      *goredis.PubSub
	ch      chan driver.Delivery
	ctx     context.Context // ends at Stop
	cancel  context.CancelFunc
	done    chan struct{} // closed with ch, when receive returns
	once    sync.Once
}

// globPattern maps a gossip pattern to a Redis glob. A glob's '*' matches
// dots too, so it matches more than the pattern: received messages are
// filtered with driver.Match.
func globPattern(prefix, pattern string) string {
	var b strings.Builder
	for _, r := range prefix {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte(':')
	for i, t := range strings.Split(pattern, ".") {
		if i > 0 {
			b.WriteByte('.')
		}
		if t == "*" || t == ">" {
			b.WriteByte('*')
		} else {
			b.WriteString(t) // tokens hold no glob characters
		}
	}
	return b.String()
}

func (c *conn) subscribePubSub(ctx context.Context, spec driver.SubscribeSpec) (driver.Subscription, error) {
	var ps *goredis.PubSub
	if driver.IsPattern(spec.Pattern) {
		ps = c.client.PSubscribe(ctx, globPattern(c.opts.prefix, spec.Pattern))
	} else {
		ps = c.client.Subscribe(ctx, c.pubsubChannel(spec.Pattern))
	}
	// Wait for the server's confirmation: from here on we receive.
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("redis: subscribe %s: %w", spec.Pattern, err)
	}
	s := &pubsubSub{
		c: c, pattern: spec.Pattern, ps: ps,
		ch:   make(chan driver.Delivery, spec.BufferSize),
		done: make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.receive()
	return s, nil
}

// reconnectBackoff spaces the retries of a failed read or subscription.
var reconnectBackoff = driver.Backoff{Initial: 50 * time.Millisecond, Max: time.Second}

// receive hands the messages over until Stop.
func (s *pubsubSub) receive() {
	defer close(s.done)
	defer close(s.ch)
	ctx := s.ctx
	prefix := s.c.opts.prefix + ":"
	failures := 0
	for {
		msg, err := s.ps.ReceiveMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			s.c.opts.logger.Warn("redis: Pub/Sub receive failed; reconnecting (messages published meanwhile are lost: Pub/Sub keeps nothing)",
				"pattern", s.pattern, "error", err)
			if !reconnectBackoff.Wait(ctx, failures) {
				return
			}
			continue
		}
		failures = 0
		typ, ok := strings.CutPrefix(msg.Channel, prefix)
		if !ok || driver.ValidateType(typ) != nil || !driver.Match(s.pattern, typ) {
			continue
		}
		m, derr := decodeStructured(typ, []byte(msg.Payload))
		d := driver.Delivery{Message: m, Attempt: 1}
		if derr != nil {
			d.Err = fmt.Errorf("message on %s: %w", msg.Channel, derr)
		}
		select {
		case s.ch <- d:
		case <-ctx.Done():
			return // nothing else holds it: dropped
		}
	}
}

func (s *pubsubSub) Deliveries() <-chan driver.Delivery { return s.ch }

// Stop unsubscribes and returns once Deliveries is closed.
func (s *pubsubSub) Stop(ctx context.Context) error {
	s.once.Do(func() {
		s.cancel()
		_ = s.ps.Close()
	})
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close waits for the receiving goroutine to end.
func (s *pubsubSub) Close(ctx context.Context) error { return s.Stop(ctx) }
