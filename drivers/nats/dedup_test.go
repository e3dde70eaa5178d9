package nats_test

import (
	"context"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// JetStream drops an event ID published again within the stream's
// duplicate window (duplicates=, DuplicateWindow; 2 minutes by default):
// Publish returns nil for the copy, alone or in a batch, the stream holds
// the event once, and a subscriber handles it once.
func TestDuplicateWindowStoresAnIDOnce(t *testing.T) {
	p := prefix(t)
	bus := newBus(t, gossip.Config{Driver: shared.URL() + "?prefix=" + p})
	got := newLedger()
	_, err := bus.Subscribe("orders.created", got.handler, gossip.Group("g"), gossip.Workers(1))
	require.NoError(t, err)
	ctx := context.Background()
	e := gossip.NewEvent("orders.created", 1)
	require.NoError(t, bus.Publish(ctx, e))
	require.NoError(t, bus.Publish(ctx, e, e), "a dropped copy is not an error (the batch path)")
	require.NoError(t, bus.Publish(ctx, e))
	marker := gossip.NewEvent("orders.created", 2)
	require.NoError(t, bus.Publish(ctx, marker))
	got.waitFor(t, []string{e.ID, marker.ID}, 10*time.Second)
	got.mu.Lock()
	assert.Equal(t, 1, got.ids[e.ID], "one Workers(1) member, the marker after the copies: they were not delivered")
	got.mu.Unlock()

	nc, err := natsgo.Connect(shared.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	s, err := js.Stream(ctx, p)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), info.State.Msgs, "the stream holds the event and the marker, once each")
}
