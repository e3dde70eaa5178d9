package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	redisdrv "github.com/gossipbus/gossip/drivers/redis"
	"github.com/gossipbus/gossip/gossip/driver"
)

// A member leaving a group hands back at once, well before AckWait, both
// what its driver fetched but never sent (Stop) and what gossip received
// but never started (Release): another member receives every one of them
// as a first delivery, and nothing stays pending.
func TestLeavingMemberHandsBackUnstartedEntries(t *testing.T) {
	requireRedis(t)
	ns := newNS(t)
	const n, buffer = 30, 5
	ackWait := 30 * time.Second
	open := func() driver.Conn {
		c, err := redisdrv.Driver{}.Open(context.Background(), withParams(testURL, "prefix", ns), driver.Options{Logger: discard, Source: "handback"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		return c
	}
	spec := driver.SubscribeSpec{Pattern: "handback.order", Group: "g", BufferSize: buffer, Workers: 1, MaxDeliveries: 5, AckWait: ackWait}
	ctx := context.Background()
	connA, connB := open(), open()
	leaving, err := connA.Subscribe(ctx, spec)
	require.NoError(t, err)

	msgs := make([]*driver.Message, n)
	for i := range msgs {
		msgs[i] = &driver.Message{ID: fmt.Sprintf("e%02d", i), Type: spec.Pattern, Source: "t", Time: time.Now().UTC(), ContentType: "application/json", Data: []byte("1")}
	}
	require.NoError(t, connA.Publish(ctx, msgs))
	// The leaving member's buffer fills, and its reader holds one more
	// entry it cannot send.
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond) // the reader filling the buffer: look until it is full
	defer tick.Stop()
	for len(leaving.Deliveries()) < buffer {
		select {
		case <-tick.C:
		case <-deadline.C:
			require.FailNow(t, "the leaving member's buffer did not fill")
		}
	}

	staying, err := connB.Subscribe(ctx, spec)
	require.NoError(t, err)
	got := make(chan driver.Delivery, n)
	go func() {
		for d := range staying.Deliveries() {
			assert.NoError(t, staying.(driver.Acker).Ack(ctx, []driver.Delivery{d}))
			got <- d
		}
	}()
	t.Cleanup(func() {
		_ = staying.Stop(ctx)
		_ = staying.Close(ctx)
	})

	// Leave: stop, give back what was received but never started, close.
	left := time.Now()
	require.NoError(t, leaving.Stop(ctx))
	var unstarted []driver.Delivery
	for d := range leaving.Deliveries() {
		unstarted = append(unstarted, d)
	}
	require.Len(t, unstarted, buffer)
	require.NoError(t, leaving.(driver.Releaser).Release(ctx, unstarted))
	require.NoError(t, leaving.Close(ctx))

	seen := map[string]int{}
	for _, d := range collect(t, got, n, 10*time.Second, "events at the staying member") {
		seen[d.ID]++
		assert.Equal(t, 1, d.Attempt, "a handed-back entry was never started: %s", d.ID)
	}
	handBack := time.Since(left)
	t.Logf("every entry at the staying member %v after the other left (AckWait %v)", handBack, ackWait)
	assert.Less(t, handBack, 3*time.Second, "handed back at once, not after AckWait")
	for _, m := range msgs {
		assert.Equal(t, 1, seen[m.ID], "deliveries of %s", m.ID)
	}
}
