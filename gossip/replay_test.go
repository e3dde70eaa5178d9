package gossip_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// An event that fails, is replayed, fails again and is replayed again keeps
// the ID of the event first dead-lettered and counts its replays, on the
// replayed events and on their dead letters alike.
func TestReplayLinksToTheOriginalAndCountsReplays(t *testing.T) {
	ctx := context.Background()
	b := newBus(t, nil)
	failuresLeft := 2 // one worker: no race on it
	handled := make(chan *gossip.Event, 1)
	_, err := b.Subscribe("orders.created", func(ctx context.Context, e *gossip.Event) error {
		if failuresLeft > 0 {
			failuresLeft--
			return gossip.Permanent(errors.New("stock service down"))
		}
		handled <- e
		return nil
	}, gossip.Group("billing"), gossip.Workers(1))
	require.NoError(t, err)
	letters := make(chan *gossip.Event, 2)
	_, err = b.Subscribe(gossip.DeadLetterType("billing", ">"), func(ctx context.Context, e *gossip.Event) error {
		letters <- e
		return nil
	})
	require.NoError(t, err)

	orig := gossip.NewEvent("orders.created", map[string]int{"n": 1}).WithMetadata("tenant", "acme")
	require.NoError(t, b.Publish(ctx, orig))

	first := waitFor(t, letters)
	assert.Equal(t, orig.ID, first.ID)
	assert.Equal(t, 0, gossip.ReplayCount(first))
	r1 := gossip.Replay(first)
	assert.NotEqual(t, orig.ID, r1.ID, "a replay has an ID of its own")
	assert.Equal(t, orig.ID, r1.Metadata[gossip.MetaReplayOf])
	assert.Equal(t, "1", r1.Metadata[gossip.MetaReplays])
	require.NoError(t, b.Publish(ctx, r1))

	second := waitFor(t, letters)
	assert.Equal(t, r1.ID, second.ID)
	assert.Equal(t, orig.ID, second.Metadata[gossip.MetaReplayOf], "the dead letter of a replay still names the original")
	assert.Equal(t, 1, gossip.ReplayCount(second))
	r2 := gossip.Replay(second)
	assert.Equal(t, orig.ID, r2.Metadata[gossip.MetaReplayOf])
	assert.Equal(t, "2", r2.Metadata[gossip.MetaReplays])
	require.NoError(t, b.Publish(ctx, r2))

	got := waitFor(t, handled)
	assert.Equal(t, r2.ID, got.ID)
	assert.Equal(t, orig.ID, got.Metadata[gossip.MetaReplayOf])
	assert.Equal(t, 2, gossip.ReplayCount(got))
	assert.Equal(t, "acme", got.Metadata["tenant"])
	_, isDL := gossip.DeadLetterInfo(got)
	assert.False(t, isDL)
	assert.NotContains(t, got.Metadata, gossip.MetaDeadLetterError)
}
