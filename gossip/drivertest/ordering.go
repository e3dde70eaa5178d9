package drivertest

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
)

// keyLog records, per ordering key, the sequence numbers handled, and
// whether two events of one key ever ran at once.
type keyLog struct {
	mu       sync.Mutex
	seqs     map[string][]int
	running  map[string]bool
	overlaps []string
	inFlight atomic.Int32
	maxIn    atomic.Int32
	total    atomic.Int64
	signal   chan struct{}
}

func newKeyLog() *keyLog {
	return &keyLog{seqs: map[string][]int{}, running: map[string]bool{}, signal: make(chan struct{}, 1)}
}

// enter marks an event of key as running; leave(seq) ends it and, when ok,
// records seq as handled.
func (l *keyLog) enter(key string) {
	n := l.inFlight.Add(1)
	for m := l.maxIn.Load(); n > m && !l.maxIn.CompareAndSwap(m, n); m = l.maxIn.Load() {
	}
	l.mu.Lock()
	if l.running[key] {
		l.overlaps = append(l.overlaps, key)
	}
	l.running[key] = true
	l.mu.Unlock()
}

func (l *keyLog) leave(key string, seq int, ok bool) {
	l.mu.Lock()
	l.running[key] = false
	if ok {
		l.seqs[key] = append(l.seqs[key], seq)
	}
	l.mu.Unlock()
	l.inFlight.Add(-1)
	if ok {
		l.total.Add(1)
		select {
		case l.signal <- struct{}{}:
		default:
		}
	}
}

func (l *keyLog) wait(t *testing.T, n int64, timeout time.Duration) {
	t.Helper()
	waitUntil(t, l.signal, timeout, func() bool { return l.total.Load() >= n },
		func() string { return fmt.Sprintf("for %d handled events, have %d", n, l.total.Load()) })
}

// waitAll waits until every key k0..k(keys-1) had every seq of want
// handled.
func (l *keyLog) waitAll(t *testing.T, keys int, want []int, timeout time.Duration) {
	t.Helper()
	missing := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		n := 0
		for k := range keys {
			seen := map[int]bool{}
			for _, seq := range l.seqs[fmt.Sprintf("k%d", k)] {
				seen[seq] = true
			}
			for _, seq := range want {
				if !seen[seq] {
					n++
				}
			}
		}
		return n
	}
	waitUntil(t, l.signal, timeout, func() bool { return missing() == 0 },
		func() string { return fmt.Sprintf("%d keyed events not handled", missing()) })
}

func (l *keyLog) handled(key string) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.seqs[key]...)
}

// Events of one key run one at a time in publish order; events of
// different keys run at once on the subscription's workers.
func (s *suite) testKeyOrder(t *testing.T) {
	const keys, each, workers = 1000, 20, 8
	e := s.env(t)
	big := func(c *gossip.Config) { c.BufferSize = keys * each } // an at-most-once transport must not drop
	pub, sub := e.bus(big), e.bus(big)
	typ := e.typ("keyed")
	l := newKeyLog()
	// The first events of two keys wait for each other: the test stops
	// unless different keys really run at once.
	both := make(chan struct{})
	var meeting atomic.Int32
	var serial atomic.Bool
	e.subscribe(sub, typ, func(ctx context.Context, ev *gossip.Event) error {
		var seq int
		if err := ev.Decode(&seq); err != nil {
			return gossip.Permanent(err)
		}
		key := ev.Key()
		l.enter(key)
		if seq == 0 && (key == "k0" || key == "k1") {
			if meeting.Add(1) == 2 {
				close(both)
			}
			select {
			case <-both:
			case <-time.After(s.h.Timeout):
				serial.Store(true)
			}
		}
		l.leave(key, seq, true)
		return nil
	}, e.groupOpts("keyed", gossip.Workers(workers), gossip.OrderedByKey(), gossip.MaxDeliveries(1))...)

	batch := make([]*gossip.Event, 0, keys)
	for seq := range each {
		for k := range keys {
			batch = append(batch, gossip.NewEvent(typ, seq).WithKey(fmt.Sprintf("k%d", k)))
		}
		e.publish(pub, batch...)
		batch = batch[:0]
	}
	l.wait(t, keys*each, 4*s.h.Timeout)
	want := make([]int, each)
	for i := range want {
		want[i] = i
	}
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		require.Equal(t, want, l.handled(key), "key %s: handled out of publish order", key)
	}
	assert.Empty(t, l.overlaps, "events of one key ran at once")
	assert.False(t, serial.Load(), "the first events of keys k0 and k1 never ran at once")
	assert.Greater(t, l.maxIn.Load(), int32(1), "events of different keys ran in parallel")
}

// A failing event of a key is retried before the later events of its key
// run, while the events of other keys flow.
func (s *suite) testKeyRetryBlocksOnlyItsKey(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	typ := e.typ("keyretry")
	l := newKeyLog()
	var others atomic.Int32
	const otherEvents = 10
	var failures atomic.Int32
	e.subscribe(sub, typ, func(ctx context.Context, ev *gossip.Event) error {
		var seq int
		if err := ev.Decode(&seq); err != nil {
			return gossip.Permanent(err)
		}
		key := ev.Key()
		l.enter(key)
		// The head of key a fails at least once, and until every event of
		// key b was handled: b must flow while a waits. (A worker may be
		// descheduled before it starts a's head while b's events all run.)
		if key == "a" && seq == 0 && (failures.Load() == 0 || others.Load() < otherEvents) {
			failures.Add(1)
			l.leave(key, seq, false)
			return errors.New("not yet")
		}
		if key == "b" {
			others.Add(1)
		}
		l.leave(key, seq, true)
		return nil
	}, e.groupOpts("keyretry", gossip.Workers(4), gossip.OrderedByKey(), gossip.MaxDeliveries(1000))...)

	var events []*gossip.Event
	for seq := range 3 {
		events = append(events, gossip.NewEvent(typ, seq).WithKey("a"))
	}
	for seq := range otherEvents {
		events = append(events, gossip.NewEvent(typ, seq).WithKey("b"))
	}
	e.publish(pub, events...)
	l.wait(t, 3+otherEvents, s.h.Timeout)
	assert.Equal(t, []int{0, 1, 2}, l.handled("a"), "key a: its later events waited for the retried head")
	assert.Len(t, l.handled("b"), otherEvents)
	assert.Positive(t, failures.Load(), "the head of key a failed at least once")
	assert.Empty(t, l.overlaps, "events of one key ran at once")
}

// A dead letter releases its key: the events behind it run, in order.
func (s *suite) testKeyDeadLetterReleases(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	typ := e.typ("keydl")
	dl := e.deadLetters(pub, e.group("keydl"), typ)
	l := newKeyLog()
	var attempts atomic.Int32
	e.subscribe(sub, typ, func(ctx context.Context, ev *gossip.Event) error {
		var seq int
		if err := ev.Decode(&seq); err != nil {
			return gossip.Permanent(err)
		}
		key := ev.Key()
		l.enter(key)
		switch {
		case seq == 0: // exhausts MaxDeliveries
			attempts.Add(1)
			l.leave(key, seq, false)
			return errors.New("always fails")
		case seq == 2: // permanent at once
			l.leave(key, seq, false)
			return gossip.Permanent(errors.New("bad input"))
		}
		l.leave(key, seq, true)
		return nil
	}, e.groupOpts("keydl", gossip.Workers(4), gossip.OrderedByKey(), gossip.MaxDeliveries(3))...)

	var events []*gossip.Event
	for seq := range 5 {
		events = append(events, gossip.NewEvent(typ, seq).WithKey("a"))
	}
	e.publish(pub, events...)
	l.wait(t, 3, s.h.Timeout)
	letters := dl.waitDistinct(t, 2, s.h.Timeout)
	assert.Equal(t, []int{1, 3, 4}, l.handled("a"), "the events behind a dead letter run, in order")
	assert.Equal(t, int32(3), attempts.Load(), "the head had its three attempts first")
	ids := map[string]bool{letters[0].ID: true, letters[1].ID: true}
	assert.True(t, ids[events[0].ID] && ids[events[2].ID], "both failures were dead-lettered")
	assert.Empty(t, l.overlaps, "events of one key ran at once")
}

// Events a handler publishes with its ctx carry the handled event's
// correlation and its ID as their cause: A → B → C gives C correlation A.ID
// and causation B.ID. Values set by the publisher stay.
func (s *suite) testCorrelationFollowsChain(t *testing.T) {
	e := s.env(t)
	bus := e.bus()
	k := newSink()
	tA, tB, tC, tOwn := e.typ("corr.a"), e.typ("corr.b"), e.typ("corr.c"), e.typ("corr.own")
	var b atomic.Pointer[gossip.Event]
	e.subscribe(bus, tA, func(ctx context.Context, ev *gossip.Event) error {
		next := gossip.NewEvent(tB, 1)
		b.Store(next)
		own := gossip.NewEvent(tOwn, 1).WithMetadata(gossip.MetaCorrelationID, "mine").WithMetadata(gossip.MetaCausationID, "theirs")
		return bus.Publish(ctx, next, own)
	}, e.groupOpts("corr")...)
	e.subscribe(bus, tB, func(ctx context.Context, ev *gossip.Event) error {
		k.add(ev)
		return bus.Publish(ctx, gossip.NewEvent(tC, 2))
	}, e.groupOpts("corr")...)
	e.subscribe(bus, tC, k.handler, e.groupOpts("corr")...)
	e.subscribe(bus, tOwn, k.handler, e.groupOpts("corr")...)

	a := gossip.NewEvent(tA, 0)
	e.publish(bus, a)
	got := map[gossip.EventType]*gossip.Event{}
	for _, ev := range k.waitDistinct(t, 3, s.h.Timeout) {
		got[ev.Type] = ev
	}
	require.Len(t, got, 3)
	assert.Equal(t, a.ID, a.CorrelationID(), "the first event is its own correlation")
	assert.Empty(t, a.CausationID(), "and has no cause")
	assert.Equal(t, b.Load().ID, got[tB].ID)
	assert.Equal(t, a.ID, got[tB].Metadata[gossip.MetaCorrelationID], "B: A's correlation")
	assert.Equal(t, a.ID, got[tB].Metadata[gossip.MetaCausationID], "B: caused by A")
	assert.Equal(t, a.ID, got[tC].CorrelationID(), "C: still A's correlation")
	assert.Equal(t, got[tB].ID, got[tC].CausationID(), "C: caused by B")
	assert.Equal(t, "mine", got[tOwn].CorrelationID(), "a publisher's own correlation stays")
	assert.Equal(t, "theirs", got[tOwn].CausationID(), "and its own causation")
}
