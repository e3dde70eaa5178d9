package gossip

import (
	"context"
	"strconv"
	"testing"

	"github.com/gossipbus/gossip/gossip/driver"
	"github.com/gossipbus/gossip/internal/benchdata"
)

// BenchmarkKeyDispatch isolates the cost of OrderedByKey's dispatch on a
// remote transport's consuming path: the same keyed deliveries (1,000 keys)
// through Workers(8) and a Typed handler to the batched ack, with and
// without per-key order.
func BenchmarkKeyDispatch(b *testing.B) {
	encoded, _, err := defaultCodecs.encode(benchdata.Sample)
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([]*driver.Message, 1000)
	for i := range msgs {
		msgs[i] = &driver.Message{ID: NewID(), Type: "orders.placed", Source: "bench", ContentType: "application/json",
			Data: encoded, Metadata: map[string]string{MetaPartitionKey: "order-" + strconv.Itoa(i)}}
	}
	for _, ordered := range []bool{false, true} {
		b.Run(map[bool]string{false: "unordered", true: "ordered"}[ordered], func(b *testing.B) {
			sub := &feedSub{ch: make(chan driver.Delivery, 1024), want: int64(b.N), done: make(chan struct{})}
			bus, err := NewEventBus(&Config{Conn: &discardConn{sub: sub}, Workers: 8})
			if err != nil {
				b.Fatal(err)
			}
			opts := []SubscribeOption{}
			if ordered {
				opts = append(opts, OrderedByKey())
			}
			_, err = bus.Subscribe("orders.placed", Typed(func(_ context.Context, _ *Event, p benchdata.Payload) error {
				if p.UserID == "" {
					b.Error("empty payload")
				}
				return nil
			}), opts...)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				sub.ch <- driver.Delivery{Message: msgs[i%len(msgs)], Attempt: 1}
			}
			<-sub.done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			close(sub.ch)
			if err := bus.Shutdown(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}
