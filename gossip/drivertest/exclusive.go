package drivertest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// exclusiveLease is long enough that a loaded machine renews it in time
// (a member that cannot renew for 2/3 of it stands down); handovers on
// leaving do not wait for it. crashedLease is the lease of the crashed
// member in testExclusiveLeaseLapses, short so that it lapses soon.
const (
	exclusiveLease = 3 * time.Second
	crashedLease   = 500 * time.Millisecond
)

// orderLog records which member handled which event, in handling order;
// all holds every event handled, by any member.
type orderLog struct {
	all *sink
	mu  sync.Mutex
	by  map[int][]string // member -> event IDs in handling order
}

func newOrderLog() *orderLog { return &orderLog{all: newSink(), by: map[int][]string{}} }

func (l *orderLog) handler(member int) gossip.Handler {
	return func(ctx context.Context, e *gossip.Event) error {
		l.mu.Lock()
		l.by[member] = append(l.by[member], e.ID)
		l.mu.Unlock()
		l.all.add(e)
		return nil
	}
}

func (l *orderLog) wait(t *testing.T, events []*gossip.Event, timeout time.Duration) {
	t.Helper()
	l.all.waitIDs(t, events, timeout)
}

// handled is what member handled, in order.
func (l *orderLog) handled(member int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.by[member]...)
}

// handledTwice is the events handled more than once.
func (l *orderLog) handledTwice() []string {
	l.all.mu.Lock()
	defer l.all.mu.Unlock()
	var d []string
	for id, n := range l.all.ids {
		if n > 1 {
			d = append(d, id)
		}
	}
	return d
}

func ids(events []*gossip.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// waitActive waits until one of subs is active and returns its index.
func waitActive(t *testing.T, subs []*gossip.Subscription, timeout time.Duration) int {
	t.Helper()
	active := -1
	require.Eventually(t, func() bool {
		for i, s := range subs {
			if s != nil && s.Active() {
				active = i
				return true
			}
		}
		return false
	}, timeout, 10*time.Millisecond, "no member of the group became active")
	return active
}

func (s *suite) testExclusive(t *testing.T) {
	if !s.h.Groups {
		t.Skip("the transport has no consumer groups (Exclusive picks one member of a group)")
	}
	t.Run("OneActiveMemberKeepsOrderAcrossMembers", s.testExclusiveOneActive)
	t.Run("HandoverWhenTheActiveMemberLeaves", s.testExclusiveHandover)
	t.Run("StandbyTakesOverWhenTheLeaseLapses", s.testExclusiveLeaseLapses)
	t.Run("KeyOrderAcrossMembersAndHandover", s.testExclusiveKeyOrder)
	t.Run("NeedsAGroup", func(t *testing.T) {
		e := s.env(t)
		_, err := e.bus().Subscribe(e.typ("x"), newSink().handler, gossip.Exclusive(0))
		require.ErrorIs(t, err, gossip.ErrInvalidOption)
		_, err = e.bus().Subscribe(e.typ("x"), newSink().handler, gossip.Group("g"), gossip.Exclusive(time.Millisecond))
		require.ErrorIs(t, err, gossip.ErrInvalidOption)
	})
}

// exclusiveMembers subscribes n members of one Exclusive group, each on a
// bus of its own (as separate processes would), with Workers(1).
func (e *env) exclusiveMembers(typ gossip.EventType, log *orderLog, n int) ([]*gossip.EventBus, []*gossip.Subscription) {
	buses := make([]*gossip.EventBus, n)
	subs := make([]*gossip.Subscription, n)
	for i := range n {
		buses[i] = e.bus()
		subs[i] = e.subscribe(buses[i], typ, log.handler(i),
			gossip.Group("excl"), gossip.Exclusive(exclusiveLease), gossip.Workers(1))
	}
	return buses, subs
}

func (s *suite) testExclusiveOneActive(t *testing.T) {
	e := s.env(t)
	typ := e.typ("order")
	log := newOrderLog()
	_, subs := e.exclusiveMembers(typ, log, 3)
	// The first member's bid wins before its Subscribe returns; the others
	// find the lease taken.
	require.True(t, subs[0].Active(), "the first member holds the lease once Subscribe returns")
	require.False(t, subs[1].Active())
	require.False(t, subs[2].Active())

	pub := e.bus()
	events := make([]*gossip.Event, 60)
	for i := range events {
		events[i] = gossip.NewEvent(typ, i)
	}
	for _, ev := range events {
		e.publish(pub, ev)
	}
	log.wait(t, events, s.h.Timeout)
	require.Equal(t, ids(events), log.handled(0), "the active member handles every event, in publish order")
	require.Empty(t, log.handled(1), "a standby member handles nothing")
	require.Empty(t, log.handled(2), "a standby member handles nothing")
}

func (s *suite) testExclusiveHandover(t *testing.T) {
	e := s.env(t)
	typ := e.typ("handover")
	log := newOrderLog()
	_, subs := e.exclusiveMembers(typ, log, 3)
	require.True(t, subs[0].Active())
	pub := e.bus()
	first := make([]*gossip.Event, 20)
	for i := range first {
		first[i] = gossip.NewEvent(typ, i)
		e.publish(pub, first[i])
	}
	log.wait(t, first, s.h.Timeout)

	// The active member leaves: it settles what it handled and hands the
	// lease over at once.
	require.NoError(t, subs[0].Unsubscribe())
	waitChan(t, subs[0].Done(), s.h.Timeout, "the leaving member to stop")
	require.False(t, subs[0].Active())
	var during []*gossip.Event
	if s.h.Durable { // events published during the handover wait for the next member
		during = make([]*gossip.Event, 10)
		for i := range during {
			during[i] = gossip.NewEvent(typ, 100+i)
			e.publish(pub, during[i])
		}
	}
	next := waitActive(t, subs[1:], s.h.Timeout) + 1
	after := make([]*gossip.Event, 20)
	for i := range after {
		after[i] = gossip.NewEvent(typ, 200+i)
		e.publish(pub, after[i])
	}
	rest := append(append([]*gossip.Event(nil), during...), after...)
	log.wait(t, rest, s.h.Timeout)
	require.Equal(t, ids(first), log.handled(0), "the first member handled only what came before it left")
	require.Equal(t, ids(rest), log.handled(next), "the member that took over handles the rest, in publish order")
	require.Empty(t, log.handled(3-next), "the remaining standby handles nothing")
	require.Empty(t, log.handledTwice(), "nothing handled twice across the handover")
}

// testExclusiveLeaseLapses plays a member that died holding the lease: its
// claim (the key "<group>/<pattern>" in the claim store "gossip-exclusive")
// is never renewed, and a standby takes over once it lapses.
func (s *suite) testExclusiveLeaseLapses(t *testing.T) {
	e := s.env(t)
	typ := e.typ("lapse")
	b := e.bus()
	if s.h.Durable { // the crashed member had created the group
		sub := e.subscribe(b, typ, newSink().handler, gossip.Group("excl"))
		require.NoError(t, sub.Unsubscribe())
		waitChan(t, sub.Done(), s.h.Timeout, "the group's creator to leave")
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
	defer cancel()
	store, err := b.Claims(ctx, "gossip-exclusive", 24*time.Hour)
	require.NoError(t, err)
	state, err := store.Claim(ctx, "excl/"+string(typ), "a-member-that-crashed", crashedLease)
	require.NoError(t, err)
	require.Equal(t, gossip.Claimed, state)

	log := newOrderLog()
	_, subs := e.exclusiveMembers(typ, log, 1)
	require.False(t, subs[0].Active(), "the lease of the crashed member has not lapsed yet")
	var early []*gossip.Event
	if s.h.Durable {
		early = []*gossip.Event{gossip.NewEvent(typ, 1), gossip.NewEvent(typ, 2)}
		e.publish(b, early...)
	}
	waitActive(t, subs, s.h.Timeout)
	late := []*gossip.Event{gossip.NewEvent(typ, 3)}
	e.publish(b, late...)
	all := append(early, late...)
	log.wait(t, all, s.h.Timeout)
	require.Equal(t, ids(all), log.handled(0))
	// The crashed member's owner can no longer touch the claim.
	require.ErrorIs(t, store.Extend(ctx, "excl/"+string(typ), "a-member-that-crashed", crashedLease), gossip.ErrClaimNotHeld)
}

// testExclusiveKeyOrder is the way to keep per-key order with several
// members of a group: Exclusive with OrderedByKey. Three members, 50 keys ×
// 10 events; the active member leaves halfway. Every key's events are
// handled in publish order, by one member at a time, across the handover.
func (s *suite) testExclusiveKeyOrder(t *testing.T) {
	const keys, each, workers = 50, 10, 8
	e := s.env(t)
	typ := e.typ("keyed")
	l := newKeyLog()
	handledBy := make([]atomic.Int64, 3)
	subs := make([]*gossip.Subscription, 3)
	strict := s.h.HandbackInOrder || !s.h.Durable
	for i := range subs {
		b := e.bus(func(c *gossip.Config) {
			c.BufferSize = keys * each
			if !strict { // what comes back only after AckWait comes soon
				c.AckWait = time.Second
			}
		})
		subs[i] = e.subscribe(b, typ, func(ctx context.Context, ev *gossip.Event) error {
			var seq int
			if err := ev.Decode(&seq); err != nil {
				return gossip.Permanent(err)
			}
			l.enter(ev.Key())
			handledBy[i].Add(1)
			l.leave(ev.Key(), seq, true)
			return nil
		}, gossip.Group("excl"), gossip.Exclusive(exclusiveLease), gossip.OrderedByKey(), gossip.Workers(workers))
	}
	require.True(t, subs[0].Active())
	pub := e.bus()
	round := func(seq int) {
		batch := make([]*gossip.Event, 0, keys)
		for k := range keys {
			batch = append(batch, gossip.NewEvent(typ, seq).WithKey(fmt.Sprintf("k%d", k)))
		}
		e.publish(pub, batch...)
	}
	for seq := range each / 2 {
		round(seq)
	}
	// The active member leaves once it handled the first round, while later
	// events are in flight or queued: it finishes what runs, hands back what
	// waits, then the lease.
	l.wait(t, keys, s.h.Timeout)
	require.NoError(t, subs[0].Unsubscribe())
	waitChan(t, subs[0].Done(), s.h.Timeout, "the leaving member to stop")
	if !s.h.Durable { // nothing holds events while no member is active
		waitActive(t, subs[1:], s.h.Timeout)
	}
	for seq := each / 2; seq < each; seq++ {
		round(seq)
	}
	if s.h.Durable {
		waitActive(t, subs[1:], s.h.Timeout)
	}
	handledFirst := handledBy[0].Load()
	want := make([]int, 0, each)
	for seq := range each {
		want = append(want, seq)
	}
	if strict {
		l.wait(t, keys*each-(keys*each/2-handledFirst)*boolInt(!s.h.Durable), 4*s.h.Timeout)
	} else {
		l.waitAll(t, keys, want, 4*s.h.Timeout)
	}
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		got := l.handled(key)
		switch {
		case !s.h.Durable:
			require.IsIncreasing(t, got, "key %s: handled out of publish order", key)
		case strict:
			require.Equal(t, want, got, "key %s: handled out of publish order across the handover", key)
		default: // every event, perhaps out of order or twice around the handover
			require.Subset(t, got, want, "key %s: an event was lost in the handover", key)
		}
	}
	assert.Empty(t, l.overlaps, "events of one key ran at once")
	assert.Positive(t, handledFirst, "the first member handled events before it left")
	assert.True(t, handledBy[1].Load() == 0 || handledBy[2].Load() == 0, "one member took over, not both")
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
