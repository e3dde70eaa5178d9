package gossip_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// PrepareEvent applies Publish's rules and fills what Publish fills,
// without publishing.
func TestPrepareEventChecksAndFillsAsPublish(t *testing.T) {
	e := &gossip.Event{Type: "orders.placed"}
	require.NoError(t, gossip.PrepareEvent(e, "shop"))
	assert.NotEmpty(t, e.ID)
	assert.Equal(t, "shop", e.Source)
	assert.WithinDuration(t, time.Now(), e.Timestamp, time.Minute)

	assert.ErrorIs(t, gossip.PrepareEvent(gossip.NewEvent("orders..placed", 1), "shop"), gossip.ErrInvalidEventType)
	assert.ErrorIs(t, gossip.PrepareEvent(gossip.NewEvent("orders.placed", 1).WithMetadata("", "v"), "shop"), gossip.ErrInvalidEvent)
	assert.ErrorIs(t, gossip.PrepareEvent(&gossip.Event{ID: "a\x00b", Type: "orders.placed"}, "shop"), gossip.ErrInvalidEvent)
	assert.ErrorIs(t, gossip.PrepareEvent(nil, "shop"), gossip.ErrInvalidEvent)
}

// EncodeData gives the bytes Publish would put on the wire: raw JSON as it
// is, anything else through the codec.
func TestEncodeDataAsPublish(t *testing.T) {
	raw := json.RawMessage(`{ "b":1,  "a" : 2 }`)
	b, ct, err := gossip.EncodeData(nil, gossip.NewEvent("x.y", raw))
	require.NoError(t, err)
	assert.Equal(t, string(raw), string(b))
	assert.Equal(t, "application/json", ct)
	b, _, err = gossip.EncodeData(gossip.JSON, gossip.NewEvent("x.y", map[string]int{"n": 1}))
	require.NoError(t, err)
	assert.JSONEq(t, `{"n":1}`, string(b))
	_, _, err = gossip.EncodeData(nil, gossip.NewEvent("x.y", make(chan int)))
	assert.ErrorIs(t, err, gossip.ErrInvalidEvent)
}

// An event carrying encoded data publishes those bytes as they are, and
// handlers decode them as any payload.
func TestSetEncodedDataPublishesTheBytes(t *testing.T) {
	bus := newBus(t, &gossip.Config{})
	got := make(chan *gossip.Event, 1)
	_, err := bus.Subscribe("x.y", func(_ context.Context, e *gossip.Event) error { got <- e; return nil })
	require.NoError(t, err)
	raw := []byte(`{ "n" :  7 }`)
	require.NoError(t, bus.Publish(context.Background(), gossip.NewEvent("x.y", nil).SetEncodedData(raw, "application/json")))
	select {
	case e := <-got:
		assert.Equal(t, string(raw), string(e.Data.(json.RawMessage)))
		var v struct{ N int }
		require.NoError(t, e.Decode(&v))
		assert.Equal(t, 7, v.N)
	case <-time.After(5 * time.Second):
		t.Fatal("not delivered")
	}
}

// Correlate stamps an event written from a handler as Publish would, and
// leaves one written with any other ctx alone.
func TestCorrelateAsPublish(t *testing.T) {
	bus, err := gossip.NewEventBus(nil)
	require.NoError(t, err)
	defer bus.Shutdown(context.Background())
	stored := make(chan *gossip.Event, 1)
	_, err = bus.Subscribe("orders.placed", func(ctx context.Context, e *gossip.Event) error {
		later := gossip.NewEvent("invoices.due", nil)
		gossip.Correlate(ctx, later)
		stored <- later
		return nil
	})
	require.NoError(t, err)
	placed := gossip.NewEvent("orders.placed", nil)
	require.NoError(t, bus.Publish(context.Background(), placed))
	select {
	case later := <-stored:
		assert.Equal(t, placed.ID, later.CorrelationID())
		assert.Equal(t, placed.ID, later.CausationID())
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not run")
	}
	plain := gossip.NewEvent("invoices.due", nil)
	gossip.Correlate(context.Background(), plain)
	assert.Empty(t, plain.Metadata)
}
