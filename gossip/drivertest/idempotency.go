package drivertest

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
)

// testIdempotency runs the idempotency behaviours, in parallel: the
// transport's claim store, and middleware.Idempotent on it across
// duplicates, members, restarts, concurrency and failures.
func (s *suite) testIdempotency(t *testing.T) {
	for _, tc := range []testCase{
		{"ClaimStoreStates", s.testClaimStoreStates},
		{"ClaimStoreLeaseAndRetentionExpire", s.testClaimStoreExpiry},
		{"ClaimStoreSharedByName", s.testClaimStoreShared},
		{"IdempotentDuplicateHandledOnce", s.testIdempotentOnce},
		{"IdempotentAcrossMembersAndRestart", s.testIdempotentMembers},
		{"IdempotentConcurrentDuplicatesNeverOverlap", s.testIdempotentConcurrent},
		{"IdempotentFailureReleasesClaim", s.testIdempotentFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t)
		})
	}
}

func (e *env) claims(b *gossip.EventBus, name string, retention time.Duration) gossip.ClaimStore {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e.s.h.Timeout)
	defer cancel()
	st, err := b.Claims(ctx, name, retention)
	require.NoError(e.t, err, "Claims %s", name)
	return st
}

func (s *suite) testClaimStoreStates(t *testing.T) {
	e := s.env(t)
	b := e.bus()
	st := e.claims(b, "states", time.Minute)
	ctx := context.Background()
	claim := func(key, owner string) gossip.ClaimState {
		t.Helper()
		state, err := st.Claim(ctx, key, owner, time.Minute)
		require.NoError(t, err)
		return state
	}
	key := "order 1 ✓" // any string is a key
	assert.Equal(t, gossip.Claimed, claim(key, "a"))
	assert.Equal(t, gossip.Busy, claim(key, "b"), "another owner's lease has not ended")
	assert.Equal(t, gossip.Claimed, claim(key, "a"), "the holder renews its claim")
	for _, err := range []error{
		st.Extend(ctx, key, "b", time.Minute), st.Complete(ctx, key, "b"), st.Release(ctx, key, "b"),
	} {
		assert.ErrorIs(t, err, gossip.ErrClaimNotHeld, "an owner that does not hold the key touches nothing")
	}
	require.NoError(t, st.Extend(ctx, key, "a", time.Minute))
	require.NoError(t, st.Complete(ctx, key, "a"))
	assert.Equal(t, gossip.Done, claim(key, "b"))
	assert.Equal(t, gossip.Done, claim(key, "a"))
	assert.ErrorIs(t, st.Release(ctx, key, "a"), gossip.ErrClaimNotHeld, "a done key is not released")
	assert.ErrorIs(t, st.Extend(ctx, key, "a", time.Minute), gossip.ErrClaimNotHeld)

	assert.Equal(t, gossip.Claimed, claim("k2", "a"))
	require.NoError(t, st.Release(ctx, "k2", "a"))
	assert.Equal(t, gossip.Claimed, claim("k2", "b"), "a released key is free at once")
	assert.ErrorIs(t, st.Complete(ctx, "k2", "a"), gossip.ErrClaimNotHeld, "the first owner cannot complete the new owner's claim")
	require.NoError(t, st.Complete(ctx, "k2", "b"))

	_, err := st.Claim(ctx, "k3", "a", 2*time.Minute)
	assert.ErrorIs(t, err, gossip.ErrInvalidOption, "a lease longer than the retention")
	_, err = b.Claims(ctx, "no spaces", time.Minute)
	assert.ErrorIs(t, err, gossip.ErrInvalidOption)
}

// eventually polls f (with backoff) until it returns true, failing the test
// after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for wait := time.Millisecond; !f(); wait = min(2*wait, 200*time.Millisecond) {
		if time.Now().After(deadline) {
			require.FailNowf(t, "timed out", "waited %v for %s", timeout, what)
		}
		// A store's expiry sends no signal: look again after a backoff.
		<-time.After(wait)
	}
}

func (s *suite) testClaimStoreExpiry(t *testing.T) {
	e := s.env(t)
	b := e.bus()
	// A long retention: the lease, not the record's life, must end the claim.
	st := e.claims(b, "lease", time.Hour)
	ctx := context.Background()
	claim := func(key, owner string, lease time.Duration) gossip.ClaimState {
		state, err := st.Claim(ctx, key, owner, lease)
		require.NoError(t, err)
		return state
	}
	require.Equal(t, gossip.Claimed, claim("lease", "a", 50*time.Millisecond))
	eventually(t, s.h.Timeout, "the lease to end", func() bool { return claim("lease", "b", time.Minute) == gossip.Claimed })
	assert.ErrorIs(t, st.Extend(ctx, "lease", "a", time.Second), gossip.ErrClaimNotHeld, "an ended lease taken over is not the old owner's")
	assert.ErrorIs(t, st.Complete(ctx, "lease", "a"), gossip.ErrClaimNotHeld)
	assert.ErrorIs(t, st.Release(ctx, "lease", "a"), gossip.ErrClaimNotHeld)
	assert.Equal(t, gossip.Busy, claim("lease", "a", time.Minute), "the new owner holds it")

	st = e.claims(b, "retention", time.Second)
	require.Equal(t, gossip.Claimed, claim("done", "a", time.Second))
	require.NoError(t, st.Complete(ctx, "done", "a"))
	require.Equal(t, gossip.Done, claim("done", "b", time.Second))
	eventually(t, s.h.Timeout, "the retention to end", func() bool { return claim("done", "b", time.Second) == gossip.Claimed })
}

func (s *suite) testClaimStoreShared(t *testing.T) {
	e := s.env(t)
	ctx := context.Background()
	one := e.claims(e.bus(), "shared", time.Minute)
	two := e.claims(e.bus(), "shared", time.Minute)
	other := e.claims(e.bus(), "other", time.Minute)
	state, err := one.Claim(ctx, "k", "a", time.Minute)
	require.NoError(t, err)
	require.Equal(t, gossip.Claimed, state)
	state, err = two.Claim(ctx, "k", "b", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, gossip.Busy, state, "buses of one namespace share a store of one name")
	state, err = other.Claim(ctx, "k", "b", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, gossip.Claimed, state, "stores of other names share no key")
}

// counter counts, per event ID, the deliveries that reached the idempotency
// middleware and returned from it, and the handler's runs. Every change
// wakes every waiter.
type counter struct {
	mu         sync.Mutex
	arrived    map[string]int
	settled    map[string]int
	runs       map[string]int
	changed    chan struct{} // closed and replaced on every change
	inFlight   atomic.Int32
	mostAtOnce atomic.Int32
}

func newCounter() *counter {
	return &counter{arrived: map[string]int{}, settled: map[string]int{}, runs: map[string]int{}, changed: make(chan struct{})}
}

func (c *counter) bump(m map[string]int, id string) {
	c.mu.Lock()
	m[id]++
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *counter) get(m map[string]int, id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return m[id]
}

// until waits until f holds (f runs under c.mu) and reports whether it did
// within timeout.
func (c *counter) until(timeout time.Duration, f func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok, changed := f(), c.changed
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}

// wait waits until f holds, failing the test after timeout.
func (c *counter) wait(t *testing.T, timeout time.Duration, what string, f func() bool) {
	t.Helper()
	if !c.until(timeout, f) {
		require.FailNowf(t, "timed out", "waited %v for %s", timeout, what)
	}
}

// outside is the middleware outside Idempotent: it sees every delivery.
func (c *counter) outside(next gossip.Handler) gossip.Handler {
	return func(ctx context.Context, ev *gossip.Event) error {
		c.bump(c.arrived, ev.ID)
		err := next(ctx, ev)
		c.bump(c.settled, ev.ID)
		return err
	}
}

// run is the handler's part: it counts runs and how many ran at once.
func (c *counter) run(id string, body func() error) error {
	n := c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	for m := c.mostAtOnce.Load(); n > m && !c.mostAtOnce.CompareAndSwap(m, n); m = c.mostAtOnce.Load() {
	}
	c.bump(c.runs, id)
	if body != nil {
		return body()
	}
	return nil
}

func (s *suite) testIdempotentOnce(t *testing.T) {
	e := s.env(t)
	b := e.bus()
	st := e.claims(b, "once", time.Minute)
	c := newCounter()
	typ := e.typ("once")
	e.subscribe(b, typ, func(ctx context.Context, ev *gossip.Event) error { return c.run(ev.ID, nil) },
		e.groupOpts("once", gossip.Workers(1), gossip.WithMiddleware(c.outside, middleware.Idempotent(st, middleware.IdempotencyOptions{})))...)
	dup := gossip.NewEvent(typ, "dup")
	for range 10 {
		e.publish(b, dup)
	}
	marker := gossip.NewEvent(typ, "marker")
	e.publish(b, marker)
	// One worker, one publisher: the marker comes after every copy.
	c.wait(t, s.h.Timeout, "the marker", func() bool { return c.settled[marker.ID] == 1 })
	assert.Equal(t, 1, c.get(c.runs, dup.ID), "a duplicate published 10 times runs the handler once")
	assert.Equal(t, c.get(c.arrived, dup.ID), c.get(c.settled, dup.ID))
}

// testIdempotentMembers runs three members (broadcast listeners where the
// transport has no groups: the default key then scopes the event to all of
// them) with the middleware, publishes a duplicate 10 times, restarts a
// member and publishes it 10 times more. A control subscription without
// the middleware counts the copies the transport kept (a transport that
// deduplicates by ID at publish keeps one).
func (s *suite) testIdempotentMembers(t *testing.T) {
	e := s.env(t)
	pub := e.bus()
	typ := e.typ("members")
	c, control := newCounter(), newCounter()
	e.subscribe(e.bus(), typ, func(ctx context.Context, ev *gossip.Event) error { return control.run(ev.ID, nil) },
		e.groupOpts("control", gossip.Workers(1), gossip.WithMiddleware(control.outside))...)
	join := func(b *gossip.EventBus) *gossip.Subscription {
		mw := middleware.Idempotent(e.claims(b, "members", time.Minute), middleware.IdempotencyOptions{})
		return e.subscribe(b, typ, func(ctx context.Context, ev *gossip.Event) error { return c.run(ev.ID, nil) },
			e.groupOpts("members", gossip.Workers(2), gossip.WithMiddleware(c.outside, mw))...)
	}
	restarting := e.ownBus()
	join(restarting)
	join(e.bus())
	join(e.bus())
	perCopy := 1 // deliveries of each copy to the members
	if !s.h.Groups {
		perCopy = 3
	}
	dup := gossip.NewEvent(typ, "dup")
	wave := func(n int) {
		for range 10 {
			e.publish(pub, dup)
		}
		marker := gossip.NewEvent(typ, "marker"+strconv.Itoa(n))
		e.publish(pub, marker)
		control.wait(t, s.h.Timeout, "the control's marker", func() bool { return control.settled[marker.ID] == 1 })
		copies := control.get(control.runs, dup.ID)
		c.wait(t, s.h.Timeout, "every copy to reach the members", func() bool { return c.settled[dup.ID] >= copies*perCopy })
	}
	wave(1)
	ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
	defer cancel()
	require.NoError(t, restarting.Shutdown(ctx), "a member stops")
	join(e.bus()) // and comes back
	wave(2)
	assert.Equal(t, 1, c.get(c.runs, dup.ID), "the duplicate ran once among three members, across a restart")
}

// testIdempotentConcurrent delivers ten events of one idempotency key (a
// key the test derives: a transport that deduplicates by ID would drop
// copies of one ID) at once to three members, and holds the first run until
// every delivery has reached the middleware.
func (s *suite) testIdempotentConcurrent(t *testing.T) {
	e := s.env(t)
	pub := e.bus()
	typ := e.typ("concurrent")
	c := newCounter()
	var arrivedAll atomic.Int32
	const n = 10
	expected := n
	if !s.h.Groups {
		expected = 3 * n
	}
	first := true
	var firstMu sync.Mutex
	handler := func(ctx context.Context, ev *gossip.Event) error {
		return c.run("key", func() error {
			firstMu.Lock()
			wasFirst := first
			first = false
			firstMu.Unlock()
			if wasFirst && !c.until(s.h.Timeout, func() bool { return int(arrivedAll.Load()) >= expected }) {
				t.Errorf("waited %v for every delivery to arrive while the first ran; %d of %d did", s.h.Timeout, arrivedAll.Load(), expected)
			}
			return nil
		})
	}
	arrive := func(next gossip.Handler) gossip.Handler {
		return func(ctx context.Context, ev *gossip.Event) error {
			arrivedAll.Add(1)
			c.bump(c.arrived, "key")
			return next(ctx, ev)
		}
	}
	for range 3 {
		b := e.bus()
		mw := middleware.Idempotent(e.claims(b, "concurrent", time.Minute), middleware.IdempotencyOptions{
			Key: func(ev *gossip.Event) string { return ev.Metadata["order"] },
		})
		e.subscribe(b, typ, handler, e.groupOpts("concurrent", gossip.Workers(n), gossip.WithMiddleware(arrive, c.outside, mw))...)
	}
	events := make([]*gossip.Event, n)
	for i := range events {
		events[i] = gossip.NewEvent(typ, i).WithMetadata("order", "o-1")
	}
	e.publish(pub, events...)
	c.wait(t, s.h.Timeout, "every delivery to settle", func() bool {
		settled := 0
		for _, ev := range events {
			settled += c.settled[ev.ID]
		}
		return settled >= expected
	})
	assert.Equal(t, 1, c.get(c.runs, "key"), "one run for the key")
	assert.Equal(t, int32(1), c.mostAtOnce.Load(), "deliveries of one key never ran the handler at the same time")
}

func (s *suite) testIdempotentFailure(t *testing.T) {
	e := s.env(t)
	b := e.bus()
	typ := e.typ("failure")
	c := newCounter()
	boom := errors.New("first attempt fails")
	e.subscribe(b, typ, func(ctx context.Context, ev *gossip.Event) error {
		return c.run(ev.ID, func() error {
			if ev.Attempt() == 1 {
				return boom
			}
			return nil
		})
	}, e.groupOpts("failure", gossip.Workers(1), gossip.MaxDeliveries(5),
		gossip.WithMiddleware(c.outside, middleware.Idempotent(e.claims(b, "failure", time.Minute), middleware.IdempotencyOptions{})))...)
	ev := gossip.NewEvent(typ, "x")
	e.publish(b, ev)
	c.wait(t, s.h.Timeout, "the retry to succeed", func() bool { return c.runs[ev.ID] == 2 })
	for range 5 {
		e.publish(b, ev)
	}
	marker := gossip.NewEvent(typ, "marker")
	e.publish(b, marker)
	c.wait(t, s.h.Timeout, "the marker", func() bool { return c.settled[marker.ID] == 1 })
	assert.Equal(t, 2, c.get(c.runs, ev.ID), "the failed run released the key, the retry ran, later duplicates did not")
}

// ClaimStoreDown checks what middleware.Idempotent does when its store
// cannot be reached: the delivery fails (it is retried, then dead-lettered
// with the store's error), and the handler never runs. store is a store on
// the transport under test; down makes it unreachable (stops the server).
// The events travel on a memory bus of the test's own.
func ClaimStoreDown(t *testing.T, store gossip.ClaimStore, down func()) {
	t.Helper()
	bus, err := gossip.NewEventBus(&gossip.Config{
		Logger: slog.New(slog.DiscardHandler), RetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 20 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, bus.Shutdown(ctx))
	})
	const typ gossip.EventType = "claims.down"
	var ran atomic.Bool
	letters := make(chan *gossip.Event, 1)
	_, err = bus.Subscribe(typ, func(ctx context.Context, e *gossip.Event) error {
		ran.Store(true)
		return nil
	}, gossip.Group("g"), gossip.MaxDeliveries(2), gossip.WithMiddleware(
		middleware.Timeout(time.Second), middleware.Idempotent(store, middleware.IdempotencyOptions{})))
	require.NoError(t, err)
	_, err = bus.Subscribe(gossip.DeadLetterType("g", typ), func(ctx context.Context, e *gossip.Event) error {
		letters <- e
		return nil
	})
	require.NoError(t, err)
	down()
	require.NoError(t, bus.Publish(context.Background(), gossip.NewEvent(typ, 1)))
	letter := waitChan(t, letters, 30*time.Second, "the dead letter")
	info, ok := gossip.DeadLetterInfo(letter)
	require.True(t, ok)
	assert.Equal(t, 2, info.Deliveries, "the delivery failed and was retried")
	assert.Contains(t, info.Error, "claim idempotency key", "the reason names the store")
	assert.False(t, ran.Load(), "the handler never ran without its claim")
}
