package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
)

// failing returns a handler that fails its first n calls, each with a
// distinct error ("failure 1", ...), then succeeds; calls counts them.
func failing(n int, calls *atomic.Int32) gossip.Handler {
	return func(context.Context, *gossip.Event) error {
		if c := int(calls.Add(1)); c <= n {
			return fmt.Errorf("failure %d", c)
		}
		return nil
	}
}

// fast is a Retry with millisecond waits and no jitter.
func fast(maxRetries int) middleware.Retry {
	return middleware.Retry{MaxRetries: maxRetries, InitialInterval: time.Millisecond, MaxInterval: 4 * time.Millisecond, RandomizationFactor: -1}
}

func TestRetryRetriesUntilSuccessOrMaxRetries(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxRetries int
		failures   int
		wantCalls  int32
		wantErr    string
	}{
		{"success at once", 3, 0, 1, ""},
		{"success on second retry", 3, 2, 3, ""},
		{"success on last retry", 3, 3, 4, ""},
		{"gives up with last error", 3, 10, 4, "failure 4"},
		{"zero means 3 retries", 0, 10, 4, "failure 4"},
		{"negative disables retries", -1, 10, 1, "failure 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			err := fast(tc.maxRetries).Middleware()(failing(tc.failures, &calls))(context.Background(), gossip.NewEvent("orders.created", nil))
			if tc.wantErr == "" {
				assert.NoError(t, err)
			} else {
				assert.EqualError(t, err, tc.wantErr)
			}
			assert.Equal(t, tc.wantCalls, calls.Load())
		})
	}
}

func TestRetryStopsAtOnceOnUnretryableError(t *testing.T) {
	for _, tc := range []struct {
		name  string
		retry middleware.Retry
		err   error
	}{
		{"permanent", fast(3), gossip.Permanent(errBoom)},
		{"decode error", fast(3), &gossip.DecodeError{Err: errBoom}},
		{"ShouldRetry false", middleware.Retry{InitialInterval: time.Millisecond, ShouldRetry: func(err error) bool { return !errors.Is(err, errBoom) }}, errBoom},
		{"permanent though ShouldRetry true", middleware.Retry{InitialInterval: time.Millisecond, ShouldRetry: func(error) bool { return true }}, gossip.Permanent(errBoom)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			h := func(context.Context, *gossip.Event) error { calls.Add(1); return tc.err }
			err := tc.retry.Middleware()(h)(context.Background(), gossip.NewEvent("orders.created", nil))
			assert.Equal(t, tc.err, err)
			assert.EqualValues(t, 1, calls.Load())
		})
	}
}

func TestRetryWaitsWithExponentialBackoffCappedAtMaxInterval(t *testing.T) {
	var calls atomic.Int32
	var gaps []time.Duration
	last := time.Now()
	h := func(context.Context, *gossip.Event) error {
		now := time.Now()
		if calls.Add(1) > 1 {
			gaps = append(gaps, now.Sub(last))
		}
		last = now
		return errBoom
	}
	r := middleware.Retry{MaxRetries: 4, InitialInterval: 2 * time.Millisecond, MaxInterval: 8 * time.Millisecond, Multiplier: 2, RandomizationFactor: -1}

	start := time.Now()
	require.ErrorIs(t, r.Middleware()(h)(context.Background(), gossip.NewEvent("orders.created", nil)), errBoom)
	elapsed := time.Since(start)

	want := []time.Duration{2 * time.Millisecond, 4 * time.Millisecond, 8 * time.Millisecond, 8 * time.Millisecond}
	require.Len(t, gaps, len(want))
	for i, w := range want {
		assert.GreaterOrEqual(t, gaps[i], w, "wait before retry %d", i+1)
	}
	assert.Less(t, elapsed, time.Second, "waits are bounded by the configured intervals")
}

func TestRetryJitterStaysWithinFactor(t *testing.T) {
	var gaps []time.Duration
	last := time.Now()
	h := func(context.Context, *gossip.Event) error {
		now := time.Now()
		gaps = append(gaps, now.Sub(last))
		last = now
		return errBoom
	}
	// Multiplier 1: every wait is 10ms ± 50%, so at least 5ms.
	r := middleware.Retry{MaxRetries: 5, InitialInterval: 10 * time.Millisecond, Multiplier: 1, RandomizationFactor: 0.5}

	start := time.Now()
	require.Error(t, r.Middleware()(h)(context.Background(), gossip.NewEvent("orders.created", nil)))
	elapsed := time.Since(start)

	for i, g := range gaps[1:] {
		assert.GreaterOrEqual(t, g, 5*time.Millisecond, "wait before retry %d", i+1)
	}
	assert.Less(t, elapsed, time.Second)
}

func TestRetryCallsOnRetryBeforeEachRetry(t *testing.T) {
	type call struct {
		attempt int
		err     string
	}
	var got []call
	var calls atomic.Int32
	e := gossip.NewEvent("orders.created", nil)
	r := fast(3)
	r.OnRetry = func(_ context.Context, seen *gossip.Event, attempt int, err error) {
		assert.Same(t, e, seen)
		got = append(got, call{attempt, err.Error()})
	}

	require.NoError(t, r.Middleware()(failing(2, &calls))(context.Background(), e))
	assert.Equal(t, []call{{1, "failure 1"}, {2, "failure 2"}}, got)
}

func TestRetryStopsWhenContextEndsDuringWait(t *testing.T) {
	for _, tc := range []struct {
		name    string
		end     func(ctx context.Context) (context.Context, func(), context.CancelFunc)
		wantErr error
	}{
		{"cancelled", func(ctx context.Context) (context.Context, func(), context.CancelFunc) {
			ctx, cancel := context.WithCancel(ctx)
			return ctx, func() { time.AfterFunc(10*time.Millisecond, cancel) }, cancel
		}, context.Canceled},
		{"deadline", func(ctx context.Context) (context.Context, func(), context.CancelFunc) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
			return ctx, func() {}, cancel
		}, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, onRetry, cancel := tc.end(context.Background())
			defer cancel()
			var calls atomic.Int32
			r := middleware.Retry{
				InitialInterval: time.Hour, MaxInterval: time.Hour,
				OnRetry: func(context.Context, *gossip.Event, int, error) { onRetry() },
			}
			h := func(context.Context, *gossip.Event) error { calls.Add(1); return errBoom }

			done := make(chan error, 1)
			go func() { done <- r.Middleware()(h)(ctx, gossip.NewEvent("orders.created", nil)) }()
			err := receive(t, done)

			assert.ErrorIs(t, err, tc.wantErr)
			assert.ErrorIs(t, err, errBoom, "the handler's last error is kept")
			assert.False(t, gossip.IsPermanent(err), "the bus may still redeliver the event")
			assert.EqualValues(t, 1, calls.Load())
		})
	}
}

func TestRetryDoesNotRetryWhenContextAlreadyEnded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var calls atomic.Int32
	h := func(ctx context.Context, _ *gossip.Event) error {
		calls.Add(1)
		return ctx.Err()
	}

	err := fast(3).Middleware()(h)(ctx, gossip.NewEvent("orders.created", nil))
	assert.ErrorIs(t, err, context.Canceled)
	assert.EqualValues(t, 1, calls.Load())
}

// On a bus, in-process retries are one delivery: the handler runs three
// times with Attempt 1, and the event, handled in the end, is acked and not
// redelivered.
func TestRetryOnBusRetriesWithinOneDelivery(t *testing.T) {
	bus := newBus(t, nil)
	var (
		mu       sync.Mutex
		attempts []int
		calls    atomic.Int32
	)
	done := make(chan struct{}, 1)
	flaky := failing(2, &calls)
	handler := func(ctx context.Context, e *gossip.Event) error {
		mu.Lock()
		attempts = append(attempts, e.Attempt())
		mu.Unlock()
		err := flaky(ctx, e)
		if err == nil {
			done <- struct{}{}
		}
		return err
	}
	_, err := bus.Subscribe("orders.created", handler, gossip.WithMiddleware(fast(3).Middleware()))
	require.NoError(t, err)
	require.NoError(t, bus.Publish(context.Background(), gossip.NewEvent("orders.created", nil)))

	receive(t, done)
	shutdown(t, bus) // drains anything redelivered
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []int{1, 1, 1}, attempts)
}
