package redis_test

import (
	"context"
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
	client := newClient(t, testURL)
	client.AddHook(xackCounter{&xacks, &acked})
	conn, err := redisdrv.New(client, redisdrv.Prefix(ns), redisdrv.Logger(discard))
	require.NoError(t, err)
	sub, err := gossip.NewEventBus(&gossip.Config{Conn: conn, Logger: discard})
	require.NoError(t, err)
	var handled atomic.Int64
	all := make(chan struct{})
	_, err = sub.Subscribe(typ, func(ctx context.Context, e *gossip.Event) error {
		if handled.Add(1) == n {
			close(all)
		}
		return nil
	}, gossip.Group("billing"), gossip.Workers(10))
	require.NoError(t, err)

	pub := newBus(t, testURL, ns)
	events := make([]*gossip.Event, n)
	for i := range events {
		events[i] = gossip.NewEvent(typ, i)
	}
	require.NoError(t, pub.Publish(context.Background(), events...))
	select {
	case <-all:
	case <-time.After(20 * time.Second):
		t.Fatalf("handled %d of %d events", handled.Load(), n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, sub.Shutdown(ctx))

	assert.Equal(t, int64(n), acked.Load(), "every event acked once")
	assert.Less(t, xacks.Load(), int64(n), "acks are coalesced")
	check := newClient(t, testURL)
	pending, err := check.XPending(context.Background(), ns+":{"+string(typ)+"}:stream", "billing").Result()
	require.NoError(t, err)
	assert.Zero(t, pending.Count, "nothing left pending after Shutdown")
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
			client := newClient(t, testURL)
			acked := make(chan struct{}, 1)
			client.AddHook(xackDone{acked})
			opt := redisdrv.AsyncAck()
			if mode == "sync" {
				opt = redisdrv.SyncAck()
			}
			conn, err := redisdrv.New(client, redisdrv.Prefix(ns), redisdrv.Logger(discard), opt)
			require.NoError(t, err)
			sub, err := gossip.NewEventBus(&gossip.Config{Conn: conn, Logger: discard})
			require.NoError(t, err)
			t.Cleanup(func() { _ = sub.Shutdown(context.Background()) })
			_, err = sub.Subscribe(typ, func(context.Context, *gossip.Event) error { return nil }, gossip.Group("billing"))
			require.NoError(t, err)

			require.NoError(t, newBus(t, testURL, ns).Publish(context.Background(), gossip.NewEvent(typ, 1)))
			select {
			case <-acked:
			case <-time.After(10 * time.Second):
				t.Fatal("no XACK within 10s")
			}
			pending, err := client.XPending(context.Background(), ns+":{"+string(typ)+"}:stream", "billing").Result()
			require.NoError(t, err)
			assert.Zero(t, pending.Count, "nothing pending once the XACK was answered")
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
