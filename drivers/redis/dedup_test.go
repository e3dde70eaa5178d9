package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// dedupBus opens a Streams bus in namespace ns with extra URL parameters.
func dedupBus(t *testing.T, ns string, kv ...string) *gossip.EventBus {
	t.Helper()
	bus, err := gossip.NewEventBus(&gossip.Config{Driver: withParams(testURL, append([]string{"prefix", ns}, kv...)...), Logger: discard})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, bus.Shutdown(ctx))
	})
	return bus
}

// With dedup_window, an ID published again within the window (alone or in
// a batch) is stored once; without it, every publish is stored.
func TestDedupWindowStoresAnIDOnce(t *testing.T) {
	requireRedis(t)
	for _, tc := range []struct {
		name   string
		params []string
		want   int64
	}{
		{"window", []string{"dedup_window", "1m"}, 1},
		{"no window", nil, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNS(t)
			bus := dedupBus(t, ns, tc.params...)
			ctx := context.Background()
			e := gossip.NewEvent("orders.created", 1)
			for range 3 {
				require.NoError(t, bus.Publish(ctx, e), "a dropped copy is not an error")
			}
			require.NoError(t, bus.Publish(ctx, e, e), "the batch path")
			c := newClient(t, testURL)
			stream := ns + ":{orders.created}:stream"
			assert.Equal(t, tc.want, c.XLen(ctx, stream).Val())
			if tc.want == 1 {
				ttl := c.PTTL(ctx, ns+":{orders.created}:dedup:"+e.ID).Val()
				assert.True(t, ttl > 0 && ttl <= time.Minute, "the ID is remembered for the window: %v", ttl)
			}
		})
	}
}

// Events stored through the window reach subscribers as any other.
func TestDedupWindowDeliversOnce(t *testing.T) {
	requireRedis(t)
	ns := newNS(t)
	bus := dedupBus(t, ns, "dedup_window", "1m")
	got := make(chan string, 10)
	_, err := bus.Subscribe("orders.created", func(ctx context.Context, e *gossip.Event) error {
		got <- e.ID
		return nil
	}, gossip.Group("g"), gossip.Workers(1))
	require.NoError(t, err)
	e, marker := gossip.NewEvent("orders.created", 1), gossip.NewEvent("orders.created", 2)
	require.NoError(t, bus.Publish(context.Background(), e, e, e))
	require.NoError(t, bus.Publish(context.Background(), e, marker))
	assert.Equal(t, e.ID, next(t, got))
	assert.Equal(t, marker.ID, next(t, got), "the copies were dropped")
}

// next returns the next value of ch, failing the test after 10s.
func next[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing arrived within 10s")
	}
	var zero T
	return zero
}

// A publish the server refuses leaves no trace in the window: the retry is
// stored.
func TestDedupWindowFailedAddIsNotRemembered(t *testing.T) {
	requireRedis(t)
	ns := newNS(t)
	bus := dedupBus(t, ns, "dedup_window", "1m")
	ctx := context.Background()
	c := newClient(t, testURL)
	stream := ns + ":{orders.created}:stream"
	require.NoError(t, c.Set(ctx, stream, "not a stream", 0).Err())
	e := gossip.NewEvent("orders.created", 1)
	require.ErrorContains(t, bus.Publish(ctx, e), "WRONGTYPE")
	assert.Zero(t, c.Exists(ctx, ns+":{orders.created}:dedup:"+e.ID).Val(), "the failed add forgot the ID")
	require.NoError(t, c.Del(ctx, stream).Err())
	require.NoError(t, bus.Publish(ctx, e))
	assert.Equal(t, int64(1), c.XLen(ctx, stream).Val(), "the retry is stored")
}
