// Package tracing_test proves that one trace follows an event chain across
// services, each on its own bus and connection, on every transport:
// UserService publishes user_service.user.created, EmailService handles it
// and publishes email_service.email.sent, AnalyticsService handles that.
package tracing_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every wait for something asynchronous.
const waitLimit = 10 * time.Second

const (
	userCreated gossip.EventType = "user_service.user.created"
	emailSent   gossip.EventType = "email_service.email.sent"
)

// spanLog records the ended spans of every service in memory (the SDK's
// SpanRecorder) and lets a test wait for them.
type spanLog struct {
	*tracetest.SpanRecorder
	ended chan struct{}
}

func (l *spanLog) OnEnd(s sdktrace.ReadOnlySpan) {
	l.SpanRecorder.OnEnd(s)
	select {
	case l.ended <- struct{}{}:
	default:
	}
}

// waitFor waits until a span named name, from service, has ended.
func (l *spanLog) waitFor(t *testing.T, service, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		for _, s := range l.Ended() {
			if s.Name() == name && serviceOf(s) == service {
				return s
			}
		}
		select {
		case <-l.ended:
		case <-deadline:
			var seen []string
			for _, s := range l.Ended() {
				seen = append(seen, serviceOf(s)+": "+s.Name())
			}
			t.Fatalf("no %s span %q ended within %v; ended: %v", service, name, waitLimit, seen)
		}
	}
}

func serviceOf(s sdktrace.ReadOnlySpan) string {
	v, _ := s.Resource().Set().Value(semconv.ServiceNameKey)
	return v.AsString()
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// chain runs the three services, each on its own bus made by open (a new
// connection each time), each with its own TracerProvider naming the
// service, all recording into one spanLog; it publishes one
// user_service.user.created and asserts the spans form one trace.
func chain(t *testing.T, transport string, open func(t *testing.T, service string) *gossip.EventBus) {
	spans := &spanLog{SpanRecorder: tracetest.NewSpanRecorder(), ended: make(chan struct{}, 1)}
	bus := map[string]*gossip.EventBus{}
	for _, service := range []string{"user_service", "email_service", "analytics_service"} {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans),
			sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		b := open(t, service)
		middleware.Tracing(middleware.WithTracerProvider(tp)).Install(b)
		bus[service] = b
	}

	var analyticsHandled atomic.Int32
	done := make(chan struct{}, 2)
	_, err := bus["email_service"].Subscribe(userCreated, func(ctx context.Context, e *gossip.Event) error {
		return bus["email_service"].Publish(ctx, gossip.NewEvent(emailSent, map[string]string{"to": "alice@example.com"}))
	}, gossip.Group("email_service"))
	require.NoError(t, err)
	_, err = bus["analytics_service"].Subscribe(emailSent, func(ctx context.Context, e *gossip.Event) error {
		analyticsHandled.Add(1)
		done <- struct{}{}
		return nil
	}, gossip.Group("analytics_service"))
	require.NoError(t, err)

	created := gossip.NewEvent(userCreated, map[string]string{"name": "Alice"})
	require.NoError(t, bus["user_service"].Publish(context.Background(), created))
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatalf("analytics_service did not handle %s within %v", emailSent, waitLimit)
	}

	userSend := spans.waitFor(t, "user_service", "send "+string(userCreated))
	emailProcess := spans.waitFor(t, "email_service", "process "+string(userCreated))
	emailSend := spans.waitFor(t, "email_service", "send "+string(emailSent))
	analyticsProcess := spans.waitFor(t, "analytics_service", "process "+string(emailSent))

	traceID := userSend.SpanContext().TraceID()
	for _, s := range []sdktrace.ReadOnlySpan{emailProcess, emailSend, analyticsProcess} {
		assert.Equal(t, traceID, s.SpanContext().TraceID(), "%s %s is in the trace", serviceOf(s), s.Name())
	}

	// Who is whose parent, and the links.
	assert.False(t, userSend.Parent().IsValid(), "user_service's send is the root")
	assertChild(t, emailProcess, userSend, true)
	assertChild(t, emailSend, emailProcess, false)
	assertChild(t, analyticsProcess, emailSend, true)

	// Kinds and attributes.
	for _, c := range []struct {
		span        sdktrace.ReadOnlySpan
		kind        trace.SpanKind
		op, dest, g string
	}{
		{userSend, trace.SpanKindProducer, "send", string(userCreated), ""},
		{emailProcess, trace.SpanKindConsumer, "process", string(userCreated), "email_service"},
		{emailSend, trace.SpanKindProducer, "send", string(emailSent), ""},
		{analyticsProcess, trace.SpanKindConsumer, "process", string(emailSent), "analytics_service"},
	} {
		name := serviceOf(c.span) + " " + c.span.Name()
		assert.Equal(t, c.kind, c.span.SpanKind(), name)
		a := attrs(c.span)
		assert.Equal(t, transport, a["messaging.system"].AsString(), name)
		assert.Equal(t, c.op, a["messaging.operation.name"].AsString(), name)
		assert.Equal(t, c.op, a["messaging.operation.type"].AsString(), name)
		assert.Equal(t, c.dest, a["messaging.destination.name"].AsString(), name)
		assert.NotEmpty(t, a["messaging.message.id"].AsString(), name)
		if c.g != "" {
			assert.Equal(t, c.g, a["messaging.consumer.group.name"].AsString(), name)
			assert.Equal(t, int64(1), a["messaging.gossip.delivery.attempt"].AsInt64(), name)
		} else {
			assert.NotContains(t, a, attribute.Key("messaging.consumer.group.name"), name)
		}
	}
	assert.Equal(t, created.ID, attrs(userSend)["messaging.message.id"].AsString())
	assert.Equal(t, created.ID, attrs(emailProcess)["messaging.message.id"].AsString())
	assert.Equal(t, attrs(emailSend)["messaging.message.id"], attrs(analyticsProcess)["messaging.message.id"])
	if transport != "memory" {
		// Over a wire the consumer knows the body's size.
		assert.Positive(t, attrs(emailProcess)["messaging.message.body.size"].AsInt64())
	}
	assert.Equal(t, int32(1), analyticsHandled.Load())
}

// assertChild asserts that child's parent is parent, across processes as
// a remote parent, and, for consumer spans, that child links to parent.
func assertChild(t *testing.T, child, parent sdktrace.ReadOnlySpan, link bool) {
	t.Helper()
	name := fmt.Sprintf("%s %s", serviceOf(child), child.Name())
	assert.Equal(t, parent.SpanContext().SpanID(), child.Parent().SpanID(), "%s is a child of %s", name, parent.Name())
	if !link {
		assert.Empty(t, child.Links(), name)
		return
	}
	assert.True(t, child.Parent().IsRemote(), "%s's parent came over the transport", name)
	require.Len(t, child.Links(), 1, name)
	assert.Equal(t, parent.SpanContext().TraceID(), child.Links()[0].SpanContext.TraceID(), name)
	assert.Equal(t, parent.SpanContext().SpanID(), child.Links()[0].SpanContext.SpanID(), "%s links to %s", name, parent.Name())
}

// newBus opens a bus for service on driver and shuts it down when the
// test ends.
func newBus(t *testing.T, driver, service string) *gossip.EventBus {
	t.Helper()
	b, err := gossip.NewEventBus(&gossip.Config{Driver: driver, Source: service, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		assert.NoError(t, b.Shutdown(ctx))
	})
	return b
}
