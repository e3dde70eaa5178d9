package redis_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// A Pub/Sub subscription whose handler is stuck does not buffer what is
// published meanwhile in the process: it holds BufferSize deliveries, and
// the rest waits in the socket and the server's output buffer (which Redis
// bounds by client-output-buffer-limit pubsub, disconnecting the client
// past it; see docs/drivers/redis.md).
func TestPubSubSlowSubscriberMemoryIsBounded(t *testing.T) {
	requireRedis(t)
	ns := newNS(t)
	bus := newBus(t, withParams(testURL, "mode", "pubsub"), ns, func(c *gossip.Config) { c.BufferSize = 10 })
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	_, err := bus.Subscribe("slow.ping", func(ctx context.Context, e *gossip.Event) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-release
		return nil
	}, gossip.Workers(1))
	require.NoError(t, err)
	defer close(release)

	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	rc := plainClient(t)
	ctx := context.Background()
	body := []byte(`{"specversion":"1.0","id":"x","type":"slow.ping","source":"s","data":"` + strings.Repeat("x", 1<<10) + `"}`)
	const n = 20_000 // 20 MiB
	for sent := 0; sent < n; sent += 1000 {
		pipe := rc.Pipeline()
		for range 1000 {
			pipe.Publish(ctx, ns+":slow.ping", body)
		}
		_, err := pipe.Exec(ctx)
		require.NoError(t, err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler never started")
	}
	grown := int64(heap()) - int64(before)
	assert.Less(t, grown, int64(8<<20), "the heap grew by %d bytes with %d MiB published to a stuck subscriber", grown, n>>10)
}
