package redis_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// Many group subscriptions in one process, half of them on wildcard
// patterns, keep flowing: their blocking reads do not take the connections
// XACK and XAUTOCLAIM need, so every subscription receives each of its
// events exactly once, and every ack lands (nothing stays pending, nothing
// is delivered twice).
func TestManySubscriptionsInOneProcessKeepFlowing(t *testing.T) {
	requireRedis(t)
	ns := newNS(t)
	const subs, each = 60, 5
	// A short AckWait: an ack that does not land shows as a redelivery
	// within the test.
	bus := newBus(t, testURL, ns, func(c *gossip.Config) { c.AckWait = 2 * time.Second })
	var (
		mu       sync.Mutex
		got      = map[string]int{} // event ID → deliveries
		attempts = map[string]int{} // event ID → highest Attempt seen
	)
	done := make(chan struct{})
	want := subs * each
	typeOf := func(i int) gossip.EventType { return gossip.EventType(fmt.Sprintf("many.t%d.created", i)) }
	patternOf := func(i int) gossip.EventType {
		if i%2 == 1 {
			return gossip.EventType(fmt.Sprintf("many.t%d.*", i))
		}
		return typeOf(i)
	}
	streamOf := func(i int) (key, group string) {
		if i%2 == 1 {
			return fmt.Sprintf("%s:{%s}:stream", ns, typeOf(i)), "g:" + string(patternOf(i))
		}
		return fmt.Sprintf("%s:{%s}:stream", ns, typeOf(i)), "g"
	}
	for i := range subs {
		_, err := bus.Subscribe(patternOf(i), func(ctx context.Context, e *gossip.Event) error {
			mu.Lock()
			defer mu.Unlock()
			got[e.ID]++
			attempts[e.ID] = max(attempts[e.ID], e.Attempt())
			if len(got) == want {
				close(done)
			}
			return nil
		}, gossip.Group("g"), gossip.Workers(2))
		require.NoError(t, err)
	}

	pub := newBus(t, testURL, ns)
	var events []*gossip.Event
	for i := range subs {
		for j := range each {
			events = append(events, gossip.NewEvent(typeOf(i), j))
		}
	}
	start := time.Now()
	require.NoError(t, pub.Publish(context.Background(), events...))
	select {
	case <-done:
		t.Logf("%d events over %d subscriptions handled in %v", want, subs, time.Since(start))
	case <-time.After(15 * time.Second):
		mu.Lock()
		n := len(got)
		mu.Unlock()
		require.FailNowf(t, "subscriptions starved", "%d of %d events handled within 15s", n, want)
	}

	// Every ack lands: nothing stays pending for any group.
	client := newClient(t, testURL)
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond) // acks under way: ask the server until none is pending
	defer tick.Stop()
	for i := 0; i < subs; {
		key, group := streamOf(i)
		p, err := client.XPending(context.Background(), key, group).Result()
		require.NoError(t, err)
		if p.Count == 0 {
			i++
			continue
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			require.FailNowf(t, "acks did not land", "%d entries of %s still pending after 10s", p.Count, typeOf(i))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, e := range events {
		assert.Equal(t, 1, got[e.ID], "deliveries of %s (%s)", e.ID, e.Type)
		assert.Equal(t, 1, attempts[e.ID], "attempt of %s (%s)", e.ID, e.Type)
	}
}
