package memory_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/gossipbus/gossip/internal/benchdata"

	"github.com/gossipbus/gossip/gossip"
)

// BenchmarkPublishHandle measures publish → handled throughput on the memory
// transport: b.N events of a ~256-byte struct, one subscriber, end to end,
// with a plain handler ("raw") and with a Typed handler ("typed"), as
// services use it. ns/op is per event; allocs/op counts the whole path,
// NewEvent included.
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
		for _, typed := range []bool{false, true} {
			name := bc.name + "/raw"
			if typed {
				name = bc.name + "/typed"
			}
			b.Run(name, func(b *testing.B) {
				benchPublishHandle(b, bc.publishers, bc.batch, typed)
			})
		}
	}
}

func benchPublishHandle(b *testing.B, publishers, batch int, typed bool) {
	bus, err := gossip.NewEventBus(&gossip.Config{Workers: 4, BufferSize: 4096})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Shutdown(context.Background())
	var handled atomic.Int64
	done := make(chan struct{})
	target := int64(b.N)
	count := func() {
		if handled.Add(1) == target {
			close(done)
		}
	}
	h := func(ctx context.Context, e *gossip.Event) error { count(); return nil }
	if typed {
		h = gossip.Typed(func(ctx context.Context, e *gossip.Event, p benchdata.Payload) error {
			if p.UserID == "" {
				b.Error("empty payload")
			}
			count()
			return nil
		})
	}
	if _, err = bus.Subscribe("bench.event", h); err != nil {
		b.Fatal(err)
	}
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
					events = append(events, gossip.NewEvent("bench.event", benchdata.Sample))
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

// BenchmarkGroupHandle is BenchmarkPublishHandle for a group of three
// members with a Typed handler: the group's shared queue and each
// member's forwarding.
func BenchmarkGroupHandle(b *testing.B) {
	bus, err := gossip.NewEventBus(&gossip.Config{Workers: 4, BufferSize: 4096})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Shutdown(context.Background())
	var handled atomic.Int64
	done := make(chan struct{})
	target := int64(b.N)
	h := gossip.Typed(func(ctx context.Context, e *gossip.Event, p benchdata.Payload) error {
		if handled.Add(1) == target {
			close(done)
		}
		return nil
	})
	for range 3 {
		if _, err := bus.Subscribe("bench.event", h, gossip.Group("workers")); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := bus.Publish(ctx, gossip.NewEvent("bench.event", benchdata.Sample)); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkFloor is the least any in-process bus with gossip's API does per
// event, for comparison with BenchmarkPublishHandle in one run: the
// payload boxed into an interface (NewEvent's data argument), an event
// object of the size NewEvent allocates, a buffered channel to the workers,
// and the handler's own copy of the event (handlers must not share the
// publisher's). No IDs, clocks, validation or middleware. "chan" moves the
// payload alone, as the bench's raw Go channel does.
func BenchmarkFloor(b *testing.B) {
	type publisherEvent struct{ _ [384]byte } // NewEvent's allocation
	type handlerEvent struct{ _ [224]byte }   // a delivered event
	type delivery struct {
		e    *publisherEvent
		data any
	}
	for _, bc := range []struct {
		name    string
		workers int
		allocs  bool
	}{{"chan/1worker", 1, false}, {"3allocs/1worker", 1, true}, {"3allocs/4workers", 4, true}} {
		b.Run(bc.name, func(b *testing.B) {
			ch := make(chan delivery, 4096)
			var handled atomic.Int64
			done := make(chan struct{})
			target := int64(b.N)
			var sink atomic.Pointer[handlerEvent]
			for range bc.workers {
				go func() {
					for d := range ch {
						if bc.allocs {
							sink.Store(new(handlerEvent))
						}
						if p, ok := d.data.(benchdata.Payload); ok && p.UserID == "" {
							b.Error("empty payload")
						}
						if handled.Add(1) == target {
							close(done)
						}
					}
				}()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if bc.allocs {
					ch <- delivery{e: new(publisherEvent), data: benchdata.Sample}
				} else {
					ch <- delivery{}
				}
			}
			<-done
			b.StopTimer()
			close(ch)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
