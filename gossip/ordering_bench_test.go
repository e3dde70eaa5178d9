package gossip_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/internal/benchdata"
)

// BenchmarkOrderedByKey compares, on the memory transport with Workers(8),
// events spread over 1,000 ordering keys in an OrderedByKey subscription
// against the same events in a plain subscription: the cost of keeping
// per-key order. One event is published per call, and the clock stops when
// the last one is handled.
func BenchmarkOrderedByKey(b *testing.B) {
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "order-" + strconv.Itoa(i)
	}
	for _, bc := range []struct {
		name         string
		keyed, order bool
	}{{"unkeyed", false, false}, {"keys-unordered", true, false}, {"keyed", true, true}} {
		b.Run(bc.name, func(b *testing.B) {
			bus, err := gossip.NewEventBus(&gossip.Config{Workers: 8})
			if err != nil {
				b.Fatal(err)
			}
			var handled atomic.Int64
			done := make(chan struct{})
			want := int64(b.N)
			opts := []gossip.SubscribeOption{gossip.Group("bench")}
			if bc.order {
				opts = append(opts, gossip.OrderedByKey())
			}
			_, err = bus.Subscribe("orders.placed", func(context.Context, *gossip.Event) error {
				if handled.Add(1) == want {
					close(done)
				}
				return nil
			}, opts...)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				e := gossip.NewEvent("orders.placed", benchdata.Sample)
				if bc.keyed {
					e.WithKey(keys[i%len(keys)])
				}
				if err := bus.Publish(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
			<-done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			if err := bus.Shutdown(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
