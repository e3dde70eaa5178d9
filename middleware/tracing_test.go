package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
)

// spanLog records ended spans in memory (the SDK's SpanRecorder) and lets a
// test wait for them: spans end on handler goroutines.
type spanLog struct {
	*tracetest.SpanRecorder
	ended chan struct{}
}

func newSpanLog(t *testing.T) (*spanLog, *sdktrace.TracerProvider) {
	l := &spanLog{SpanRecorder: tracetest.NewSpanRecorder(), ended: make(chan struct{}, 1)}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(l))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return l, tp
}

func (l *spanLog) OnEnd(s sdktrace.ReadOnlySpan) {
	l.SpanRecorder.OnEnd(s)
	select {
	case l.ended <- struct{}{}:
	default:
	}
}

// waitNamed waits until n spans named name have ended and returns them in
// the order they ended.
func (l *spanLog) waitNamed(t *testing.T, name string, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		var got []sdktrace.ReadOnlySpan
		for _, s := range l.Ended() {
			if s.Name() == name {
				got = append(got, s)
			}
		}
		if len(got) >= n {
			return got
		}
		select {
		case <-l.ended:
		case <-deadline:
			t.Fatalf("%d of %d %q spans ended within %v", len(got), n, name, waitLimit)
		}
	}
}

func spanAttrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestTracingLinksPublishAndProcessSpansIntoOneTrace(t *testing.T) {
	spans, tp := newSpanLog(t)
	bus := newBus(t, nil)
	middleware.Tracing(middleware.WithTracerProvider(tp)).Install(bus)

	handlerSpan := make(chan trace.SpanContext, 1)
	delivered := make(chan *gossip.Event, 1)
	_, err := bus.Subscribe("orders.created", func(ctx context.Context, e *gossip.Event) error {
		handlerSpan <- trace.SpanContextFromContext(ctx)
		delivered <- e
		return nil
	}, gossip.Group("billing"))
	require.NoError(t, err)

	e := gossip.NewEvent("orders.created", "order-1")
	require.NoError(t, bus.Publish(context.Background(), e))

	send := spans.waitNamed(t, "send orders.created", 1)[0]
	process := spans.waitNamed(t, "process orders.created", 1)[0]
	hs := receive(t, handlerSpan)
	got := receive(t, delivered)

	assert.Equal(t, trace.SpanKindProducer, send.SpanKind())
	assert.False(t, send.Parent().IsValid(), "the send span is a root")
	sa := spanAttrs(send)
	assert.Equal(t, "memory", sa["messaging.system"].AsString())
	assert.Equal(t, "send", sa["messaging.operation.name"].AsString())
	assert.Equal(t, "send", sa["messaging.operation.type"].AsString())
	assert.Equal(t, "orders.created", sa["messaging.destination.name"].AsString())
	assert.Equal(t, e.ID, sa["messaging.message.id"].AsString())
	assert.Equal(t, int64(len("order-1")), sa["messaging.message.body.size"].AsInt64())
	assert.NotContains(t, sa, attribute.Key("messaging.batch.message_count"))

	assert.Equal(t, trace.SpanKindConsumer, process.SpanKind())
	assert.Equal(t, send.SpanContext().TraceID(), process.SpanContext().TraceID())
	assert.Equal(t, send.SpanContext().SpanID(), process.Parent().SpanID(), "process is a child of send")
	require.Len(t, process.Links(), 1)
	assert.Equal(t, send.SpanContext().SpanID(), process.Links()[0].SpanContext.SpanID(), "process links to send")
	pa := spanAttrs(process)
	assert.Equal(t, "memory", pa["messaging.system"].AsString())
	assert.Equal(t, "process", pa["messaging.operation.name"].AsString())
	assert.Equal(t, "process", pa["messaging.operation.type"].AsString())
	assert.Equal(t, "orders.created", pa["messaging.destination.name"].AsString())
	assert.Equal(t, e.ID, pa["messaging.message.id"].AsString())
	assert.Equal(t, "billing", pa["messaging.consumer.group.name"].AsString())
	assert.Equal(t, int64(1), pa["messaging.gossip.delivery.attempt"].AsInt64())
	assert.Equal(t, codes.Unset, process.Status().Code)

	assert.Equal(t, process.SpanContext().SpanID(), hs.SpanID(), "the handler's ctx carries the process span")
	assert.Equal(t, fmt.Sprintf("00-%s-%s-01", send.SpanContext().TraceID(), send.SpanContext().SpanID()),
		got.Metadata["traceparent"], "W3C trace context travels in the metadata")
}

func TestTracingHandlerThatPublishesContinuesTheTrace(t *testing.T) {
	spans, tp := newSpanLog(t)
	bus := newBus(t, nil)
	middleware.Tracing(middleware.WithTracerProvider(tp)).Install(bus)

	_, err := bus.Subscribe("orders.created", func(ctx context.Context, e *gossip.Event) error {
		return bus.Publish(ctx, gossip.NewEvent("orders.billed", nil))
	})
	require.NoError(t, err)
	_, err = bus.Subscribe("orders.billed", func(ctx context.Context, e *gossip.Event) error { return nil })
	require.NoError(t, err)
	require.NoError(t, bus.Publish(context.Background(), gossip.NewEvent("orders.created", nil)))

	send1 := spans.waitNamed(t, "send orders.created", 1)[0]
	proc1 := spans.waitNamed(t, "process orders.created", 1)[0]
	send2 := spans.waitNamed(t, "send orders.billed", 1)[0]
	proc2 := spans.waitNamed(t, "process orders.billed", 1)[0]
	trace1 := send1.SpanContext().TraceID()
	for _, s := range []sdktrace.ReadOnlySpan{proc1, send2, proc2} {
		assert.Equal(t, trace1, s.SpanContext().TraceID(), s.Name())
	}
	assert.Equal(t, proc1.SpanContext().SpanID(), send2.Parent().SpanID())
	assert.Equal(t, send2.SpanContext().SpanID(), proc2.Parent().SpanID())
}

func TestTracingBatchGetsOneProducerSpanPerEvent(t *testing.T) {
	spans, tp := newSpanLog(t)
	bus := newBus(t, nil)
	middleware.Tracing(middleware.WithTracerProvider(tp)).Install(bus)

	events := []*gossip.Event{
		gossip.NewEvent("orders.created", nil),
		gossip.NewEvent("orders.created", nil),
		gossip.NewEvent("orders.shipped", nil),
	}
	require.NoError(t, bus.Publish(context.Background(), events...))

	created := spans.waitNamed(t, "send orders.created", 2)
	shipped := spans.waitNamed(t, "send orders.shipped", 1)
	all := append(created, shipped...)
	ids := map[trace.SpanID]bool{}
	for _, s := range all {
		assert.Equal(t, int64(3), spanAttrs(s)["messaging.batch.message_count"].AsInt64())
		ids[s.SpanContext().SpanID()] = true
	}
	assert.Len(t, ids, 3)
	for _, e := range events {
		sc := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier(e.Metadata))
		assert.True(t, ids[trace.SpanContextFromContext(sc).SpanID()], "event %s carries its own span", e.ID)
	}
}

func TestTracingMarksFailuresAndTheDeadLetter(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		attempts int // process spans before the dead letter
		errType  string
	}{
		{"retried until MaxDeliveries", errors.New("flaky"), 2, "_OTHER"},
		{"permanent at once", gossip.Permanent(context.DeadlineExceeded), 1, "timeout"},
		{"panic on every attempt", nil, 2, "panic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spans, tp := newSpanLog(t)
			bus := newBus(t, &gossip.Config{RetryBackoff: time.Millisecond})
			middleware.Tracing(middleware.WithTracerProvider(tp)).Install(bus)

			dead := make(chan *gossip.Event, 1)
			_, err := bus.Subscribe(gossip.DeadLetterType("billing", "orders.created"), func(ctx context.Context, e *gossip.Event) error {
				dead <- e
				return nil
			})
			require.NoError(t, err)
			_, err = bus.Subscribe("orders.created", func(ctx context.Context, e *gossip.Event) error {
				if tc.err == nil {
					panic("boom")
				}
				return tc.err
			}, gossip.Group("billing"), gossip.MaxDeliveries(2))
			require.NoError(t, err)
			require.NoError(t, bus.Publish(context.Background(), gossip.NewEvent("orders.created", nil)))
			receive(t, dead)

			send := spans.waitNamed(t, "send orders.created", 1)[0]
			procs := spans.waitNamed(t, "process orders.created", tc.attempts)
			require.Len(t, procs, tc.attempts)
			for i, p := range procs {
				assert.Equal(t, codes.Error, p.Status().Code)
				assert.Equal(t, tc.errType, spanAttrs(p)["error.type"].AsString())
				assert.Equal(t, int64(i+1), spanAttrs(p)["messaging.gossip.delivery.attempt"].AsInt64())
				assert.Equal(t, send.SpanContext().SpanID(), p.Parent().SpanID(), "every attempt is a child of send")
				var dl []sdktrace.Event
				for _, ev := range p.Events() {
					if ev.Name == "dead_letter" {
						dl = append(dl, ev)
					}
				}
				if i < tc.attempts-1 {
					assert.Empty(t, dl, "attempt %d is retried", i+1)
					continue
				}
				require.Len(t, dl, 1, "the last attempt is dead-lettered")
				da := map[attribute.Key]attribute.Value{}
				for _, kv := range dl[0].Attributes {
					da[kv.Key] = kv.Value
				}
				assert.Equal(t, "dead_letter.billing.orders.created", da["messaging.gossip.dead_letter.type"].AsString())
				assert.Equal(t, tc.errType, da["error.type"].AsString())
			}

			// The dead letter's own send span continues the event's trace.
			dlSend := spans.waitNamed(t, "send dead_letter.billing.orders.created", 1)[0]
			assert.Equal(t, send.SpanContext().TraceID(), dlSend.SpanContext().TraceID())
			assert.Equal(t, send.SpanContext().SpanID(), dlSend.Parent().SpanID())
		})
	}
}

func TestTracingRecordsPublishFailureOnTheSpan(t *testing.T) {
	spans, tp := newSpanLog(t)
	bus := newBus(t, nil)
	middleware.Tracing(middleware.WithTracerProvider(tp)).Install(bus)

	err := bus.Publish(context.Background(), gossip.NewEvent("orders..created", nil))
	require.ErrorIs(t, err, gossip.ErrInvalidEventType)

	s := spans.waitNamed(t, "send orders..created", 1)[0]
	assert.Equal(t, codes.Error, s.Status().Code)
	assert.NotEmpty(t, spanAttrs(s)["error.type"].AsString())
	require.NotEmpty(t, s.Events())
	assert.Equal(t, "exception", s.Events()[0].Name)
}

func TestTracingKeepsTheAmbientSpanAsParentOfSend(t *testing.T) {
	spans, tp := newSpanLog(t)
	bus := newBus(t, nil)
	middleware.Tracing(middleware.WithTracerProvider(tp)).Install(bus)

	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	require.NoError(t, bus.Publish(ctx, gossip.NewEvent("orders.created", nil)))
	parent.End()

	send := spans.waitNamed(t, "send orders.created", 1)[0]
	assert.Equal(t, parent.SpanContext().TraceID(), send.SpanContext().TraceID())
	assert.Equal(t, parent.SpanContext().SpanID(), send.Parent().SpanID())
}

func TestTracingPropagatesBaggageByDefault(t *testing.T) {
	_, tp := newSpanLog(t)
	bus := newBus(t, nil)
	middleware.Tracing(middleware.WithTracerProvider(tp)).Install(bus)

	member, err := baggage.NewMember("tenant", "acme")
	require.NoError(t, err)
	bag, err := baggage.New(member)
	require.NoError(t, err)
	got := make(chan string, 1)
	_, err = bus.Subscribe("orders.created", func(ctx context.Context, e *gossip.Event) error {
		got <- baggage.FromContext(ctx).Member("tenant").Value()
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, bus.Publish(baggage.ContextWithBaggage(context.Background(), bag), gossip.NewEvent("orders.created", nil)))
	assert.Equal(t, "acme", receive(t, got))
}

func TestTracingWithPropagatorUsesIt(t *testing.T) {
	_, tp := newSpanLog(t)
	tr := middleware.Tracing(middleware.WithTracerProvider(tp), middleware.WithPropagator(propagation.Baggage{}))

	e := gossip.NewEvent("orders.created", nil)
	publish := tr.PublishMiddleware(newBus(t, nil))(func(context.Context, []*gossip.Event) error { return nil })
	require.NoError(t, publish(context.Background(), []*gossip.Event{e}))
	assert.NotContains(t, e.Metadata, "traceparent", "only the given propagator writes metadata")
}

func TestTracingDoesNotChangeMetadataOtherDeliveriesShare(t *testing.T) {
	_, tp := newSpanLog(t)
	bus := newBus(t, nil)
	middleware.Tracing(middleware.WithTracerProvider(tp)).Install(bus)

	var mu sync.Mutex
	seen := map[string]string{}
	for _, g := range []string{"a", "b"} {
		_, err := bus.Subscribe("orders.created", func(ctx context.Context, e *gossip.Event) error {
			mu.Lock()
			seen[g] = e.Metadata["traceparent"]
			mu.Unlock()
			// Forward the delivered event: the publish injects this
			// handler's span into a copy of the metadata.
			e.Type = "orders.forwarded"
			return bus.Publish(ctx, e)
		}, gossip.Group(g))
		require.NoError(t, err)
	}
	forwarded := make(chan string, 2)
	_, err := bus.Subscribe("orders.forwarded", func(ctx context.Context, e *gossip.Event) error {
		forwarded <- e.Metadata["traceparent"]
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, bus.Publish(context.Background(), gossip.NewEvent("orders.created", nil)))
	f1, f2 := receive(t, forwarded), receive(t, forwarded)
	assert.NotEqual(t, f1, f2, "each forward carries its own send span")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, seen["a"], seen["b"], "both groups still see the producer's traceparent")
}

func ExampleTracing() {
	// An in-memory recorder stands in for an exporter (OTLP, Jaeger).
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))

	bus, _ := gossip.NewEventBus(&gossip.Config{Source: "orders"})
	middleware.Tracing(middleware.WithTracerProvider(tp)).Install(bus)
	_, _ = bus.Subscribe("orders.created", func(ctx context.Context, e *gossip.Event) error {
		return nil // ctx carries the "process" span
	}, gossip.Group("billing"))
	_ = bus.Publish(context.Background(), gossip.NewEvent("orders.created", "order-1"))
	_ = bus.Shutdown(context.Background()) // waits for the handler

	var lines []string
	for _, s := range spans.Ended() {
		lines = append(lines, fmt.Sprint(s.SpanKind(), " ", s.Name()))
	}
	slices.Sort(lines) // the two spans end on different goroutines
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// consumer process orders.created
	// producer send orders.created
}
