package nats_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// Two broadcast listeners on one type each give up on the same event: each
// dead letter is published, and Publish returned nil for each, so each must
// be stored. (JetStream's de-duplication by Nats-Msg-Id must not swallow
// the second: it has the same type and ID.)
func TestEveryListenersDeadLetterIsKept(t *testing.T) {
	bus := newBus(t, gossip.Config{Driver: shared.URL() + "?prefix=" + prefix(t)})
	const typ = gossip.EventType("orders.created")
	fail := func(context.Context, *gossip.Event) error { return gossip.Permanent(errors.New("no")) }
	letters := make(chan *gossip.Event, 10)
	_, err := bus.Subscribe(gossip.DeadLetterType("", typ), func(_ context.Context, e *gossip.Event) error {
		letters <- e
		return nil
	})
	require.NoError(t, err)
	_, err = bus.Subscribe(typ, fail)
	require.NoError(t, err)
	_, err = bus.Subscribe(typ, fail)
	require.NoError(t, err)

	e := gossip.NewEvent(typ, map[string]int{"n": 1})
	require.NoError(t, bus.Publish(context.Background(), e))
	first := recv(t, letters, 10*time.Second, "the first dead letter")
	second := recv(t, letters, 10*time.Second, "the second dead letter")
	assert.Equal(t, e.ID, first.ID)
	assert.Equal(t, e.ID, second.ID)
}
