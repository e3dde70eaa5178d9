package middleware

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/gossipbus/gossip/gossip"
)

// The names of the instruments Metrics records. The first four are the
// OpenTelemetry messaging conventions'; the last four are gossip's own.
const (
	MetricSentMessages      = "messaging.client.sent.messages"      // counter, {message}: events Publish tried to send
	MetricConsumedMessages  = "messaging.client.consumed.messages"  // counter, {message}: deliveries handed to a handler
	MetricOperationDuration = "messaging.client.operation.duration" // histogram, s: duration of a Publish call
	MetricProcessDuration   = "messaging.process.duration"          // histogram, s: duration of a handler run
	MetricHandlerFailures   = "gossip.handler.failures"             // counter, {failure}: handler runs that failed
	MetricHandlerRetries    = "gossip.handler.retries"              // counter, {retry}: failures the bus redelivers
	MetricDeadLettered      = "gossip.dead_lettered"                // counter, {message}: failures the bus dead-letters
	MetricDropped           = "gossip.dropped"                      // counter, {message}: events an at-most-once transport discarded for a slow subscription
)

// durationBuckets are the histogram bucket boundaries, in seconds, the
// messaging conventions recommend.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// Meter measures a bus with OpenTelemetry metrics, by the messaging
// semantic conventions. Make one with Metrics; it is safe for concurrent
// use, and one Meter may measure several buses.
//
// Every measurement carries messaging.system (the bus's transport),
// messaging.operation.name ("send" or "process") and
// messaging.destination.name (the event type: low cardinality by design);
// handler measurements carry messaging.consumer.group.name when the
// subscription has a group, and failures error.type. No measurement
// carries an event ID or anything else of high cardinality.
//
// gossip.handler.failures counts every failed handler run; each is also
// counted either in gossip.handler.retries (the bus will redeliver the
// event) or in gossip.dead_lettered (it will not: gossip.IsPermanent, or
// the last attempt).
//
// gossip.dropped counts the events an at-most-once transport (NATS core
// mode) discarded because a subscription could not keep up, with
// messaging.system, messaging.destination.name set to the subscription's
// pattern and messaging.consumer.group.name when it has a group.
type Meter struct {
	sent, consumed                  metric.Int64Counter
	failures, retries, deadLettered metric.Int64Counter
	dropped                         metric.Int64Counter
	opDuration, processDuration     metric.Float64Histogram
}

// MetricsOption configures Metrics.
type MetricsOption func(*metricsConfig)

type metricsConfig struct{ mp metric.MeterProvider }

// WithMeterProvider makes Metrics record with mp instead of the global
// MeterProvider.
func WithMeterProvider(mp metric.MeterProvider) MetricsOption {
	return func(c *metricsConfig) { c.mp = mp }
}

// Metrics returns a Meter recording with the global MeterProvider
// (otel.GetMeterProvider) unless WithMeterProvider says otherwise. Install
// it on a bus with Install. An instrument the provider refuses is reported
// to otel.Handle and left out.
func Metrics(opts ...MetricsOption) *Meter {
	var c metricsConfig
	for _, o := range opts {
		o(&c)
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	m := c.mp.Meter(instrumentationName, metric.WithSchemaURL(semconv.SchemaURL))
	counter := func(name, unit, desc string) metric.Int64Counter {
		i, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err != nil {
			otel.Handle(err)
		}
		return i
	}
	histogram := func(name, desc string) metric.Float64Histogram {
		i, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		if err != nil {
			otel.Handle(err)
		}
		return i
	}
	return &Meter{
		sent:            counter(MetricSentMessages, "{message}", "Number of messages a producer attempted to send to the broker."),
		consumed:        counter(MetricConsumedMessages, "{message}", "Number of messages that were delivered to the application."),
		failures:        counter(MetricHandlerFailures, "{failure}", "Number of handler runs that returned an error or panicked."),
		retries:         counter(MetricHandlerRetries, "{retry}", "Number of failed deliveries the bus redelivers."),
		deadLettered:    counter(MetricDeadLettered, "{message}", "Number of messages dead-lettered after a failure."),
		dropped:         counter(MetricDropped, "{message}", "Number of messages the transport discarded because a subscription could not keep up."),
		opDuration:      histogram(MetricOperationDuration, "Duration of messaging operation initiated by a producer or consumer client."),
		processDuration: histogram(MetricProcessDuration, "Duration of processing operation."),
	}
}

// Install measures b: it adds the handler middleware (Middleware) with
// b.Use, the publish middleware (PublishMiddleware) with b.UsePublish and
// the drop counter (DropObserver) with b.ObserveDrops. Call it before
// Subscribe.
func (m *Meter) Install(b *gossip.EventBus) {
	b.Use(m.Middleware(b))
	b.UsePublish(m.PublishMiddleware(b))
	b.ObserveDrops(m.DropObserver(b))
}

// DropObserver returns the drop side of m for b: it counts in
// gossip.dropped what b's transport discarded for a slow subscription.
func (m *Meter) DropObserver(b *gossip.EventBus) gossip.DropObserver {
	system := semconv.MessagingSystemKey.String(b.Transport())
	return func(pattern gossip.EventType, group string, n int) {
		attrs := make([]attribute.KeyValue, 0, 3)
		attrs = append(attrs, system, semconv.MessagingDestinationName(string(pattern)))
		if group != "" {
			attrs = append(attrs, semconv.MessagingConsumerGroupName(group))
		}
		m.dropped.Add(context.Background(), int64(n), metric.WithAttributes(attrs...))
	}
}

// PublishMiddleware returns the publish side of m for b: it counts the
// events each Publish tries to send, per event type, and times the call.
func (m *Meter) PublishMiddleware(b *gossip.EventBus) gossip.PublishMiddleware {
	system := semconv.MessagingSystemKey.String(b.Transport())
	return func(next gossip.PublishFunc) gossip.PublishFunc {
		return func(ctx context.Context, events []*gossip.Event) error {
			start := time.Now()
			err := next(ctx, events)
			elapsed := time.Since(start).Seconds()

			base := []attribute.KeyValue{system, semconv.MessagingOperationName(opSend), semconv.MessagingOperationTypeSend}
			if err != nil {
				base = append(base, semconv.ErrorTypeKey.String(errorType(err)))
			}
			// Count per event type; a batch is mostly of one type.
			counts := make(map[gossip.EventType]int64, 1)
			var only gossip.EventType
			for i, e := range events {
				if e == nil {
					continue
				}
				counts[e.Type]++
				if i == 0 {
					only = e.Type
				} else if e.Type != only {
					only = ""
				}
			}
			for t, n := range counts {
				m.sent.Add(ctx, n, metric.WithAttributes(append(base, semconv.MessagingDestinationName(string(t)))...))
			}
			// The call's duration names the destination only when it had one.
			if only != "" {
				base = append(base, semconv.MessagingDestinationName(string(only)))
			}
			m.opDuration.Record(ctx, elapsed, metric.WithAttributes(base...))
			return err
		}
	}
}

// Middleware returns the handler side of m for b: it counts deliveries,
// times the handler, and counts failures, retries and dead letters.
func (m *Meter) Middleware(b *gossip.EventBus) gossip.Middleware {
	system := semconv.MessagingSystemKey.String(b.Transport())
	return func(next gossip.Handler) gossip.Handler {
		return func(ctx context.Context, e *gossip.Event) error {
			attrs := make([]attribute.KeyValue, 0, 6)
			attrs = append(attrs, system,
				semconv.MessagingOperationName(opProcess),
				semconv.MessagingOperationTypeProcess,
				semconv.MessagingDestinationName(string(e.Type)))
			if g := e.Group(); g != "" {
				attrs = append(attrs, semconv.MessagingConsumerGroupName(g))
			}
			m.consumed.Add(ctx, 1, metric.WithAttributes(attrs...))

			start := time.Now()
			returned := false
			var err error
			defer func() {
				elapsed := time.Since(start).Seconds()
				if !returned { // the handler panicked; the bus makes it an error
					m.failed(ctx, attrs, e, "panic", e.Attempt() >= e.MaxDeliveries(), elapsed)
					return
				}
				if err != nil {
					m.failed(ctx, attrs, e, errorType(err), isFinal(e, err), elapsed)
					return
				}
				m.processDuration.Record(ctx, elapsed, metric.WithAttributes(attrs...))
			}()
			err = next(ctx, e)
			returned = true
			return err
		}
	}
}

func (m *Meter) failed(ctx context.Context, attrs []attribute.KeyValue, e *gossip.Event, errType string, final bool, elapsed float64) {
	opt := metric.WithAttributes(append(attrs, semconv.ErrorTypeKey.String(errType))...)
	m.processDuration.Record(ctx, elapsed, opt)
	m.failures.Add(ctx, 1, opt)
	if final {
		m.deadLettered.Add(ctx, 1, opt)
	} else {
		m.retries.Add(ctx, 1, opt)
	}
}
