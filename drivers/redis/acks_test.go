package redis_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	redisdrv "github.com/gossipbus/gossip/drivers/redis"
	"github.com/gossipbus/gossip/gossip"
)

// Acks reach Redis in batches (fewer XACKs than events), and
// every handled event's ack is sent before Shutdown returns: nothing stays
// pending for the group, so a restarted member sees none of them again.
func TestAcksCoalescedAndFlushedAtShutdown(t *testing.T) {
	requireRedis(t)
	ns := newNS(t)
	const n = 2000
	typ := gossip.EventType("batch.acked")
	var xacks, acked atomic.Int64
	sub, client := hookedSubscriber(t, ns, xackCounter{&xacks, &acked})
	h, waitAll := countTo(n)
	_, err := sub.Subscribe(typ, h, gossip.Group("billing"), gossip.Workers(10))
	require.NoError(t, err)

	pub := newBus(t, testURL, ns)
	events := make([]*gossip.Event, n)
	for i := range events {
		events[i] = gossip.NewEvent(typ, i)
	}
	require.NoError(t, pub.Publish(context.Background(), events...))
	waitAll(t)
	shutdownWithin(t, sub)

	assert.Equal(t, int64(n), acked.Load(), "every event acked once")
	assert.Less(t, xacks.Load(), int64(n), "acks are coalesced")
	assert.Zero(t, pendingIn(t, client, ns, typ, "billing"), "nothing left pending after Shutdown")
}

// xackCounter counts XACK commands and the IDs they carry.
type xackCounter struct{ cmds, ids *atomic.Int64 }

func (xackCounter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h xackCounter) count(cmd goredis.Cmder) {
	if strings.EqualFold(cmd.Name(), "xack") {
		h.cmds.Add(1)
		h.ids.Add(int64(len(cmd.Args()) - 3))
	}
}

func (h xackCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.count(cmd)
		return next(ctx, cmd)
	}
}

func (h xackCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		for _, cmd := range cmds {
			h.count(cmd)
		}
		return next(ctx, cmds)
	}
}

// An acknowledgement reaches Redis while the subscription runs: queued
// and sent within moments by default (ack=async), before Ack returns with
// ack=sync. Either way the handled event is no longer pending, with no
// Close to flush it.
func TestAckSentWhileSubscribed(t *testing.T) {
	requireRedis(t)
	for _, mode := range []string{"async", "sync"} {
		t.Run(mode, func(t *testing.T) {
			ns := newNS(t)
			typ := gossip.EventType("acked." + mode)
			acked := make(chan struct{}, 1)
			opt := redisdrv.AsyncAck()
			if mode == "sync" {
				opt = redisdrv.SyncAck()
			}
			sub, client := hookedSubscriber(t, ns, xackDone{acked}, opt)
			_, err := sub.Subscribe(typ, func(context.Context, *gossip.Event) error { return nil }, gossip.Group("billing"))
			require.NoError(t, err)

			require.NoError(t, newBus(t, testURL, ns).Publish(context.Background(), gossip.NewEvent(typ, 1)))
			select {
			case <-acked:
			case <-time.After(10 * time.Second):
				t.Fatal("no XACK within 10s")
			}
			assert.Zero(t, pendingIn(t, client, ns, typ, "billing"), "nothing pending once the XACK was answered")
		})
	}
}

// xackDone signals once an XACK was answered without an error.
type xackDone struct{ done chan struct{} }

func (xackDone) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h xackDone) answered(cmd goredis.Cmder) {
	if strings.EqualFold(cmd.Name(), "xack") && cmd.Err() == nil {
		select {
		case h.done <- struct{}{}:
		default:
		}
	}
}

func (h xackDone) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		h.answered(cmd)
		return err
	}
}

func (h xackDone) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			h.answered(cmd)
		}
		return err
	}
}

// slowXACK makes every XACK round trip take delay, counts how many are
// under way at once (peak), and signals each one's start on started.
type slowXACK struct {
	delay    time.Duration
	inFlight *atomic.Int64
	peak     *atomic.Int64
	started  chan struct{}
}

func (slowXACK) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h slowXACK) around(cmds []goredis.Cmder, next func() error) error {
	if !slices.ContainsFunc(cmds, func(c goredis.Cmder) bool { return strings.EqualFold(c.Name(), "xack") }) {
		return next()
	}
	n := h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	for p := h.peak.Load(); n > p && !h.peak.CompareAndSwap(p, n); p = h.peak.Load() {
	}
	select {
	case h.started <- struct{}{}:
	default:
	}
	time.Sleep(h.delay) // a slow Redis
	return next()
}

func (h slowXACK) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		return h.around([]goredis.Cmder{cmd}, func() error { return next(ctx, cmd) })
	}
}

func (h slowXACK) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		return h.around(cmds, func() error { return next(ctx, cmds) })
	}
}

// While Redis answers an XACK slowly, a subscription's later acks wait
// for it and go in its next XACK: one acknowledging round trip at a time
// (not one more every millisecond, each holding a connection of the
// pool), and every event is still acknowledged.
func TestSlowAcksGoOneRoundTripAtATime(t *testing.T) {
	requireRedis(t)
	ns := newNS(t)
	const n = 300
	typ := gossip.EventType("acks.slow")
	var inFlight, peak atomic.Int64
	sub, client := hookedSubscriber(t, ns, slowXACK{delay: 50 * time.Millisecond, inFlight: &inFlight, peak: &peak, started: make(chan struct{}, 1)})
	h, waitAll := countTo(n)
	_, err := sub.Subscribe(typ, h, gossip.Group("billing"), gossip.Workers(4))
	require.NoError(t, err)
	pub := newBus(t, testURL, ns)
	for i := range n { // one at a time: acks spread over many milliseconds
		require.NoError(t, pub.Publish(context.Background(), gossip.NewEvent(typ, i)))
	}
	waitAll(t)
	shutdownWithin(t, sub)
	assert.Equal(t, int64(1), peak.Load(), "XACK round trips under way at once")
	assert.Zero(t, pendingIn(t, client, ns, typ, "billing"), "every event acknowledged")
}

// Shutdown whose ctx ends while an XACK flush waits for Redis returns when
// its ctx ends, not when Redis answers.
func TestShutdownDoesNotWaitOutASlowAckFlush(t *testing.T) {
	requireRedis(t)
	ns := newNS(t)
	typ := gossip.EventType("acks.stuck")
	var inFlight, peak atomic.Int64
	started := make(chan struct{}, 1)
	sub, _ := hookedSubscriber(t, ns, slowXACK{delay: 3 * time.Second, inFlight: &inFlight, peak: &peak, started: started})
	_, err := sub.Subscribe(typ, func(context.Context, *gossip.Event) error { return nil }, gossip.Group("billing"))
	require.NoError(t, err)
	require.NoError(t, newBus(t, testURL, ns).Publish(context.Background(), gossip.NewEvent(typ, 1)))
	select {
	case <-started: // the event was handled and its XACK is under way
	case <-time.After(10 * time.Second):
		t.Fatal("no XACK within 10s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_ = sub.Shutdown(ctx)
	assert.Less(t, time.Since(begin), 2*time.Second, "Shutdown waited for the XACK flush after its ctx ended")
	// The hook's round trip ends by itself: wait for it, so that nothing
	// of the test outlives it.
	require.Eventually(t, func() bool { return inFlight.Load() == 0 }, 10*time.Second, 10*time.Millisecond)
}

// hookedSubscriber is a bus for the subscribing side on a go-redis client
// of its own with hook h, which the test watches the XACKs on.
func hookedSubscriber(t *testing.T, ns string, h goredis.Hook, opts ...redisdrv.Option) (*gossip.EventBus, goredis.UniversalClient) {
	t.Helper()
	client := newClient(t, testURL)
	client.AddHook(h)
	conn, err := redisdrv.New(client, append([]redisdrv.Option{redisdrv.Prefix(ns), redisdrv.Logger(discard)}, opts...)...)
	require.NoError(t, err)
	sub, err := gossip.NewEventBus(&gossip.Config{Conn: conn, Logger: discard})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Shutdown(context.Background()) })
	return sub, client
}

// countTo is a handler that counts the events it handles, and a wait for
// the n-th, which fails t after 20 s.
func countTo(n int64) (gossip.Handler, func(t *testing.T)) {
	var handled atomic.Int64
	all := make(chan struct{})
	h := func(context.Context, *gossip.Event) error {
		if handled.Add(1) == n {
			close(all)
		}
		return nil
	}
	return h, func(t *testing.T) {
		t.Helper()
		select {
		case <-all:
		case <-time.After(20 * time.Second):
			t.Fatalf("handled %d of %d events", handled.Load(), n)
		}
	}
}

// shutdownWithin shuts bus down, failing t if that takes over 20 s.
func shutdownWithin(t *testing.T, bus *gossip.EventBus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, bus.Shutdown(ctx))
}

// pendingIn is how many entries of typ's stream wait for an ack in group.
func pendingIn(t *testing.T, client goredis.UniversalClient, ns string, typ gossip.EventType, group string) int64 {
	t.Helper()
	p, err := client.XPending(context.Background(), ns+":{"+string(typ)+"}:stream", group).Result()
	require.NoError(t, err)
	return p.Count
}
