package redis

import (
	"context"
	"fmt"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gossipbus/gossip/gossip/driver"
)

// pubsubSub is a Pub/Sub-mode subscription: SUBSCRIBE for an event type,
// PSUBSCRIBE for a pattern. It has no Acknowledger: gossip retries in
// process.
type pubsubSub struct {
	c       *conn
	pattern string
	ps      *goredis.PubSub
	ch      chan driver.Delivery
	stop    chan struct{}
	done    chan struct{}
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
	toks := strings.Split(pattern, ".")
	for i, t := range toks {
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

func (c *conn) subscribePubSub(ctx context.Context, spec driver.SubscribeSpec) (subscription, error) {
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
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	c.bg.Add(1)
	go s.receive()
	return s, nil
}

func (s *pubsubSub) receive() {
	defer s.c.bg.Done()
	defer func() {
		close(s.ch)
		close(s.done)
		s.c.forget(s)
	}()
	prefix := s.c.opts.prefix + ":"
	failures := 0
	for {
		msg, err := s.ps.ReceiveMessage(context.Background())
		if err != nil {
			select {
			case <-s.stop:
				return
			default:
			}
			failures++
			s.c.opts.logger.Warn("redis: Pub/Sub receive failed; reconnecting (messages published meanwhile are lost: Pub/Sub keeps nothing)",
				"pattern", s.pattern, "error", err)
			if !pause(s.stop, failures) {
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
		case <-s.stop:
			return
		}
	}
}

func (s *pubsubSub) Deliveries() <-chan driver.Delivery { return s.ch }

func (s *pubsubSub) Close(context.Context) error {
	s.once.Do(func() {
		close(s.stop)
		_ = s.ps.Close()
	})
	return nil
}

func (s *pubsubSub) closeNow()                 { _ = s.Close(context.Background()) }
func (s *pubsubSub) finished() <-chan struct{} { return s.done }
