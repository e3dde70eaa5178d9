package middleware

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/gossipbus/gossip/gossip"
)

// instrumentationName names the tracer and the meter gossip's middleware
// use.
const instrumentationName = "github.com/gossipbus/gossip/middleware"

// Tracer traces a bus with OpenTelemetry, by the messaging semantic
// conventions: a PRODUCER span "send <event type>" per published event,
// whose context travels in the event's metadata (W3C traceparent and
// tracestate, and baggage), and a CONSUMER span "process <event type>" per
// delivery, a child of the producer's span and linked to it. A handler's
// ctx carries its span, so what the handler publishes continues the trace.
// Make one with Tracing; it is safe for concurrent use.
type Tracer struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator // nil: the global one, see Tracing
}

// TracingOption configures Tracing.
type TracingOption func(*Tracer)

// WithTracerProvider makes Tracing create spans with tp instead of the
// global TracerProvider.
func WithTracerProvider(tp trace.TracerProvider) TracingOption {
	return func(t *Tracer) {
		if tp != nil {
			t.tracer = tracerFrom(tp)
		}
	}
}

// WithPropagator makes Tracing carry span context in event metadata with p
// instead of the global TextMapPropagator.
func WithPropagator(p propagation.TextMapPropagator) TracingOption {
	return func(t *Tracer) { t.prop = p }
}

// defaultPropagator is used while the global propagator is OpenTelemetry's
// no-op default, so that tracing works without any setup.
var defaultPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Tracing returns a Tracer. By default it uses the global TracerProvider
// (otel.GetTracerProvider) and the global TextMapPropagator
// (otel.GetTextMapPropagator), both looked up as they are used; while the
// global propagator is the no-op default, that nobody set, it uses W3C
// TraceContext and Baggage, so traces connect across processes out of the
// box. Install it on a bus with Install.
func Tracing(opts ...TracingOption) *Tracer {
	t := &Tracer{}
	for _, o := range opts {
		o(t)
	}
	if t.tracer == nil {
		t.tracer = tracerFrom(otel.GetTracerProvider())
	}
	return t
}

func tracerFrom(tp trace.TracerProvider) trace.Tracer {
	return tp.Tracer(instrumentationName, trace.WithSchemaURL(semconv.SchemaURL))
}

// Install traces b: it adds the handler middleware (Middleware) with b.Use
// and the publish middleware (PublishMiddleware) with b.UsePublish. Call it
// before Subscribe, and before other Use calls, so that the spans cover the
// other middleware and their logs carry the trace and span IDs.
func (t *Tracer) Install(b *gossip.EventBus) {
	b.Use(t.Middleware(b))
	b.UsePublish(t.PublishMiddleware(b))
}

func (t *Tracer) propagator() propagation.TextMapPropagator {
	if t.prop != nil {
		return t.prop
	}
	if p := otel.GetTextMapPropagator(); len(p.Fields()) > 0 {
		return p
	}
	return defaultPropagator
}

// PublishMiddleware returns the publish side of t for b: a PRODUCER span
// per event, named "send <event type>", with its context injected into the
// event's metadata. The spans are children of the span in Publish's ctx;
// when ctx has none and an event already carries a trace context (a dead
// letter, an event forwarded as it was received), the event's span
// continues that trace instead. A failed Publish marks every span with the
// error.
func (t *Tracer) PublishMiddleware(b *gossip.EventBus) gossip.PublishMiddleware {
	system := semconv.MessagingSystemKey.String(b.Transport())
	return func(next gossip.PublishFunc) gossip.PublishFunc {
		return func(ctx context.Context, events []*gossip.Event) error {
			prop := t.propagator()
			ambient := trace.SpanContextFromContext(ctx).IsValid()
			spans := make([]trace.Span, 0, len(events))
			spanCtx := ctx
			for _, e := range events {
				if e == nil {
					continue // the bus rejects it below
				}
				if e.ID == "" {
					e.ID = gossip.NewID() // as the bus would, so that the span has it
				}
				attrs := make([]attribute.KeyValue, 0, 7)
				attrs = append(attrs, system,
					semconv.MessagingOperationName(opSend),
					semconv.MessagingOperationTypeSend,
					semconv.MessagingDestinationName(string(e.Type)),
					semconv.MessagingMessageID(e.ID))
				if n, ok := bodySize(e); ok {
					attrs = append(attrs, semconv.MessagingMessageBodySize(n))
				}
				if len(events) > 1 {
					attrs = append(attrs, semconv.MessagingBatchMessageCount(len(events)))
				}
				parent := ctx
				if !ambient && len(e.Metadata) > 0 {
					if pc := prop.Extract(ctx, eventCarrier{e}); trace.SpanContextFromContext(pc).IsValid() {
						parent = pc
					}
				}
				sctx, span := t.tracer.Start(parent, opSend+" "+string(e.Type),
					trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
				prop.Inject(sctx, eventCarrier{e})
				spans = append(spans, span)
				spanCtx = sctx
			}
			if len(spans) != 1 {
				spanCtx = ctx // a batch: no one span is the publish's
			}
			err := next(spanCtx, events)
			for _, span := range spans {
				if err != nil {
					span.RecordError(err)
					span.SetStatus(codes.Error, err.Error())
					span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
				}
				span.End()
			}
			return err
		}
	}
}

// Middleware returns the handler side of t for b: a CONSUMER span per
// delivery, named "process <event type>", a child of the producer's span
// whose context the event carries, and linked to it. The handler's ctx
// carries the span. A failure sets the span's status to Error with
// error.type; when the bus dead-letters the event after this failure
// (gossip.IsPermanent, or the last attempt) the span gets a "dead_letter"
// event. A panic ends the span as a failure and goes on up.
func (t *Tracer) Middleware(b *gossip.EventBus) gossip.Middleware {
	system := semconv.MessagingSystemKey.String(b.Transport())
	return func(next gossip.Handler) gossip.Handler {
		return func(ctx context.Context, e *gossip.Event) (err error) {
			ctx = t.propagator().Extract(ctx, eventCarrier{e})
			attrs := make([]attribute.KeyValue, 0, 8)
			attrs = append(attrs, system,
				semconv.MessagingOperationName(opProcess),
				semconv.MessagingOperationTypeProcess,
				semconv.MessagingDestinationName(string(e.Type)),
				semconv.MessagingMessageID(e.ID),
				AttrDeliveryAttempt.Int(e.Attempt()))
			if g := e.Group(); g != "" {
				attrs = append(attrs, semconv.MessagingConsumerGroupName(g))
			}
			if n, ok := bodySize(e); ok {
				attrs = append(attrs, semconv.MessagingMessageBodySize(n))
			}
			opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...)}
			if producer := trace.SpanContextFromContext(ctx); producer.IsValid() {
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: producer}))
			}
			ctx, span := t.tracer.Start(ctx, opProcess+" "+string(e.Type), opts...)
			returned := false
			defer func() {
				if !returned { // the handler panicked
					span.SetStatus(codes.Error, "handler panicked")
					span.SetAttributes(semconv.ErrorTypeKey.String("panic"))
					if e.Attempt() >= e.MaxDeliveries() {
						t.deadLetterEvent(span, e, "panic")
					}
				}
				span.End()
			}()
			err = next(ctx, e)
			returned = true
			if err != nil {
				et := errorType(err)
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
				span.SetAttributes(semconv.ErrorTypeKey.String(et))
				if isFinal(e, err) {
					t.deadLetterEvent(span, e, et)
				}
			}
			return err
		}
	}
}

func (t *Tracer) deadLetterEvent(span trace.Span, e *gossip.Event, errType string) {
	span.AddEvent("dead_letter", trace.WithAttributes(
		AttrDeadLetterType.String(string(gossip.DeadLetterType(e.Group(), e.Type))),
		AttrDeliveryAttempt.Int(e.Attempt()),
		semconv.ErrorTypeKey.String(errType)))
}
