package memory_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/gossipbus/gossip/gossip"
)

// BenchmarkPublishHandle measures publish → handled throughput on the memory
// transport: b.N events from one publisher, one subscriber, end to end.
// ns/op is per event; allocs/op counts the whole path, NewEvent included.
func BenchmarkPublishHandle(b *testing.B) {
	for _, bc := range []struct {
		name       string
		publishers int
		batch      int
	}{
		{"1pub", 1, 1},
		{"1pub_batch100", 1, 100},
		{"4pub", 4, 1},
		{"64pub", 64, 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchPublishHandle(b, bc.publishers, bc.batch)
		})
	}
}

func benchPublishHandle(b *testing.B, publishers, batch int) {
	bus, err := gossip.NewEventBus(&gossip.Config{Workers: 4, BufferSize: 4096})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Shutdown(context.Background())
	var handled atomic.Int64
	done := make(chan struct{})
	target := int64(b.N)
	_, err = bus.Subscribe("bench.event", func(ctx context.Context, e *gossip.Event) error {
		if handled.Add(1) == target {
			close(done)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	payload := struct{ A, B string }{"0123456789abcdef0123456789abcdef", "x"}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	errs := make(chan error, publishers)
	for range publishers {
		go func() {
			events := make([]*gossip.Event, 0, batch)
			for {
				n := next.Add(int64(batch))
				if n-int64(batch) >= target {
					errs <- nil
					return
				}
				events = events[:0]
				for i := n - int64(batch); i < n && i < target; i++ {
					events = append(events, gossip.NewEvent("bench.event", payload))
				}
				if err := bus.Publish(ctx, events...); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range publishers {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
