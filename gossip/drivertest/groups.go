package drivertest

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

func (s *suite) testSubscribeIsLive(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	for i := range 10 {
		k := newSink()
		typ := e.typ("live" + strconv.Itoa(i))
		e.subscribe(sub, typ, k.handler, e.groupOpts("live")...)
		e.publish(pub, gossip.NewEvent(typ, i)) // at once, no wait
		k.waitDistinct(t, 1, s.h.Timeout)
	}
}

func (s *suite) testBroadcastStartsNow(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	before := gossip.NewEvent(e.typ("now"), "before")
	e.publish(pub, before)
	pub = s.sent(t, e, pub)
	k := newSink()
	e.subscribe(sub, e.typ("now"), k.handler, gossip.Workers(1))
	after := gossip.NewEvent(e.typ("now"), "after")
	e.publish(pub, after)
	got := k.waitDistinct(t, 1, s.h.Timeout)
	assert.Equal(t, after.ID, got[0].ID, "a broadcast listener sees events from Subscribe on, not before")
	// Publish a marker and wait for it: "before" had every chance to arrive.
	marker := gossip.NewEvent(e.typ("now"), "marker")
	e.publish(pub, marker)
	got = k.waitDistinct(t, 2, s.h.Timeout)
	for _, ev := range got {
		assert.NotEqual(t, before.ID, ev.ID, "event published before Subscribe was delivered")
	}
}

// sent makes sure the transport has what pub published before the test
// goes on: where Publish may return while events are still queued in the
// publisher's client, Shutdown sends them, and a new bus publishes from
// then on.
func (s *suite) sent(t *testing.T, e *env, pub *gossip.EventBus) *gossip.EventBus {
	if !s.h.QueuedPublish {
		return pub
	}
	require.NoError(t, pub.Shutdown(context.Background()), "Shutdown")
	return e.bus()
}

func (s *suite) testBroadcastFanOut(t *testing.T) {
	e := s.env(t)
	pub := e.bus()
	const n = 50
	sinks := []*sink{newSink(), newSink(), newSink()}
	for _, k := range sinks {
		e.subscribe(e.bus(), e.typ("fan"), k.handler)
	}
	for i := range n {
		e.publish(pub, gossip.NewEvent(e.typ("fan"), i))
	}
	for _, k := range sinks {
		k.waitDistinct(t, n, s.h.Timeout)
	}
}

func (s *suite) testFanOutGroups(t *testing.T) {
	if !s.h.Groups {
		t.Skip("transport has no groups; broadcast fan-out is BroadcastListenersEachGetAll")
	}
	e := s.env(t)
	pub := e.bus()
	const n = 50
	a, b := newSink(), newSink()
	e.subscribe(e.bus(), e.typ("fan"), a.handler, gossip.Group("ga"))
	e.subscribe(e.bus(), e.typ("fan"), b.handler, gossip.Group("gb"))
	for i := range n {
		e.publish(pub, gossip.NewEvent(e.typ("fan"), i))
	}
	a.waitDistinct(t, n, s.h.Timeout)
	b.waitDistinct(t, n, s.h.Timeout)
}

func (s *suite) testCompetingConsumers(t *testing.T) {
	if !s.h.Groups {
		t.Skip("transport has no groups")
	}
	e := s.env(t)
	pub := e.bus()
	const n = 300
	all := newSink()
	var perMember [3]atomic.Int64
	for i := range perMember {
		e.subscribe(e.bus(), e.typ("work"), func(ctx context.Context, ev *gossip.Event) error {
			perMember[i].Add(1)
			return all.handler(ctx, ev)
		}, gossip.Group("workers"), gossip.Workers(2))
	}
	events := make([]*gossip.Event, n)
	for i := range events {
		events[i] = gossip.NewEvent(e.typ("work"), i)
	}
	// One batch at a time, each handled before the next goes out: a member
	// whose reader started first may take a whole batch (Redis hands a
	// blocked XREADGROUP everything there is), but not all of them while
	// the others wait.
	for i := 0; i < n; i += 50 {
		e.publish(pub, events[i:i+50]...)
		all.waitDistinct(t, i+50, s.h.Timeout)
	}
	// A marker through the same group: once it is in, duplicates would be too.
	marker := gossip.NewEvent(e.typ("work"), "marker")
	e.publish(pub, marker)
	all.waitDistinct(t, n+1, s.h.Timeout)
	assert.Equal(t, n+1, all.count(), "each event handled exactly once by the group")
	var sum int64
	busy := 0
	for i := range perMember {
		sum += perMember[i].Load()
		if perMember[i].Load() > 0 {
			busy++
		}
	}
	assert.Equal(t, int64(n+1), sum)
	assert.GreaterOrEqual(t, busy, 2, "the work was shared among members")
}

func (s *suite) testMemberLeaves(t *testing.T) {
	if !s.h.Groups {
		t.Skip("transport has no groups")
	}
	e := s.env(t)
	pub := e.bus()
	a, b, both := newSink(), newSink(), newSink()
	into := func(k *sink) gossip.Handler {
		return func(ctx context.Context, ev *gossip.Event) error {
			k.add(ev)
			both.add(ev)
			return nil
		}
	}
	subA := e.subscribe(e.bus(), e.typ("leave"), into(a), gossip.Group("g"))
	e.subscribe(e.bus(), e.typ("leave"), into(b), gossip.Group("g"))
	for i := range 20 {
		e.publish(pub, gossip.NewEvent(e.typ("leave"), i))
	}
	both.waitDistinct(t, 20, s.h.Timeout)
	require.NoError(t, subA.Unsubscribe())
	waitChan(t, subA.Done(), s.h.Timeout, "the member's handlers to stop")
	before := a.count()
	var second []*gossip.Event
	for i := range 20 {
		ev := gossip.NewEvent(e.typ("leave"), 100+i)
		second = append(second, ev)
		e.publish(pub, ev)
	}
	b.waitIDs(t, second, s.h.Timeout) // every event of the second batch reaches the member that stayed
	assert.Equal(t, before, a.count(), "a member that left handled nothing more")
}

func (s *suite) testGroupsUnsupported(t *testing.T) {
	if s.h.Groups {
		t.Skip("transport has groups: Subscribe with Group works, there is no error to check")
	}
	e := s.env(t)
	_, err := e.bus().Subscribe(e.typ("g"), newSink().handler, gossip.Group("g"))
	require.ErrorIs(t, err, gossip.ErrGroupsUnsupported)
}

func (s *suite) testDurableCatchUp(t *testing.T) {
	if !s.h.Durable {
		t.Skip("transport is not durable: a group away misses events (SPEC)")
	}
	e := s.env(t)
	pub := e.bus()
	first := newSink()
	away := e.bus()
	e.subscribe(away, e.typ("durable"), first.handler, gossip.Group("g"))
	e.publish(pub, gossip.NewEvent(e.typ("durable"), "while-here"))
	first.waitDistinct(t, 1, s.h.Timeout)
	require.NoError(t, away.Shutdown(context.Background()))

	var missed []*gossip.Event
	for i := range 25 {
		missed = append(missed, gossip.NewEvent(e.typ("durable"), i))
	}
	e.publish(pub, missed...)

	back := newSink()
	e.subscribe(e.bus(), e.typ("durable"), back.handler, gossip.Group("g"))
	got := back.waitDistinct(t, len(missed), s.h.Timeout)
	ids := map[string]bool{}
	for _, ev := range got {
		ids[ev.ID] = true
	}
	for _, ev := range missed {
		assert.True(t, ids[ev.ID], "missed event %s reached the group on return", ev.ID)
	}
}

func (s *suite) testNewGroupStartsNew(t *testing.T) {
	if !s.h.Groups {
		t.Skip("transport has no groups")
	}
	e := s.env(t)
	pub := e.bus()
	old := gossip.NewEvent(e.typ("start"), "old")
	e.publish(pub, old)
	pub = s.sent(t, e, pub) // "old" is on the transport before the group exists
	k := newSink()
	e.subscribe(e.bus(), e.typ("start"), k.handler, gossip.Group("fresh"), gossip.Workers(1))
	newer := gossip.NewEvent(e.typ("start"), "new")
	e.publish(pub, newer)
	marker := gossip.NewEvent(e.typ("start"), "marker")
	e.publish(pub, marker)
	got := k.waitDistinct(t, 2, s.h.Timeout)
	for _, ev := range got {
		assert.NotEqual(t, old.ID, ev.ID, "a new group starts with events published after it was created")
	}
}

func (s *suite) testFromOldest(t *testing.T) {
	if !s.h.Durable {
		t.Skip("transport holds no events for later")
	}
	e := s.env(t)
	pub := e.bus()
	old := gossip.NewEvent(e.typ("oldest"), "old")
	e.publish(pub, old)
	k := newSink()
	e.subscribe(e.bus(), e.typ("oldest"), k.handler, gossip.Group("replay"), gossip.FromOldest())
	got := k.waitDistinct(t, 1, s.h.Timeout)
	assert.Equal(t, old.ID, got[0].ID)
}

func (s *suite) testAckedNotRedelivered(t *testing.T) {
	if !s.h.Durable {
		t.Skip("transport keeps nothing to redeliver")
	}
	e := s.env(t)
	pub := e.bus()
	first := newSink()
	b1 := e.bus()
	e.subscribe(b1, e.typ("acked"), first.handler, gossip.Group("g"))
	for i := range 10 {
		e.publish(pub, gossip.NewEvent(e.typ("acked"), i))
	}
	first.waitDistinct(t, 10, s.h.Timeout)
	require.NoError(t, b1.Shutdown(context.Background()))

	second := newSink()
	e.subscribe(e.bus(), e.typ("acked"), second.handler, gossip.Group("g"), gossip.Workers(1))
	marker := gossip.NewEvent(e.typ("acked"), "marker")
	e.publish(pub, marker)
	got := second.waitDistinct(t, 1, s.h.Timeout)
	assert.Equal(t, marker.ID, got[0].ID, "an event acked before shutdown came back")
	assert.Equal(t, 1, second.count())
}
