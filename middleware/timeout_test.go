package middleware_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
)

// blockUntilDone is a handler that honours ctx: it waits for it to end,
// records that it returned, and returns ctx's error.
func blockUntilDone(returned *bool) gossip.Handler {
	return func(ctx context.Context, _ *gossip.Event) error {
		<-ctx.Done()
		*returned = true
		return ctx.Err()
	}
}

func TestTimeoutEndsHandlerContextAfterDuration(t *testing.T) {
	var returned bool
	h := middleware.Timeout(10 * time.Millisecond)(blockUntilDone(&returned))

	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- h(context.Background(), gossip.NewEvent("orders.created", nil)) }()
	err := receive(t, done)

	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.GreaterOrEqual(t, time.Since(start), 10*time.Millisecond)
	assert.True(t, returned, "Timeout returns only once the handler has: it leaves nothing running")
}

func TestTimeoutSetsDeadline(t *testing.T) {
	longer, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	shorter, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	for _, tc := range []struct {
		name         string
		parent       context.Context
		d            time.Duration
		wantDeadline bool
		within       time.Duration // of now
	}{
		{"from the call", context.Background(), time.Minute, true, time.Minute},
		{"parent's earlier deadline kept", shorter, time.Minute, true, time.Second},
		{"sooner than parent's", longer, time.Minute, true, time.Minute},
		{"zero sets none", context.Background(), 0, false, 0},
		{"negative sets none", context.Background(), -time.Second, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				deadline time.Time
				ok       bool
			)
			h := func(ctx context.Context, _ *gossip.Event) error {
				deadline, ok = ctx.Deadline()
				return nil
			}
			require.NoError(t, middleware.Timeout(tc.d)(h)(tc.parent, gossip.NewEvent("orders.created", nil)))
			require.Equal(t, tc.wantDeadline, ok)
			if ok {
				assert.WithinDuration(t, time.Now().Add(tc.within), deadline, tc.within/10)
			}
		})
	}
}

func TestTimeoutReturnsWhatHandlerReturns(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"nil after the deadline", nil},
		{"its own error", errBoom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := func(ctx context.Context, _ *gossip.Event) error {
				<-ctx.Done()
				return tc.err
			}
			done := make(chan error, 1)
			go func() {
				done <- middleware.Timeout(time.Millisecond)(h)(context.Background(), gossip.NewEvent("orders.created", nil))
			}()
			assert.Equal(t, tc.err, receive(t, done))
		})
	}
}

// On a bus, a handler that overruns its timeout and gives up with ctx's
// error fails the delivery, so the event is dead-lettered, not acked.
func TestTimeoutOnBusDeadLettersEventWhoseHandlerTimesOut(t *testing.T) {
	bus := newBus(t, nil)
	dead := make(chan *gossip.Event, 1)
	_, err := bus.Subscribe(gossip.DeadLetterType("", "orders.created"), func(_ context.Context, e *gossip.Event) error {
		dead <- e
		return nil
	})
	require.NoError(t, err)
	var returned bool
	_, err = bus.Subscribe("orders.created", blockUntilDone(&returned),
		gossip.WithMiddleware(middleware.Timeout(10*time.Millisecond)), gossip.MaxDeliveries(1), gossip.Workers(1))
	require.NoError(t, err)
	e := gossip.NewEvent("orders.created", nil)
	require.NoError(t, bus.Publish(context.Background(), e))

	dl := receive(t, dead)
	info, ok := gossip.DeadLetterInfo(dl)
	require.True(t, ok)
	assert.Equal(t, e.ID, dl.ID)
	assert.Equal(t, context.DeadlineExceeded.Error(), info.Error)
}
