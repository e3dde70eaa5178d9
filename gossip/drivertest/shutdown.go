package drivertest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gossipbus/gossip/gossip"
)

func (s *suite) testBatchPublish(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	k := newSink()
	e.subscribe(sub, e.typ("batch"), k.handler, e.groupOpts("batch")...)
	batch := make([]*gossip.Event, 100)
	for i := range batch {
		batch[i] = gossip.NewEvent(e.typ("batch"), i)
	}
	e.publish(pub, batch...)
	k.waitDistinct(t, 100, s.h.Timeout)
}

func (s *suite) testConcurrency(t *testing.T) {
	e := s.env(t)
	const publishers, each, subscribers = 8, 50, 4
	sinks := make([]*sink, subscribers)
	for i := range sinks {
		sinks[i] = newSink()
		e.subscribe(e.bus(), e.typ("many"), sinks[i].handler, gossip.Workers(4))
	}
	var groupSink *sink
	if s.h.Groups {
		groupSink = newSink()
		for range 3 {
			e.subscribe(e.bus(), e.typ("many"), groupSink.handler, gossip.Group("many"), gossip.Workers(3))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := e.bus()
			for i := range each {
				if err := b.Publish(context.Background(), gossip.NewEvent(e.typ("many"), p*1000+i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, k := range sinks {
		k.waitDistinct(t, publishers*each, s.h.Timeout)
	}
	if groupSink != nil {
		groupSink.waitDistinct(t, publishers*each, s.h.Timeout)
	}
}

func (s *suite) testUnsubscribe(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	gone, stays := newSink(), newSink()
	sg := e.subscribe(sub, e.typ("unsub"), gone.handler, e.groupOpts("gone")...)
	e.subscribe(sub, e.typ("unsub"), stays.handler, gossip.Workers(1))
	e.publish(pub, gossip.NewEvent(e.typ("unsub"), 1))
	gone.waitDistinct(t, 1, s.h.Timeout)
	require.NoError(t, sg.Unsubscribe())
	require.NoError(t, sg.Unsubscribe(), "Unsubscribe is idempotent")
	waitChan(t, sg.Done(), s.h.Timeout, "Done after Unsubscribe")
	for i := range 5 {
		e.publish(pub, gossip.NewEvent(e.typ("unsub"), 10+i))
	}
	stays.waitDistinct(t, 6, s.h.Timeout)
	assert.Equal(t, 1, gone.count(), "no delivery after Unsubscribe")
}

func (s *suite) testUnsubscribeInHandler(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	var self *gossip.Subscription
	ready := make(chan struct{})
	unsubscribed := make(chan error, 1)
	self = e.subscribe(sub, e.typ("self"), func(ctx context.Context, ev *gossip.Event) error {
		<-ready
		unsubscribed <- self.Unsubscribe()
		return nil
	}, gossip.Workers(1))
	close(ready)
	e.publish(pub, gossip.NewEvent(e.typ("self"), 1))
	require.NoError(t, waitChan(t, unsubscribed, s.h.Timeout, "Unsubscribe from the handler"))
	waitChan(t, self.Done(), s.h.Timeout, "Done after a handler unsubscribed")
}

func (s *suite) testPublishAfterShutdown(t *testing.T) {
	e := s.env(t)
	b := e.bus()
	require.NoError(t, b.Shutdown(context.Background()))
	err := b.Publish(context.Background(), gossip.NewEvent(e.typ("closed"), 1))
	require.ErrorIs(t, err, gossip.ErrClosed)
	_, err = b.Subscribe(e.typ("closed"), newSink().handler)
	require.ErrorIs(t, err, gossip.ErrClosed)
}

func (s *suite) testShutdownIdempotent(t *testing.T) {
	e := s.env(t)
	b := e.bus()
	e.subscribe(b, e.typ("idem"), newSink().handler)
	require.NoError(t, b.Shutdown(context.Background()))
	require.NoError(t, b.Shutdown(context.Background()))
}

func (s *suite) testShutdownWaits(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	entered := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	chained := newSink()
	e.subscribe(pub, e.typ("inflight.chained"), chained.handler)
	chainErr := make(chan error, 1)
	e.subscribe(sub, e.typ("inflight"), func(ctx context.Context, ev *gossip.Event) error {
		close(entered)
		<-release
		// A handler finishing during Shutdown may still chain an event.
		chainErr <- sub.Publish(ctx, gossip.NewEvent(e.typ("inflight.chained"), ev.ID))
		finished.Store(true)
		return nil
	}, e.groupOpts("inflight", gossip.Workers(1))...)
	e.publish(pub, gossip.NewEvent(e.typ("inflight"), 1))
	waitChan(t, entered, s.h.Timeout, "the handler to start")

	done := make(chan error, 1)
	go func() { done <- sub.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a handler was running", err)
	case <-time.After(50 * time.Millisecond): // give Shutdown the chance to return wrongly
	}
	close(release)
	require.NoError(t, waitChan(t, done, s.h.Timeout, "Shutdown"))
	assert.True(t, finished.Load(), "the in-flight handler finished before Shutdown returned")
	require.NoError(t, waitChan(t, chainErr, s.h.Timeout, "the handler's Publish"), "a handler may publish while its bus shuts down")
	chained.waitDistinct(t, 1, s.h.Timeout)
	require.ErrorIs(t, sub.Publish(context.Background(), gossip.NewEvent(e.typ("inflight.chained"), 2)), gossip.ErrClosed,
		"after Shutdown, publishing with a handler's ctx or any other fails")

	if s.h.Durable {
		// It was acked: the group's next member does not see it again.
		k := newSink()
		e.subscribe(e.bus(), e.typ("inflight"), k.handler, gossip.Group("inflight"), gossip.Workers(1))
		marker := gossip.NewEvent(e.typ("inflight"), "marker")
		e.publish(pub, marker)
		got := k.waitDistinct(t, 1, s.h.Timeout)
		assert.Equal(t, marker.ID, got[0].ID)
		assert.Equal(t, 1, k.count())
	}

	// A Shutdown whose ctx ends before the handler returns gives up with ctx's error.
	stuck, stuckRelease := make(chan struct{}), make(chan struct{})
	cfg := s.h.Config(t, e.ns)
	b, err := gossip.NewEventBus(&cfg)
	require.NoError(t, err)
	e.subscribe(b, e.typ("stuck"), func(ctx context.Context, ev *gossip.Event) error {
		close(stuck)
		select {
		case <-stuckRelease:
		case <-ctx.Done(): // Shutdown giving up cancels handler contexts
		}
		return nil
	})
	e.publish(pub, gossip.NewEvent(e.typ("stuck"), 1))
	waitChan(t, stuck, s.h.Timeout, "the stuck handler to start")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, b.Shutdown(ctx), context.DeadlineExceeded)
	close(stuckRelease)
}

func (s *suite) testShutdownLeaksNoGoroutine(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	func() {
		e := s.env(t)
		cfg := s.h.Config(t, e.ns)
		pub, err := gossip.NewEventBus(&cfg)
		require.NoError(t, err)
		sub, err := gossip.NewEventBus(&cfg)
		require.NoError(t, err)
		k := newSink()
		_, err = sub.Subscribe(e.typ("leak"), k.handler, e.groupOpts("leak")...)
		require.NoError(t, err)
		_, err = sub.Subscribe(e.typ("leak"), k.handler)
		require.NoError(t, err)
		for i := range 20 {
			require.NoError(t, pub.Publish(context.Background(), gossip.NewEvent(e.typ("leak"), i)))
		}
		k.waitDistinct(t, 20, s.h.Timeout)
		require.NoError(t, sub.Shutdown(context.Background()))
		require.NoError(t, pub.Shutdown(context.Background()))
	}()
	goleak.VerifyNone(t, append(s.h.IgnoreGoroutines, ignore)...)
}
