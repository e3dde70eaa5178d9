package gossip

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/gossipbus/gossip/gossip/driver"
	"github.com/gossipbus/gossip/internal/benchdata"
)

// discardConn is a remote transport that drops what it is given: Publish
// measures gossip's share of a broker publish (validation, encoding, the
// message) and nothing of a client's.
type discardConn struct{ sub *feedSub }

func (c *discardConn) Publish(_ context.Context, msgs []*driver.Message) error {
	for _, m := range msgs {
		if len(m.Data) == 0 {
			return errBench
		}
	}
	return nil
}

func (c *discardConn) Subscribe(context.Context, driver.SubscribeSpec) (driver.Subscription, error) {
	return c.sub, nil
}

func (c *discardConn) Close(context.Context) error { return nil }

// CopiesData: Publish keeps nothing, as the NATS and Redis drivers do once
// they return (the bytes written out).
func (c *discardConn) CopiesData() bool { return true }

var errBench = &DecodeError{}

// feedSub is a durable subscription fed by the benchmark, as JetStream's
// and Redis Streams' are: a channel of deliveries, acks counted, deliveries
// kept alive.
type feedSub struct {
	ch    chan driver.Delivery
	acked atomic.Int64
	want  int64
	done  chan struct{}
}

func (s *feedSub) Deliveries() <-chan driver.Delivery                 { return s.ch }
func (s *feedSub) Stop(context.Context) error                         { return nil }
func (s *feedSub) Close(context.Context) error                        { return nil }
func (s *feedSub) KeepAlive(context.Context, []driver.Delivery) error { return nil }
func (s *feedSub) Ack(_ context.Context, ds []driver.Delivery) error {
	if s.acked.Add(int64(len(ds))) == s.want {
		close(s.done)
	}
	return nil
}

// BenchmarkWirePublish measures Publish on a remote transport, one event
// of a ~256-byte struct per call: what gossip adds before a broker client
// sends the bytes.
func BenchmarkWirePublish(b *testing.B) {
	bus, err := NewEventBus(&Config{Conn: &discardConn{}})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Shutdown(context.Background())
	ctx := context.Background()
	b.Run("1pub", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := bus.Publish(ctx, NewEvent("user_service.user.created", benchdata.Sample)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := bus.Publish(ctx, NewEvent("user_service.user.created", benchdata.Sample)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkWireDelivery measures the consuming path of a remote transport:
// a driver.Delivery of JSON bytes on the Deliveries channel, through the
// workers and a Typed handler, to the batched ack.
func BenchmarkWireDelivery(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run(map[int]string{1: "1worker", 4: "4workers"}[workers], func(b *testing.B) {
			benchWireDelivery(b, workers)
		})
	}
}

func benchWireDelivery(b *testing.B, workers int) {
	encoded, _, err := defaultCodecs.encode(benchdata.Sample)
	if err != nil {
		b.Fatal(err)
	}
	sub := &feedSub{ch: make(chan driver.Delivery, 1024), want: int64(b.N), done: make(chan struct{})}
	bus, err := NewEventBus(&Config{Conn: &discardConn{sub: sub}, Workers: workers})
	if err != nil {
		b.Fatal(err)
	}
	var handled atomic.Int64
	_, err = bus.Subscribe("user_service.user.created", Typed(func(_ context.Context, _ *Event, p benchdata.Payload) error {
		if p.UserID == "" {
			b.Error("empty payload")
		}
		handled.Add(1)
		return nil
	}))
	if err != nil {
		b.Fatal(err)
	}
	msg := &driver.Message{ID: NewID(), Type: "user_service.user.created", Source: "bench",
		ContentType: "application/json", Data: encoded}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		sub.ch <- driver.Delivery{Message: msg, Attempt: 1}
	}
	<-sub.done
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	close(sub.ch)
	if err := bus.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
}
