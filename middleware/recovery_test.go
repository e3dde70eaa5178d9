package middleware_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
)

// panickingHandler panics with v; tests look for its name in the stack.
func panickingHandler(v any) gossip.Handler {
	return func(context.Context, *gossip.Event) error { panic(v) }
}

var errBoom = errors.New("boom")

func TestRecoveryTurnsPanicIntoPanicErrorWithStack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value any
		check func(t *testing.T, pe *gossip.PanicError)
	}{
		{"string", "kaboom", func(t *testing.T, pe *gossip.PanicError) {
			assert.Equal(t, "kaboom", pe.Value)
		}},
		{"error", errBoom, func(t *testing.T, pe *gossip.PanicError) {
			assert.ErrorIs(t, pe, errBoom, "an error panic value stays reachable with errors.Is")
		}},
		{"nil", nil, func(t *testing.T, pe *gossip.PanicError) {
			var pn *runtime.PanicNilError
			assert.ErrorAs(t, pe, &pn)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := middleware.Recovery()(panickingHandler(tc.value))
			err := h(context.Background(), gossip.NewEvent("orders.created", nil))
			require.Error(t, err, "a panic must never be an ack")
			var pe *gossip.PanicError
			require.ErrorAs(t, err, &pe)
			assert.Contains(t, string(pe.Stack), "panickingHandler")
			tc.check(t, pe)
		})
	}
}

func TestRecoveryReturnsHandlerResultWhenNoPanic(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"nil", nil},
		{"error", errBoom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := middleware.Recovery()(func(context.Context, *gossip.Event) error { return tc.err })
			assert.Equal(t, tc.err, h(context.Background(), gossip.NewEvent("orders.created", nil)))
		})
	}
}

func TestRecoveryWithLoggerLogsPanicAtError(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	e := gossip.NewEvent("orders.created", nil)

	err := middleware.RecoveryWithLogger(logger)(panickingHandler("kaboom"))(context.Background(), e)
	var pe *gossip.PanicError
	require.ErrorAs(t, err, &pe)

	lines := logLines(t, &buf)
	require.Len(t, lines, 1)
	assert.Equal(t, "ERROR", lines[0]["level"])
	assert.Equal(t, e.ID, lines[0]["id"])
	assert.Equal(t, "orders.created", lines[0]["type"])
	assert.Equal(t, "kaboom", lines[0]["panic"])
	assert.Contains(t, lines[0]["stack"], "panickingHandler")
}

// On a bus, Recovery's error (not an ack) makes the bus redeliver the
// event, and middleware outside Recovery sees the panic as an error.
func TestRecoveryOnBusRedeliversPanickedEvent(t *testing.T) {
	bus := newBus(t, nil)
	seen := make(chan error, 4)
	observe := func(h gossip.Handler) gossip.Handler {
		return func(ctx context.Context, e *gossip.Event) error {
			err := h(ctx, e)
			seen <- err
			return err
		}
	}
	handler := func(ctx context.Context, e *gossip.Event) error {
		if e.Attempt() == 1 {
			panic("first attempt fails")
		}
		return nil
	}
	_, err := bus.Subscribe("orders.created", handler,
		gossip.WithMiddleware(observe, middleware.Recovery()),
		gossip.MaxDeliveries(2), gossip.RetryBackoff(time.Millisecond, time.Millisecond))
	require.NoError(t, err)
	require.NoError(t, bus.Publish(context.Background(), gossip.NewEvent("orders.created", nil)))

	var pe *gossip.PanicError
	require.ErrorAs(t, receive(t, seen), &pe)
	assert.Equal(t, "first attempt fails", pe.Value)
	assert.NoError(t, receive(t, seen), "the panicked event is redelivered and then handled")
}
