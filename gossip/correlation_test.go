package gossip_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// Only a handler's ctx (or one derived from it) correlates what is
// published with it; an event forwarded as it is (same ID) is not made its
// own cause.
func TestCorrelationComesFromTheHandlerContext(t *testing.T) {
	b := newBus(t, nil)
	got := make(chan *gossip.Event, 3)
	_, err := b.Subscribe("corr.in", func(ctx context.Context, e *gossip.Event) error {
		derived, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := b.Publish(derived, gossip.NewEvent("corr.derived", 1)); err != nil {
			return err
		}
		if err := b.Publish(context.Background(), gossip.NewEvent("corr.unrelated", 1)); err != nil {
			return err
		}
		e.Type = "corr.forwarded"
		return b.Publish(ctx, e)
	})
	require.NoError(t, err)
	_, err = b.Subscribe("corr.*", func(ctx context.Context, e *gossip.Event) error {
		if e.Type != "corr.in" {
			got <- e
		}
		return nil
	})
	require.NoError(t, err)

	in := gossip.NewEvent("corr.in", 0).WithMetadata(gossip.MetaCorrelationID, "order-7")
	require.NoError(t, b.Publish(context.Background(), in))
	byType := map[gossip.EventType]*gossip.Event{}
	for range 3 {
		select {
		case e := <-got:
			byType[e.Type] = e
		case <-time.After(10 * time.Second):
			require.FailNow(t, "timed out", "have %d of 3 events", len(byType))
		}
	}
	derived := byType["corr.derived"]
	assert.Equal(t, "order-7", derived.CorrelationID(), "the handled event's own correlation carries on")
	assert.Equal(t, in.ID, derived.CausationID())

	unrelated := byType["corr.unrelated"]
	assert.Equal(t, unrelated.ID, unrelated.CorrelationID(), "a ctx not from a handler starts a chain")
	assert.Empty(t, unrelated.CausationID())

	fwd := byType["corr.forwarded"]
	assert.Equal(t, in.ID, fwd.ID)
	assert.Empty(t, fwd.CausationID(), "a forwarded event is not its own cause")
}
