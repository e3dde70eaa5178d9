package memory_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/drivers/memory"
	"github.com/gossipbus/gossip/gossip"
)

func openBus(t *testing.T, url string, cfg gossip.Config) *gossip.EventBus {
	t.Helper()
	cfg.Driver = url
	b, err := gossip.NewEventBus(&cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	return b
}

func TestGroupWithoutMemberKeepsEventsUntilOneJoins(t *testing.T) {
	url := fmt.Sprintf("memory://%s-%d", t.Name(), time.Now().UnixNano())
	pub := openBus(t, url, gossip.Config{})
	first := openBus(t, url, gossip.Config{})
	sub, err := first.Subscribe("orders.created", func(context.Context, *gossip.Event) error { return nil }, gossip.Group("billing"))
	require.NoError(t, err)
	require.NoError(t, sub.Unsubscribe())
	<-sub.Done()

	// The group has no member now; what is published waits for one.
	var want []string
	for i := range 5 {
		e := gossip.NewEvent("orders.created", i)
		want = append(want, e.ID)
		require.NoError(t, pub.Publish(context.Background(), e))
	}
	got := make(chan string, 5)
	second := openBus(t, url, gossip.Config{})
	_, err = second.Subscribe("orders.created", func(_ context.Context, e *gossip.Event) error {
		got <- e.ID
		return nil
	}, gossip.Group("billing"), gossip.Workers(1))
	require.NoError(t, err)
	for _, id := range want {
		select {
		case g := <-got:
			assert.Equal(t, id, g)
		case <-time.After(5 * time.Second):
			t.Fatalf("the new member did not get event %s, published while the group had no member", id)
		}
	}
}

func TestFullGroupWithoutMemberRefusesPublish(t *testing.T) {
	url := fmt.Sprintf("memory://%s-%d", t.Name(), time.Now().UnixNano())
	b := openBus(t, url, gossip.Config{BufferSize: 2})
	sub, err := b.Subscribe("orders.created", func(context.Context, *gossip.Event) error { return nil }, gossip.Group("billing"))
	require.NoError(t, err)
	require.NoError(t, sub.Unsubscribe())
	<-sub.Done()

	ctx := context.Background()
	require.NoError(t, b.Publish(ctx, gossip.NewEvent("orders.created", 1)))
	require.NoError(t, b.Publish(ctx, gossip.NewEvent("orders.created", 2)))
	err = b.Publish(ctx, gossip.NewEvent("orders.created", 3))
	assert.ErrorIs(t, err, memory.ErrGroupFull, "never a nil Publish for an event nobody will see")
	assert.ErrorContains(t, err, `"billing"`)
}
