package redis_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	redisdrv "github.com/gossipbus/gossip/drivers/redis"
	"github.com/gossipbus/gossip/gossip"
)

// Many goroutines publishing one event each share pipelines, and each
// still gets its own confirmation: nil for every event stored, and the
// error of its own command for the one whose stream cannot take it.
func TestConcurrentPublishersEachConfirmed(t *testing.T) {
	requireRedis(t)
	ns := newNS(t)
	client := newClient(t, testURL)
	ctx := context.Background()
	// The stream key of this type holds a string: its XADDs fail.
	require.NoError(t, client.Set(ctx, ns+":{batch.broken}:stream", "not a stream", 0).Err())

	bus := newBus(t, testURL, ns)
	const publishers, each = 64, 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]bool{}
	var failed atomic.Int64
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				typ := gossip.EventType("batch.ok")
				broken := p == 7 && i%5 == 0
				if broken {
					typ = "batch.broken"
				}
				e := gossip.NewEvent(typ, fmt.Sprintf("%d/%d", p, i))
				err := bus.Publish(ctx, e)
				if broken {
					if assert.Error(t, err) {
						assert.Contains(t, err.Error(), "WRONGTYPE")
						failed.Add(1)
					}
					continue
				}
				if assert.NoError(t, err) {
					mu.Lock()
					ids[e.ID] = true
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(each/5), failed.Load())
	entries, err := client.XRange(ctx, ns+":{batch.ok}:stream", "-", "+").Result()
	require.NoError(t, err)
	stored := map[string]bool{}
	for _, m := range entries {
		id, _ := m.Values["ce-id"].(string)
		stored[id] = true
	}
	assert.Len(t, entries, len(ids), "one entry per confirmed event, none twice")
	assert.Equal(t, ids, stored, "every confirmed event is stored")
}

// Acks are coalesced (fewer XACKs than events, one ID each at least), and
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
