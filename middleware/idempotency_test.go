package middleware_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
)

// claims opens a claim store on a private memory bus.
func claims(t *testing.T, retention time.Duration) gossip.ClaimStore {
	t.Helper()
	s, err := newBus(t, nil).Claims(context.Background(), "test", retention)
	require.NoError(t, err)
	return s
}

// flakyStore wraps a store and fails the calls a test switches off.
type flakyStore struct {
	gossip.ClaimStore
	claimErr, extendErr, completeErr, releaseErr error
	extends                                      chan struct{}
	releases                                     atomic.Int32
}

func (f *flakyStore) Claim(ctx context.Context, key, owner string, lease time.Duration) (gossip.ClaimState, error) {
	if f.claimErr != nil {
		return 0, f.claimErr
	}
	return f.ClaimStore.Claim(ctx, key, owner, lease)
}

func (f *flakyStore) Extend(ctx context.Context, key, owner string, lease time.Duration) error {
	if f.extends != nil {
		select {
		case f.extends <- struct{}{}:
		default:
		}
	}
	if f.extendErr != nil {
		return f.extendErr
	}
	return f.ClaimStore.Extend(ctx, key, owner, lease)
}

func (f *flakyStore) Complete(ctx context.Context, key, owner string) error {
	if f.completeErr != nil {
		return f.completeErr
	}
	return f.ClaimStore.Complete(ctx, key, owner)
}

func (f *flakyStore) Release(ctx context.Context, key, owner string) error {
	f.releases.Add(1)
	if f.releaseErr != nil {
		return f.releaseErr
	}
	return f.ClaimStore.Release(ctx, key, owner)
}

func TestIdempotentRunsOncePerEvent(t *testing.T) {
	var runs atomic.Int32
	h := middleware.Idempotent(claims(t, time.Minute), middleware.IdempotencyOptions{})(func(ctx context.Context, e *gossip.Event) error {
		runs.Add(1)
		return nil
	})
	e := gossip.NewEvent("orders.created", 1)
	for range 10 {
		require.NoError(t, h(context.Background(), e), "a duplicate acks")
	}
	require.NoError(t, h(context.Background(), gossip.NewEvent("orders.created", 2)))
	assert.Equal(t, int32(2), runs.Load(), "one run per event ID")
}

func TestIdempotentFailureReleasesTheKey(t *testing.T) {
	store := &flakyStore{ClaimStore: claims(t, time.Minute)}
	var runs atomic.Int32
	boom := errors.New("boom")
	h := middleware.Idempotent(store, middleware.IdempotencyOptions{})(func(ctx context.Context, e *gossip.Event) error {
		if runs.Add(1) == 1 {
			return gossip.Permanent(boom)
		}
		return nil
	})
	e := gossip.NewEvent("orders.created", 1)
	err := h(context.Background(), e)
	require.ErrorIs(t, err, boom, "the handler's error comes back as it is")
	assert.True(t, gossip.IsPermanent(err), "a permanent error stays permanent")
	assert.Equal(t, int32(1), store.releases.Load(), "the failed run released its claim")
	require.NoError(t, h(context.Background(), e), "the retry runs")
	require.NoError(t, h(context.Background(), e), "a later duplicate acks")
	assert.Equal(t, int32(2), runs.Load())
}

func TestIdempotentStoreDownFailsTheDelivery(t *testing.T) {
	down := errors.New("connection refused")
	store := &flakyStore{ClaimStore: claims(t, time.Minute), claimErr: down}
	ran := false
	h := middleware.Idempotent(store, middleware.IdempotencyOptions{})(func(ctx context.Context, e *gossip.Event) error {
		ran = true
		return nil
	})
	err := h(context.Background(), gossip.NewEvent("orders.created", 1))
	require.ErrorIs(t, err, down, "the delivery fails: the bus retries it")
	assert.False(t, gossip.IsPermanent(err), "a store outage is retried, not dead-lettered at once")
	assert.False(t, ran, "the handler never runs on a guess")
}

func TestIdempotentUnrecordedSuccessFailsTheDelivery(t *testing.T) {
	down := errors.New("connection refused")
	store := &flakyStore{ClaimStore: claims(t, time.Minute), completeErr: down}
	h := middleware.Idempotent(store, middleware.IdempotencyOptions{})(func(ctx context.Context, e *gossip.Event) error { return nil })
	require.ErrorIs(t, h(context.Background(), gossip.NewEvent("orders.created", 1)), down)
}

func TestIdempotentFailedReleaseIsReported(t *testing.T) {
	down := errors.New("connection refused")
	boom := errors.New("boom")
	store := &flakyStore{ClaimStore: claims(t, time.Minute), releaseErr: down}
	h := middleware.Idempotent(store, middleware.IdempotencyOptions{})(func(ctx context.Context, e *gossip.Event) error { return boom })
	err := h(context.Background(), gossip.NewEvent("orders.created", 1))
	require.ErrorIs(t, err, boom)
	assert.ErrorContains(t, err, "connection refused")
}

func TestIdempotentEmptyKeyIsPermanent(t *testing.T) {
	h := middleware.Idempotent(claims(t, time.Minute), middleware.IdempotencyOptions{
		Key: func(*gossip.Event) string { return "" },
	})(func(ctx context.Context, e *gossip.Event) error { return nil })
	assert.True(t, gossip.IsPermanent(h(context.Background(), gossip.NewEvent("orders.created", 1))))
}

func TestIdempotentUserKey(t *testing.T) {
	var runs atomic.Int32
	h := middleware.Idempotent(claims(t, time.Minute), middleware.IdempotencyOptions{
		Key: func(e *gossip.Event) string { return e.Metadata["order"] },
	})(func(ctx context.Context, e *gossip.Event) error { runs.Add(1); return nil })
	for range 3 { // three events with distinct IDs, one order
		require.NoError(t, h(context.Background(), gossip.NewEvent("orders.paid", 1).WithMetadata("order", "o-1")))
	}
	assert.Equal(t, int32(1), runs.Load())
}

func TestIdempotentDuplicateWaitsForTheRunningOne(t *testing.T) {
	store := claims(t, time.Minute)
	var inFlight, most, runs atomic.Int32
	started, finish := make(chan struct{}), make(chan struct{})
	h := middleware.Idempotent(store, middleware.IdempotencyOptions{})(func(ctx context.Context, e *gossip.Event) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if runs.Add(1) == 1 {
			close(started)
			<-finish
		}
		return nil
	})
	e := gossip.NewEvent("orders.created", 1)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- h(context.Background(), e) })
	}
	receive(t, started)
	close(finish)
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err, "duplicates wait, then ack")
	}
	assert.Equal(t, int32(1), runs.Load(), "the handler ran once")
	assert.Equal(t, int32(1), most.Load(), "never two at a time")
}

func TestIdempotentGivesUpAfterMaxWait(t *testing.T) {
	store := claims(t, time.Minute)
	e := gossip.NewEvent("orders.created", 1)
	state, err := store.Claim(context.Background(), middleware.IdempotencyKey(e), "someone-else", time.Minute)
	require.NoError(t, err)
	require.Equal(t, gossip.Claimed, state)
	ran := false
	h := middleware.Idempotent(store, middleware.IdempotencyOptions{MaxWait: 20 * time.Millisecond})(func(ctx context.Context, e *gossip.Event) error {
		ran = true
		return nil
	})
	err = h(context.Background(), e)
	require.ErrorIs(t, err, middleware.ErrInProgress)
	assert.False(t, gossip.IsPermanent(err), "retried later")
	assert.False(t, ran)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, h(ctx, e), context.Canceled, "the wait ends with ctx")
}

func TestIdempotentExtendsTheLeaseWhileRunning(t *testing.T) {
	store := &flakyStore{ClaimStore: claims(t, time.Minute), extends: make(chan struct{}, 1)}
	h := middleware.Idempotent(store, middleware.IdempotencyOptions{Lease: 30 * time.Millisecond})(func(ctx context.Context, e *gossip.Event) error {
		for range 3 { // three extensions: the lease outlived itself
			receive(t, store.extends)
		}
		return ctx.Err()
	})
	require.NoError(t, h(context.Background(), gossip.NewEvent("orders.created", 1)), "the lease was kept: the run completes")
}

func TestIdempotentLostLeaseCancelsTheHandler(t *testing.T) {
	store := &flakyStore{ClaimStore: claims(t, time.Minute), extendErr: gossip.ErrClaimNotHeld}
	var cause error
	h := middleware.Idempotent(store, middleware.IdempotencyOptions{Lease: 30 * time.Millisecond})(func(ctx context.Context, e *gossip.Event) error {
		select {
		case <-ctx.Done():
		case <-time.After(waitLimit):
			t.Error("the handler's ctx did not end")
		}
		cause = context.Cause(ctx)
		return ctx.Err()
	})
	require.Error(t, h(context.Background(), gossip.NewEvent("orders.created", 1)))
	assert.ErrorIs(t, cause, gossip.ErrClaimNotHeld)
}

func TestIdempotentOnABus(t *testing.T) {
	bus := newBus(t, nil)
	store, err := bus.Claims(context.Background(), "billing", time.Minute)
	require.NoError(t, err)
	done := make(chan string, 20)
	_, err = bus.Subscribe("billing.charge", func(ctx context.Context, e *gossip.Event) error {
		done <- e.ID
		return nil
	}, gossip.Group("billing"), gossip.Workers(1), gossip.WithMiddleware(middleware.Idempotent(store, middleware.IdempotencyOptions{})))
	require.NoError(t, err)
	e := gossip.NewEvent("billing.charge", 1)
	for range 5 {
		require.NoError(t, bus.Publish(context.Background(), e))
	}
	marker := gossip.NewEvent("billing.charge", 2)
	require.NoError(t, bus.Publish(context.Background(), marker))
	assert.Equal(t, e.ID, receive(t, done))
	assert.Equal(t, marker.ID, receive(t, done), "the duplicates were acked without running")
}

func TestIdempotentPanicReleasesTheKey(t *testing.T) {
	store := &flakyStore{ClaimStore: claims(t, time.Minute)}
	var runs atomic.Int32
	h := middleware.Idempotent(store, middleware.IdempotencyOptions{})(func(ctx context.Context, e *gossip.Event) error {
		if runs.Add(1) == 1 {
			panic("boom")
		}
		return nil
	})
	e := gossip.NewEvent("orders.created", 1)
	var pe *gossip.PanicError
	require.ErrorAs(t, h(context.Background(), e), &pe)
	assert.Equal(t, "boom", pe.Value)
	require.NoError(t, h(context.Background(), e), "the retry runs")
	assert.Equal(t, int32(2), runs.Load())
}

func TestIdempotentLeaseOverRetentionIsPermanent(t *testing.T) {
	ran := false
	h := middleware.Idempotent(claims(t, time.Second), middleware.IdempotencyOptions{Lease: time.Minute})(func(ctx context.Context, e *gossip.Event) error {
		ran = true
		return nil
	})
	err := h(context.Background(), gossip.NewEvent("orders.created", 1))
	require.ErrorIs(t, err, gossip.ErrInvalidOption)
	assert.True(t, gossip.IsPermanent(err), "no retry can fix the configuration: dead-lettered with the reason")
	assert.False(t, ran)
}
