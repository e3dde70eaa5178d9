package middleware_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
)

func TestPredicates(t *testing.T) {
	eu := &gossip.Event{Type: "orders.eu.created", Source: "checkout", Metadata: map[string]string{"region": "eu", "empty": ""}}
	bare := &gossip.Event{Type: "users.created", Source: "accounts"}
	yes := func(*gossip.Event) bool { return true }
	no := func(*gossip.Event) bool { return false }
	for _, tc := range []struct {
		name string
		pred middleware.Predicate
		e    *gossip.Event
		want bool
	}{
		{"HasMetadata equal", middleware.HasMetadata("region", "eu"), eu, true},
		{"HasMetadata other value", middleware.HasMetadata("region", "us"), eu, false},
		{"HasMetadata empty value present", middleware.HasMetadata("empty", ""), eu, true},
		{"HasMetadata empty value absent", middleware.HasMetadata("region", ""), bare, false},
		{"MetadataExists present", middleware.MetadataExists("empty"), eu, true},
		{"MetadataExists absent", middleware.MetadataExists("region"), bare, false},
		{"TypeMatches exact", middleware.TypeMatches("users.created"), bare, true},
		{"TypeMatches star", middleware.TypeMatches("orders.*.created"), eu, true},
		{"TypeMatches rest", middleware.TypeMatches("orders.>"), eu, true},
		{"TypeMatches other", middleware.TypeMatches("orders.>"), bare, false},
		{"SourceIs same", middleware.SourceIs("checkout"), eu, true},
		{"SourceIs other", middleware.SourceIs("checkout"), bare, false},
		{"And all true", middleware.And(yes, yes), eu, true},
		{"And one false", middleware.And(yes, no), eu, false},
		{"And empty", middleware.And(), eu, true},
		{"Or one true", middleware.Or(no, yes), eu, true},
		{"Or all false", middleware.Or(no, no), eu, false},
		{"Or empty", middleware.Or(), eu, false},
		{"Not true", middleware.Not(yes), eu, false},
		{"Not false", middleware.Not(no), eu, true},
		{"combined", middleware.And(middleware.TypeMatches("orders.>"), middleware.Not(middleware.SourceIs("legacy"))), eu, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.pred(tc.e))
		})
	}
}

func TestFilterCallsHandlerOnlyForAcceptedEvents(t *testing.T) {
	for _, tc := range []struct {
		name      string
		region    string
		wantCalls int32
		wantErr   error
	}{
		{"accepted: handler's error returned", "eu", 1, errBoom},
		{"rejected: acked without the handler", "us", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			h := func(context.Context, *gossip.Event) error { calls.Add(1); return errBoom }
			e := gossip.NewEvent("orders.created", nil).WithMetadata("region", tc.region)

			err := middleware.Filter(middleware.HasMetadata("region", "eu"))(h)(context.Background(), e)
			assert.Equal(t, tc.wantErr, err)
			assert.Equal(t, tc.wantCalls, calls.Load())
		})
	}
}

func TestFilterPanicsOnNilPredicate(t *testing.T) {
	assert.PanicsWithValue(t, "middleware: Filter with a nil Predicate", func() { middleware.Filter(nil) })
}

// On a bus, a filtered-out event is acked: it never reaches the handler,
// now or as a redelivery.
func TestFilterOnBusSkipsRejectedEvents(t *testing.T) {
	bus := newBus(t, nil)
	var (
		mu   sync.Mutex
		seen []string
	)
	got := make(chan struct{}, 1)
	handler := func(_ context.Context, e *gossip.Event) error {
		mu.Lock()
		seen = append(seen, e.ID)
		mu.Unlock()
		got <- struct{}{}
		return nil
	}
	_, err := bus.Subscribe("orders.>", handler, gossip.Workers(1),
		gossip.WithMiddleware(middleware.Filter(middleware.HasMetadata("region", "eu"))))
	require.NoError(t, err)
	us := gossip.NewEvent("orders.created", nil).WithMetadata("region", "us")
	eu := gossip.NewEvent("orders.created", nil).WithMetadata("region", "eu")
	require.NoError(t, bus.Publish(context.Background(), us, eu))

	receive(t, got)
	shutdown(t, bus) // drains anything redelivered
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{eu.ID}, seen)
}
