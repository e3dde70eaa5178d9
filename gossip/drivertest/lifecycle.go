package drivertest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// quietWindow is how long a test watches for something that must not
// happen any more (a handler call after Shutdown returned): an observation
// window, not a wait for work.
const quietWindow = 500 * time.Millisecond

// A Shutdown whose ctx has ended (or ends at once) returns promptly, stops
// retrying, and no handler runs after it returned: not a failing one being
// retried, not a blocked one whose ctx was cancelled.
func (s *suite) testShutdownEndedCtxStopsRetrying(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"Cancelled", func() (context.Context, context.CancelFunc) { return endedCtx(), func() {} }},
		{"ShortDeadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := s.env(t)
			pub, sub := e.bus(), e.ownBus()
			var shut atomic.Bool
			var after, failCalls atomic.Int64
			retrying, blocked := make(chan struct{}), make(chan struct{})
			var blockedOnce sync.Once
			e.subscribe(sub, e.typ("fails"), func(ctx context.Context, ev *gossip.Event) error {
				if shut.Load() {
					after.Add(1)
				}
				if failCalls.Add(1) == 2 {
					close(retrying)
				}
				return errors.New("always fails")
			}, e.groupOpts("fails", gossip.MaxDeliveries(100), gossip.Workers(2))...)
			e.subscribe(sub, e.typ("blocks"), func(ctx context.Context, ev *gossip.Event) error {
				if shut.Load() {
					after.Add(1)
				}
				blockedOnce.Do(func() { close(blocked) })
				<-ctx.Done()
				return ctx.Err()
			}, e.groupOpts("blocks", gossip.Workers(2))...)
			e.publish(pub, gossip.NewEvent(e.typ("fails"), 1), gossip.NewEvent(e.typ("blocks"), 2))
			waitChan(t, retrying, s.h.Timeout, "the failing event to be retried")
			waitChan(t, blocked, s.h.Timeout, "the blocking handler to start")

			ctx, cancel := tc.ctx()
			defer cancel()
			_ = shutdownWithin(t, sub, ctx, 5*time.Second)
			shut.Store(true)
			window := time.NewTimer(quietWindow)
			defer window.Stop()
			<-window.C
			assert.Zero(t, after.Load(), "handlers ran %d times after Shutdown returned", after.Load())
		})
	}
}

// Subscribe calls racing Shutdown all return within a deadline: with
// ErrClosed, or with a live subscription that Shutdown then closed.
func (s *suite) testSubscribeRacingShutdown(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ended bool
	}{{"EndedCtx", true}, {"LiveCtx", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := s.env(t)
			b := e.ownBus()
			const goroutines, each = 8, 25
			type result struct {
				sub *gossip.Subscription
				err error
			}
			results := make(chan result, goroutines*each)
			var made atomic.Int64
			underway := make(chan struct{}) // every goroutine made one subscription
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var opts []gossip.SubscribeOption
					if g%2 == 1 {
						opts = e.groupOpts("racer")
					}
					for i := range each { // until Shutdown refuses it
						sub, err := b.Subscribe(e.typ("race."+strconv.Itoa(g)+"."+strconv.Itoa(i)), newSink().handler, opts...)
						results <- result{sub, err}
						if made.Add(1) == goroutines {
							close(underway)
						}
						if err != nil {
							return
						}
					}
				}()
			}
			allReturned := make(chan struct{})
			go func() {
				wg.Wait()
				close(allReturned)
			}()
			waitChan(t, underway, s.h.Timeout, "the first Subscribe calls")
			ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
			defer cancel()
			if tc.ended {
				ctx = endedCtx()
			}
			shutErr := shutdownWithin(t, b, ctx, s.h.Timeout)
			waitChan(t, allReturned, s.h.Timeout, "every Subscribe racing Shutdown to return")
			close(results)
			live, refused := 0, 0
			var wrong []error
			for r := range results {
				if r.err != nil {
					refused++
					if !errors.Is(r.err, gossip.ErrClosed) {
						wrong = append(wrong, r.err)
					}
					continue
				}
				live++
				waitChan(t, r.sub.Done(), s.h.Timeout, "Shutdown to close a subscription made while it ran")
			}
			t.Logf("%d subscriptions made, %d refused", live, refused)
			if len(wrong) > 0 {
				assert.Failf(t, "Subscribe racing Shutdown failed with another error than ErrClosed",
					"%d of %d refusals are not ErrClosed; the first: %v", len(wrong), refused, wrong[0])
			}
			if !tc.ended {
				assert.NoError(t, shutErr, "Shutdown with a live ctx")
			}
		})
	}
}

// A member leaving its group hands back at once the deliveries it fetched
// but never started: another member gets them well before AckWait.
func (s *suite) testMemberLeavingHandsBack(t *testing.T) {
	if !s.h.Groups {
		t.Skip("transport has no groups")
	}
	if s.h.Encodes && !s.h.Durable {
		t.Skip("transport holds nothing to hand back: a queue group's messages were pushed to the member and are gone from the server")
	}
	e := s.env(t)
	const ackWait, within = 20 * time.Second, 5 * time.Second
	cfg := func(c *gossip.Config) { c.AckWait, c.BufferSize = ackWait, 16 }
	typ := e.typ("handback")
	pub := e.bus(cfg)
	entered := make(chan string, 1)
	release := make(chan struct{})
	var aCalls atomic.Int64
	subA := e.subscribe(e.bus(cfg), typ, func(ctx context.Context, ev *gossip.Event) error {
		if aCalls.Add(1) == 1 {
			entered <- ev.ID
			select { // hold the worker: the other events wait in A's buffer
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}, gossip.Group("g"), gossip.Workers(1))
	events := make([]*gossip.Event, 6)
	for i := range events {
		events[i] = gossip.NewEvent(typ, i)
	}
	e.publish(pub, events...)
	first := waitChan(t, entered, s.h.Timeout, "member A to start on the first event")

	b := newSink()
	e.subscribe(e.bus(cfg), typ, b.handler, gossip.Group("g"))
	require.NoError(t, subA.Unsubscribe())
	close(release)
	var rest []*gossip.Event
	for _, ev := range events {
		if ev.ID != first {
			rest = append(rest, ev)
		}
	}
	// AckWait is 20s: only a hand-back makes this.
	missing := func() int {
		n := 0
		for _, ev := range rest {
			if !b.has(ev.ID) {
				n++
			}
		}
		return n
	}
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for missing() > 0 {
		select {
		case <-b.signal:
		case <-deadline.C:
			require.FailNowf(t, "not handed back", "%d of the %d events member A fetched but never started did not reach member B within %v (AckWait %v); A's handler ran %d times",
				missing(), len(rest), within, ackWait, aCalls.Load())
		}
	}
	assert.Equal(t, int64(1), aCalls.Load(), "member A handled events after it left")
}

// Fifty subscriptions on one bus, half of them in groups, all keep flowing:
// every event arrives, once, on its first delivery.
func (s *suite) testFiftySubscriptionsFlow(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	const subs, each = 50, 4
	sinks := make([]*sink, subs)
	events := make([][]*gossip.Event, subs)
	var redelivered atomic.Int64
	for i := range subs {
		k := newSink()
		sinks[i] = k
		var opts []gossip.SubscribeOption
		if i%2 == 1 {
			opts = e.groupOpts("g" + strconv.Itoa(i))
		}
		e.subscribe(sub, e.typ("flow."+strconv.Itoa(i)), func(ctx context.Context, ev *gossip.Event) error {
			if ev.Attempt() != 1 {
				redelivered.Add(1)
			}
			return k.handler(ctx, ev)
		}, opts...)
	}
	for i := range subs {
		for j := range each {
			events[i] = append(events[i], gossip.NewEvent(e.typ("flow."+strconv.Itoa(i)), j))
		}
		e.publish(pub, events[i]...)
	}
	deadline := time.Now().Add(s.h.Timeout)
	for i, k := range sinks {
		k.waitIDs(t, events[i], max(time.Until(deadline), time.Millisecond))
	}
	assert.Zero(t, redelivered.Load(), "deliveries after the first: acks were late or lost")
	for i, k := range sinks {
		assert.Equal(t, each, k.count(), "subscription %d: each event handled once", i)
	}
}
