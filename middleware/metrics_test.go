package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gossipbus/gossip/internal/testdriver"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/driver"
	"github.com/gossipbus/gossip/middleware"
)

// collected reads every metric reader holds, by name.
func collected(t *testing.T, reader sdkmetric.Reader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// sumWhere adds up the counter points of m whose attributes include all of
// want.
func sumWhere(t *testing.T, m metricdata.Metrics, want ...attribute.KeyValue) int64 {
	t.Helper()
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "%s is an int64 counter", m.Name)
	var n int64
	for _, dp := range sum.DataPoints {
		if hasAll(dp.Attributes, want) {
			n += dp.Value
		}
	}
	return n
}

// countWhere adds up the histogram counts of m whose attributes include
// all of want.
func countWhere(t *testing.T, m metricdata.Metrics, want ...attribute.KeyValue) uint64 {
	t.Helper()
	h, ok := m.Data.(metricdata.Histogram[float64])
	require.True(t, ok, "%s is a float64 histogram", m.Name)
	var n uint64
	for _, dp := range h.DataPoints {
		assert.Equal(t, []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}, dp.Bounds)
		if hasAll(dp.Attributes, want) {
			n += dp.Count
		}
	}
	return n
}

func hasAll(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

func TestMetricsCountsAKnownRun(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })

	bus := newBus(t, &gossip.Config{RetryBackoff: time.Millisecond})
	// Outermost: says when a handler run is over, metrics included.
	handled := make(chan string, 10)
	bus.Use(func(next gossip.Handler) gossip.Handler {
		return func(ctx context.Context, e *gossip.Event) error {
			err := next(ctx, e)
			handled <- string(e.Type)
			return err
		}
	})
	middleware.Metrics(middleware.WithMeterProvider(mp)).Install(bus)

	// "ok" succeeds; "flaky" fails once and then succeeds; "broken" fails
	// permanently and is dead-lettered.
	var flakyCalls atomic.Int32
	_, err := bus.Subscribe("orders.*", func(ctx context.Context, e *gossip.Event) error {
		switch e.Type {
		case "orders.flaky":
			if flakyCalls.Add(1) == 1 {
				return errors.New("try again")
			}
		case "orders.broken":
			return gossip.Permanent(context.DeadlineExceeded)
		}
		return nil
	}, gossip.Group("billing"), gossip.MaxDeliveries(3))
	require.NoError(t, err)
	dead := make(chan struct{}, 1)
	_, err = bus.Subscribe("dead_letter.>", func(ctx context.Context, e *gossip.Event) error {
		dead <- struct{}{}
		return nil
	})
	require.NoError(t, err)

	ctx := context.Background()
	require.NoError(t, bus.Publish(ctx, gossip.NewEvent("orders.ok", nil)))
	require.NoError(t, bus.Publish(ctx, gossip.NewEvent("orders.flaky", nil)))
	require.NoError(t, bus.Publish(ctx, gossip.NewEvent("orders.broken", nil)))
	// Handler runs: ok, flaky twice, broken, and the dead letter's.
	for range 5 {
		receive(t, handled)
	}
	receive(t, dead)
	// The dead letter can be handled before the worker that published it
	// has counted the send: Shutdown waits for that worker.
	require.NoError(t, bus.Shutdown(ctx))

	got := collected(t, reader)
	units := map[string]string{
		"messaging.client.sent.messages":      "{message}",
		"messaging.client.consumed.messages":  "{message}",
		"messaging.client.operation.duration": "s",
		"messaging.process.duration":          "s",
		"gossip.handler.failures":             "{failure}",
		"gossip.handler.retries":              "{retry}",
		"gossip.dead_lettered":                "{message}",
	}
	for name, unit := range units {
		require.Contains(t, got, name)
		assert.Equal(t, unit, got[name].Unit, name)
		assert.NotEmpty(t, got[name].Description, name)
	}

	system := attribute.String("messaging.system", "memory")
	send := attribute.String("messaging.operation.name", "send")
	process := attribute.String("messaging.operation.name", "process")
	group := attribute.String("messaging.consumer.group.name", "billing")
	dest := func(t string) attribute.KeyValue { return attribute.String("messaging.destination.name", t) }
	dlType := string(gossip.DeadLetterType("billing", "orders.broken"))

	sent := got["messaging.client.sent.messages"]
	assert.Equal(t, int64(4), sumWhere(t, sent, system, send), "three events and one dead letter")
	assert.Equal(t, int64(1), sumWhere(t, sent, dest("orders.flaky")))
	assert.Equal(t, int64(1), sumWhere(t, sent, dest(dlType)))
	assert.Equal(t, uint64(4), countWhere(t, got["messaging.client.operation.duration"], system, send))

	consumed := got["messaging.client.consumed.messages"]
	assert.Equal(t, int64(4), sumWhere(t, consumed, system, process, group))
	assert.Equal(t, int64(2), sumWhere(t, consumed, dest("orders.flaky"), group))
	assert.Equal(t, int64(1), sumWhere(t, consumed, dest(dlType)), "the dead-letter listener's delivery")
	assert.Equal(t, uint64(5), countWhere(t, got["messaging.process.duration"], system, process))
	assert.Equal(t, uint64(2), countWhere(t, got["messaging.process.duration"], group, attribute.Key("error.type").String("_OTHER"))+
		countWhere(t, got["messaging.process.duration"], group, attribute.Key("error.type").String("timeout")))

	assert.Equal(t, int64(2), sumWhere(t, got["gossip.handler.failures"], system, process, group))
	assert.Equal(t, int64(1), sumWhere(t, got["gossip.handler.retries"], dest("orders.flaky"), group,
		attribute.String("error.type", "_OTHER")))
	assert.Equal(t, int64(1), sumWhere(t, got["gossip.handler.retries"]))
	assert.Equal(t, int64(1), sumWhere(t, got["gossip.dead_lettered"], dest("orders.broken"), group,
		attribute.String("error.type", "timeout")))
	assert.Equal(t, int64(1), sumWhere(t, got["gossip.dead_lettered"]))

	// Never an ID among the attributes.
	for name, m := range got {
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, dp := range d.DataPoints {
				assert.False(t, dp.Attributes.HasValue("messaging.message.id"), name)
			}
		case metricdata.Histogram[float64]:
			for _, dp := range d.DataPoints {
				assert.False(t, dp.Attributes.HasValue("messaging.message.id"), name)
			}
		}
	}
}

func TestMetricsCountsFailedPublishWithErrorType(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	bus := newBus(t, nil)
	middleware.Metrics(middleware.WithMeterProvider(mp)).Install(bus)

	require.Error(t, bus.Publish(context.Background(), gossip.NewEvent("orders..bad", nil)))
	got := collected(t, reader)
	sent := got["messaging.client.sent.messages"].Data.(metricdata.Sum[int64])
	require.Len(t, sent.DataPoints, 1)
	assert.True(t, sent.DataPoints[0].Attributes.HasValue("error.type"))
	assert.Equal(t, int64(1), sent.DataPoints[0].Value, "attempted sends count")
}

func ExampleMetrics() {
	// A manual reader stands in for an exporter (OTLP, Prometheus).
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))

	bus, _ := gossip.NewEventBus(&gossip.Config{Source: "orders"})
	middleware.Metrics(middleware.WithMeterProvider(mp)).Install(bus)
	_, _ = bus.Subscribe("orders.created", func(ctx context.Context, e *gossip.Event) error { return nil })
	_ = bus.Publish(context.Background(), gossip.NewEvent("orders.created", "order-1"))
	_ = bus.Shutdown(context.Background()) // waits for the handler

	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
			fmt.Println(m.Name, sum.DataPoints[0].Value)
		}
	}
	// Output:
	// messaging.client.sent.messages 1
	// messaging.client.consumed.messages 1
}

// What the transport drops is counted as gossip.dropped, per subscription
// pattern and group.
func TestMetricsCountsDrops(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	conn := &testdriver.Conn{Specs: make(chan driver.SubscribeSpec, 2)}
	bus := newBus(t, &gossip.Config{Conn: conn})
	middleware.Metrics(middleware.WithMeterProvider(mp)).Install(bus)

	nop := func(context.Context, *gossip.Event) error { return nil }
	_, err := bus.Subscribe("orders.*", nop, gossip.Group("billing"))
	require.NoError(t, err)
	grouped := <-conn.Specs
	_, err = bus.Subscribe("audit.>", nop)
	require.NoError(t, err)
	broadcast := <-conn.Specs
	grouped.Dropped(3)
	grouped.Dropped(4)
	broadcast.Dropped(2)

	m := collected(t, reader)[middleware.MetricDropped]
	assert.Equal(t, "{message}", m.Unit)
	assert.NotEmpty(t, m.Description)
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "gossip.dropped is an int64 counter")
	assert.True(t, sum.IsMonotonic)
	got := map[string]int64{}
	for _, dp := range sum.DataPoints {
		sys, _ := dp.Attributes.Value("messaging.system")
		assert.Equal(t, "test", sys.AsString())
		dest, _ := dp.Attributes.Value("messaging.destination.name")
		group, hasGroup := dp.Attributes.Value("messaging.consumer.group.name")
		assert.Equal(t, hasGroup, dest.AsString() == "orders.*", "a group attribute only where the subscription has a group")
		got[dest.AsString()+"/"+group.AsString()] += dp.Value
	}
	assert.Equal(t, map[string]int64{"orders.*/billing": 7, "audit.>/": 2}, got)
}
