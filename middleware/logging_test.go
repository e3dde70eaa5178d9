package middleware_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
)

func debugLogger(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func returning(err error) gossip.Handler {
	return func(context.Context, *gossip.Event) error { return err }
}

func TestLoggingLogsOutcomeAtLevel(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		opts      []middleware.LoggingOption
		wantLevel string
		wantMsg   string
	}{
		{"success", nil, nil, "DEBUG", "gossip: event handled"},
		{"retryable error", errBoom, nil, "WARN", "gossip: handler failed"},
		{"permanent error", gossip.Permanent(errBoom), nil, "ERROR", "gossip: handler failed"},
		{"panic", fmt.Errorf("wrapped: %w", &gossip.PanicError{Value: "kaboom"}), nil, "ERROR", "gossip: handler failed"},
		{"success at chosen level", nil, []middleware.LoggingOption{middleware.SuccessLevel(slog.LevelInfo)}, "INFO", "gossip: event handled"},
		{"retryable error at chosen level", errBoom, []middleware.LoggingOption{middleware.FailureLevel(slog.LevelError)}, "ERROR", "gossip: handler failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			e := gossip.NewEvent("orders.created", nil)
			e.Source = "checkout"

			err := middleware.Logging(debugLogger(&buf), tc.opts...)(returning(tc.err))(context.Background(), e)
			assert.Equal(t, tc.err, err, "Logging returns the handler's error unchanged")

			lines := logLines(t, &buf)
			require.Len(t, lines, 1)
			l := lines[0]
			assert.Equal(t, tc.wantLevel, l["level"])
			assert.Equal(t, tc.wantMsg, l["msg"])
			assert.Equal(t, e.ID, l["id"])
			assert.Equal(t, "orders.created", l["type"])
			assert.Equal(t, "checkout", l["source"])
			assert.EqualValues(t, 0, l["attempt"], "an event that was not delivered has attempt 0")
			assert.Equal(t, "", l["group"])
			assert.Equal(t, e.ID, l["correlation_id"], "an event without a correlation is its own")
			assert.NotContains(t, l, "causation_id", "and has no cause")
			assert.Contains(t, l, "duration")
			if tc.err != nil {
				assert.Equal(t, tc.err.Error(), l["error"])
			} else {
				assert.NotContains(t, l, "error")
			}
			assert.NotContains(t, l, "trace_id")
			assert.NotContains(t, l, "span_id")
		})
	}
}

func TestLoggingShowsCorrelationAndCausation(t *testing.T) {
	var buf bytes.Buffer
	e := gossip.NewEvent("orders.shipped", nil).
		WithMetadata(gossip.MetaCorrelationID, "corr-1").WithMetadata(gossip.MetaCausationID, "cause-2")
	require.NoError(t, middleware.Logging(debugLogger(&buf))(returning(nil))(context.Background(), e))
	lines := logLines(t, &buf)
	require.Len(t, lines, 1)
	assert.Equal(t, "corr-1", lines[0]["correlation_id"])
	assert.Equal(t, "cause-2", lines[0]["causation_id"])
}

func TestLoggingAddsTraceAndSpanIDFromSpanContext(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	require.True(t, sc.IsValid())
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	var buf bytes.Buffer

	require.NoError(t, middleware.Logging(debugLogger(&buf))(returning(nil))(ctx, gossip.NewEvent("orders.created", nil)))

	lines := logLines(t, &buf)
	require.Len(t, lines, 1)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", lines[0]["trace_id"])
	assert.Equal(t, "00f067aa0ba902b7", lines[0]["span_id"])
}

func TestLoggingLeavesOutPayloadAndUnlistedMetadata(t *testing.T) {
	var buf bytes.Buffer
	e := gossip.NewEvent("users.created", map[string]string{"password": "hunter2-payload"}).
		WithMetadata("authorization", "Bearer hunter2-header").
		WithMetadata("tenant", "acme")

	h := middleware.Logging(debugLogger(&buf), middleware.LogMetadata("tenant", "absent"))(returning(nil))
	require.NoError(t, h(context.Background(), e))

	assert.NotContains(t, buf.String(), "hunter2")
	lines := logLines(t, &buf)
	require.Len(t, lines, 1)
	assert.Equal(t, "acme", lines[0]["metadata.tenant"])
	assert.NotContains(t, lines[0], "metadata.absent")
}

func TestLoggingSkipsLinesBelowLoggerLevel(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	h := middleware.Logging(logger)

	require.NoError(t, h(returning(nil))(context.Background(), gossip.NewEvent("orders.created", nil)))
	assert.Empty(t, buf.String(), "success is logged at Debug")

	require.Error(t, h(returning(errBoom))(context.Background(), gossip.NewEvent("orders.created", nil)))
	assert.Len(t, logLines(t, &buf), 1, "failure is logged at Warn")
}

func TestLoggingWithNilLoggerUsesDefault(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	require.Error(t, middleware.Logging(nil)(returning(errBoom))(context.Background(), gossip.NewEvent("orders.created", nil)))

	lines := logLines(t, &buf)
	require.Len(t, lines, 1)
	assert.Equal(t, "gossip: handler failed", lines[0]["msg"])
}

// On a bus, the line carries the delivery's attempt and group, and
// Logging outside Recovery logs a panic as an error.
func TestLoggingOnBusLogsDeliveryAttributes(t *testing.T) {
	records := make(recordChan, 4)
	logger := slog.New(slog.NewJSONHandler(records, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bus := newBus(t, &gossip.Config{Source: "checkout"})
	bus.Use(middleware.Logging(logger), middleware.Recovery())
	handler := func(ctx context.Context, e *gossip.Event) error {
		if e.Attempt() == 1 {
			panic("first attempt fails")
		}
		return nil
	}
	_, err := bus.Subscribe("orders.created", handler, gossip.Group("billing"),
		gossip.RetryBackoff(time.Millisecond, time.Millisecond))
	require.NoError(t, err)
	e := gossip.NewEvent("orders.created", nil)
	require.NoError(t, bus.Publish(context.Background(), e))

	first := receive(t, records)
	assert.Equal(t, "ERROR", first["level"])
	assert.Equal(t, "gossip: handler panicked: first attempt fails", first["error"])
	assert.EqualValues(t, 1, first["attempt"])

	second := receive(t, records)
	assert.Equal(t, "DEBUG", second["level"])
	assert.EqualValues(t, 2, second["attempt"])
	for _, l := range []map[string]any{first, second} {
		assert.Equal(t, e.ID, l["id"])
		assert.Equal(t, "orders.created", l["type"])
		assert.Equal(t, "checkout", l["source"])
		assert.Equal(t, "billing", l["group"])
	}
}
