package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
	"github.com/gossipbus/gossip/outbox"
)

// The trace of the request that wrote the row goes on through the relay:
// the relay's producer span is a child of the request's span, and the
// consumer's span is in the same trace.
func TestTraceContinuesFromWriterThroughRelayToConsumer(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			defer func() { _ = tp.Shutdown(context.Background()) }()
			tracer := middleware.Tracing(middleware.WithTracerProvider(tp))

			o := newOutbox(t, openDB(t, db.dsn(t)))
			url := "memory://" + randomName("trace")
			consumerBus := newBus(t, url, gossip.Config{})
			tracer.Install(consumerBus)
			handled := make(chan trace.SpanContext, 1)
			_, err := consumerBus.Subscribe("users.>", func(ctx context.Context, e *gossip.Event) error {
				handled <- trace.SpanContextFromContext(ctx)
				return nil
			})
			require.NoError(t, err)
			relayBus := newBus(t, url, gossip.Config{})
			tracer.Install(relayBus)

			ctx, request := tp.Tracer("test").Start(context.Background(), "POST /users")
			write2(t, ctx, o, gossip.NewEvent("users.created", 1))
			request.End()
			runRelay(t, newRelay(t, o, relayBus, outbox.RelayOptions{}))

			var got trace.SpanContext
			select {
			case got = <-handled:
			case <-time.After(waitLimit):
				t.Fatal("not handled")
			}
			assert.Equal(t, request.SpanContext().TraceID(), got.TraceID(), "the consumer's span is in the request's trace")
			var producer sdktrace.ReadOnlySpan
			require.Eventually(t, func() bool {
				for _, s := range rec.Ended() {
					if s.Name() == "send users.created" {
						producer = s
						return true
					}
				}
				return false
			}, waitLimit, 10*time.Millisecond)
			assert.Equal(t, request.SpanContext().SpanID(), producer.Parent().SpanID(), "the relay's send span is a child of the request's span")
		})
	}
}

// write2 is write with the caller's ctx.
func write2(t *testing.T, ctx context.Context, o *outbox.Outbox, events ...*gossip.Event) {
	t.Helper()
	tx, err := o.DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, o.Publish(ctx, tx, events...))
	require.NoError(t, tx.Commit())
}

// The relay reports what it relayed, its lag, and the age of the oldest
// pending row through the MeterProvider it was given.
func TestRelayMetrics(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			defer func() { _ = mp.Shutdown(context.Background()) }()

			o := newOutbox(t, openDB(t, db.dsn(t)))
			url := "memory://" + randomName("metrics")
			c := newConsumer()
			_, err := newBus(t, url, gossip.Config{}).Subscribe("m.>", c.handle)
			require.NoError(t, err)
			events := []*gossip.Event{gossip.NewEvent("m.a", 1), gossip.NewEvent("m.a", 2), gossip.NewEvent("m.a", 3)}
			write(t, o, true, events...)
			runRelay(t, newRelay(t, o, newBus(t, url, gossip.Config{}), outbox.RelayOptions{MeterProvider: mp}))
			c.waitFor(t, ids(events)...)
			eventuallyPending(t, o, 0)

			// The relay records a batch just after marking it sent.
			got := map[string]metricdata.Aggregation{}
			require.Eventually(t, func() bool {
				var rm metricdata.ResourceMetrics
				require.NoError(t, reader.Collect(context.Background(), &rm))
				for _, sm := range rm.ScopeMetrics {
					for _, m := range sm.Metrics {
						got[m.Name] = m.Data
					}
				}
				lag, ok := got["gossip.outbox.lag"].(metricdata.Histogram[float64])
				return ok && len(lag.DataPoints) == 1 && lag.DataPoints[0].Count == 3
			}, waitLimit, 10*time.Millisecond, "the lag of the 3 rows is recorded")
			relayed, ok := got["gossip.outbox.relayed"].(metricdata.Sum[int64])
			require.True(t, ok, "gossip.outbox.relayed missing: %v", got)
			require.Len(t, relayed.DataPoints, 1)
			assert.EqualValues(t, 3, relayed.DataPoints[0].Value)
			v, _ := relayed.DataPoints[0].Attributes.Value(outbox.AttrTable)
			assert.Equal(t, o.Table(), v.AsString())
			lag, ok := got["gossip.outbox.lag"].(metricdata.Histogram[float64])
			require.True(t, ok, "gossip.outbox.lag missing")
			assert.EqualValues(t, 3, lag.DataPoints[0].Count)
			age, ok := got["gossip.outbox.pending.age"].(metricdata.Gauge[float64])
			require.True(t, ok, "gossip.outbox.pending.age missing")
			assert.Zero(t, age.DataPoints[0].Value, "no row pending")
		})
	}
}

// Sent rows are deleted at once by default; with Retention they are kept,
// marked sent, until they are older than it.
func TestRetention(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			count := func(o *outbox.Outbox) (all, sent int) {
				require.NoError(t, o.DB().QueryRow("SELECT count(*), count(sent_at) FROM "+o.Table()).Scan(&all, &sent))
				return
			}
			dbh := openDB(t, db.dsn(t))
			for _, tc := range []struct {
				name      string
				retention time.Duration
				kept      int
			}{{"deleted at once", 0, 0}, {"kept for an hour", time.Hour, 3}} {
				t.Run(tc.name, func(t *testing.T) {
					o := newOutbox(t, dbh)
					url := "memory://" + randomName("retention")
					c := newConsumer()
					_, err := newBus(t, url, gossip.Config{}).Subscribe("r.>", c.handle)
					require.NoError(t, err)
					events := []*gossip.Event{gossip.NewEvent("r.a", 1), gossip.NewEvent("r.a", 2), gossip.NewEvent("r.a", 3)}
					write(t, o, true, events...)
					runRelay(t, newRelay(t, o, newBus(t, url, gossip.Config{}), outbox.RelayOptions{Retention: tc.retention}))
					c.waitFor(t, ids(events)...)
					eventuallyPending(t, o, 0)
					all, sent := count(o)
					assert.Equal(t, tc.kept, all)
					assert.Equal(t, tc.kept, sent)
				})
			}
			t.Run("purged after it", func(t *testing.T) {
				o := newOutbox(t, dbh)
				url := "memory://" + randomName("retention")
				c := newConsumer()
				_, err := newBus(t, url, gossip.Config{}).Subscribe("r.>", c.handle)
				require.NoError(t, err)
				events := []*gossip.Event{gossip.NewEvent("r.a", 1), gossip.NewEvent("r.a", 2), gossip.NewEvent("r.a", 3)}
				write(t, o, true, events...)
				runRelay(t, newRelay(t, o, newBus(t, url, gossip.Config{}), outbox.RelayOptions{Retention: time.Millisecond, PurgeBatch: 2}))
				c.waitFor(t, ids(events)...)
				require.Eventually(t, func() bool { all, _ := count(o); return all == 0 }, waitLimit, 10*time.Millisecond, "sent rows are purged")
			})
		})
	}
}
