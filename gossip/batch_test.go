package gossip_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

func TestBatchFlushesBySize(t *testing.T) {
	b := newBus(t, nil)
	batches := make(chan int, 10)
	_, err := b.SubscribeBatch("batch.size", 5, time.Hour, func(ctx context.Context, events []*gossip.Event) error {
		batches <- len(events)
		return nil
	})
	require.NoError(t, err)
	for i := range 10 {
		require.NoError(t, b.Publish(context.Background(), gossip.NewEvent("batch.size", i)))
	}
	assert.Equal(t, 5, waitFor(t, batches))
	assert.Equal(t, 5, waitFor(t, batches))
}

func TestBatchFlushesByTime(t *testing.T) {
	b := newBus(t, nil)
	batches := make(chan int, 10)
	_, err := b.SubscribeBatch("batch.time", 100, 20*time.Millisecond, func(ctx context.Context, events []*gossip.Event) error {
		batches <- len(events)
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, b.Publish(context.Background(), gossip.NewEvent("batch.time", 1), gossip.NewEvent("batch.time", 2), gossip.NewEvent("batch.time", 3)))
	total := 0
	for total < 3 {
		total += waitFor(t, batches)
	}
	assert.Equal(t, 3, total, "a partial batch is flushed when its time is up")
}

// A failed batch fails each of its events: every one is redelivered, and
// none is acked until a batch holding it succeeds.
func TestBatchFailureRedeliversEveryEvent(t *testing.T) {
	b := newBus(t, &gossip.Config{RetryBackoff: time.Millisecond})
	var mu sync.Mutex
	attempts := map[int]int{}
	succeeded := map[int]bool{}
	done := make(chan struct{})
	first := true
	_, err := b.SubscribeBatch("batch.fail", 4, 10*time.Millisecond, func(ctx context.Context, events []*gossip.Event) error {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			var n int
			require.NoError(t, e.Decode(&n))
			attempts[n]++
		}
		if first {
			first = false
			return errors.New("batch failed")
		}
		for _, e := range events {
			var n int
			_ = e.Decode(&n)
			succeeded[n] = true
		}
		if len(succeeded) == 4 {
			close(done)
		}
		return nil
	})
	require.NoError(t, err)
	for i := range 4 {
		require.NoError(t, b.Publish(context.Background(), gossip.NewEvent("batch.fail", i)))
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("events of the failed batch were not all redelivered")
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range 4 {
		assert.Equal(t, 2, attempts[i], "event %d: failed once in the batch, then succeeded", i)
	}
}

func waitFor[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("timed out")
	}
	var zero T
	return zero
}
