package middleware_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
)

func TestSetMetadataSetsKeyOnlyWhereMissing(t *testing.T) {
	bare := gossip.NewEvent("orders.created", nil)
	other := gossip.NewEvent("orders.created", nil).WithMetadata("tenant", "acme")
	own := gossip.NewEvent("orders.created", nil).WithMetadata("service_version", "0.9")
	emptyOwn := gossip.NewEvent("orders.created", nil).WithMetadata("service_version", "")
	var passed []*gossip.Event
	next := func(_ context.Context, events []*gossip.Event) error {
		passed = events
		return errBoom
	}

	err := middleware.SetMetadata("service_version", "1.2.3")(next)(context.Background(), []*gossip.Event{bare, other, own, emptyOwn, nil})
	assert.Equal(t, errBoom, err, "the next PublishFunc's result is returned")
	require.Len(t, passed, 5, "all events, nil included, go on to be published (and validated)")
	assert.Equal(t, map[string]string{"service_version": "1.2.3"}, bare.Metadata)
	assert.Equal(t, map[string]string{"tenant": "acme", "service_version": "1.2.3"}, other.Metadata)
	assert.Equal(t, map[string]string{"service_version": "0.9"}, own.Metadata)
	assert.Equal(t, map[string]string{"service_version": ""}, emptyOwn.Metadata)
}

func TestSetMetadataPanicsOnEmptyKey(t *testing.T) {
	assert.PanicsWithValue(t, "middleware: SetMetadata with an empty key", func() { middleware.SetMetadata("", "x") })
}

// On a bus, subscribers see the metadata the publish middleware set.
func TestSetMetadataOnBusReachesSubscribers(t *testing.T) {
	bus := newBus(t, &gossip.Config{
		PublishMiddleware: []gossip.PublishMiddleware{middleware.SetMetadata("service_version", "1.2.3")},
	})
	got := make(chan map[string]string, 2)
	_, err := bus.Subscribe("orders.created", func(_ context.Context, e *gossip.Event) error {
		got <- e.Metadata
		return nil
	}, gossip.Workers(1))
	require.NoError(t, err)

	require.NoError(t, bus.Publish(context.Background(),
		gossip.NewEvent("orders.created", nil),
		gossip.NewEvent("orders.created", nil).WithMetadata("service_version", "0.9")))

	assert.Equal(t, "1.2.3", receive(t, got)["service_version"])
	assert.Equal(t, "0.9", receive(t, got)["service_version"], "an event's own value wins")
}
