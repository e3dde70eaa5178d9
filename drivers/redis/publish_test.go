package redis_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
