package drivertest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gossipbus/gossip/gossip"
)

// Payload is the typed payload the suite sends.
type Payload struct {
	Name    string            `json:"name"`
	Count   int64             `json:"count"`
	Tags    []string          `json:"tags"`
	Nested  map[string]string `json:"nested"`
	Unicode string            `json:"unicode"`
}

func samplePayload(i int) Payload {
	return Payload{
		Name:    "event-" + strconv.Itoa(i),
		Count:   1<<62 + int64(i), // beyond float64 precision: must survive as int64
		Tags:    []string{"a", "b"},
		Nested:  map[string]string{"k": "v"},
		Unicode: "héllo, 世界 ✓",
	}
}

func (s *suite) testTypedPayload(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	got := make(chan Payload, 1)
	e.subscribe(sub, e.typ("typed"), gossip.Typed(func(ctx context.Context, ev *gossip.Event, p Payload) error {
		got <- p
		return nil
	}))
	want := samplePayload(7)
	e.publish(pub, gossip.NewEvent(e.typ("typed"), want))
	assert.Equal(t, want, waitChan(t, got, s.h.Timeout, "typed payload"))
}

// A subscriber may decode into its own shape of the data: a map, or a struct
// of its own with a subset of the fields, on every transport alike.
func (s *suite) testDecodeOtherShapes(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	type subset struct {
		Name  string `json:"name"`
		Count int64  `json:"count"`
	}
	gotSubset := make(chan subset, 1)
	gotMap := make(chan map[string]any, 1)
	e.subscribe(sub, e.typ("shapes"), gossip.Typed(func(ctx context.Context, ev *gossip.Event, v subset) error {
		gotSubset <- v
		return nil
	}))
	e.subscribe(sub, e.typ("shapes"), func(ctx context.Context, ev *gossip.Event) error {
		var m map[string]any
		if err := ev.Decode(&m); err != nil {
			return gossip.Permanent(err)
		}
		gotMap <- m
		return nil
	})
	p := samplePayload(1)
	e.publish(pub, gossip.NewEvent(e.typ("shapes"), &p))
	assert.Equal(t, subset{Name: p.Name, Count: p.Count}, waitChan(t, gotSubset, s.h.Timeout, "subset"))
	m := waitChan(t, gotMap, s.h.Timeout, "map")
	assert.Equal(t, p.Name, m["name"])
	assert.Equal(t, p.Unicode, m["unicode"])
}

func (s *suite) testTypedPointer(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	got := make(chan *Payload, 1)
	e.subscribe(sub, e.typ("ptr"), gossip.Typed(func(ctx context.Context, ev *gossip.Event, p *Payload) error {
		got <- p
		return nil
	}))
	want := samplePayload(3)
	e.publish(pub, gossip.NewEvent(e.typ("ptr"), want)) // a value in, a pointer asked for
	p := waitChan(t, got, s.h.Timeout, "pointer payload")
	require.NotNil(t, p)
	assert.Equal(t, want, *p)
}

func (s *suite) testAttributes(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(func(c *gossip.Config) {}), e.bus()
	k := newSink()
	e.subscribe(sub, e.typ("attrs"), k.handler)
	ev := gossip.NewEvent(e.typ("attrs"), "x")
	e.publish(pub, ev)
	got := k.waitDistinct(t, 1, s.h.Timeout)[0]
	assert.Equal(t, ev.ID, got.ID)
	assert.Equal(t, ev.Type, got.Type)
	assert.Equal(t, "drivertest", got.Source, "Source filled from Config.Source")
	assert.WithinDuration(t, ev.Timestamp, got.Timestamp, time.Millisecond, "Timestamp kept (to the millisecond at least)")
	assert.Equal(t, 1, got.Attempt())
	var str string
	require.NoError(t, got.Decode(&str))
	assert.Equal(t, "x", str)
}

func (s *suite) testMetadata(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	// One handler of the event changes its metadata with WithMetadata while
	// another waits; the other must not see the change, nor must the
	// publisher's event.
	wrote := make(chan struct{})
	var once sync.Once
	e.subscribe(sub, e.typ("meta"), func(ctx context.Context, ev *gossip.Event) error {
		ev.WithMetadata("simple", "changed by another handler").WithMetadata("added", "by another handler")
		once.Do(func() { close(wrote) })
		return nil
	})
	seen := make(chan map[string]string, 1)
	e.subscribe(sub, e.typ("meta"), func(ctx context.Context, ev *gossip.Event) error {
		select {
		case <-wrote:
		case <-time.After(s.h.Timeout):
			return gossip.Permanent(errors.New("the other handler never ran"))
		}
		seen <- maps.Clone(ev.Metadata) // read only after the other handler wrote
		return nil
	}, gossip.Workers(1))
	meta := map[string]string{
		"simple":          "value",
		"Mixed-Case":      "Keeps Case",
		"with space":      "  padded  ",
		"ünïcode-ключ":    "unicode ✓ 世界",
		"colon:inside":    "a:b",
		"dot.key":         "",
		"percent":         "%41 stays %41",
		"multi-line":      "line1\r\nline2",
		"long":            strings.Repeat("x", 2000),
		"traceparent-ish": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}
	ev := gossip.NewEvent(e.typ("meta"), nil)
	for k, v := range meta {
		ev.WithMetadata(k, v)
	}
	e.publish(pub, ev)
	got := waitChan(t, seen, s.h.Timeout, "the event's metadata")
	for k, v := range meta {
		assert.Equal(t, v, got[k], "metadata %q", k)
	}
	assert.Equal(t, "", got["added"], "WithMetadata in one handler changed what another handler sees")
	assert.Equal(t, "value", ev.Metadata["simple"], "WithMetadata in a handler changed the publisher's event")
	assert.Equal(t, "", ev.Metadata["added"], "WithMetadata in a handler changed the publisher's event")
}

// Publishing a *Event, changing its metadata with WithMetadata and
// publishing it again does not change what the handler of the first
// delivery sees (and, under -race, is no data race).
func (s *suite) testRepublishedMetadata(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	typ := e.typ("republish")
	entered := make(chan struct{}, 1)
	republished := make(chan struct{})
	seen := make(chan map[string]string, 1)
	var calls atomic.Int64
	e.subscribe(sub, typ, func(ctx context.Context, ev *gossip.Event) error {
		if calls.Add(1) != 1 {
			return nil // the second publish (JetStream may drop it as a duplicate ID)
		}
		entered <- struct{}{}
		select { // read the metadata only once the event was changed and sent again
		case <-republished:
		case <-time.After(s.h.Timeout):
		}
		seen <- maps.Clone(ev.Metadata)
		return nil
	}, gossip.Workers(1))
	ev := gossip.NewEvent(typ, "same pointer").WithMetadata("k", "first")
	e.publish(pub, ev)
	waitChan(t, entered, s.h.Timeout, "the first delivery's handler")
	ev.WithMetadata("k", "second").WithMetadata("added", "later")
	e.publish(pub, ev)
	close(republished)
	got := waitChan(t, seen, s.h.Timeout, "the first delivery's metadata")
	assert.Equal(t, "first", got["k"], "a handler saw metadata changed after its event was published")
	assert.Equal(t, "", got["added"], "a handler saw metadata added after its event was published")
}

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
	for i := 0; i < n; i += 50 {
		e.publish(pub, events[i:i+50]...)
	}
	all.waitDistinct(t, n, s.h.Timeout)
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

func (s *suite) testWildcardStar(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	k := newSink()
	e.subscribe(sub, gossip.EventType(e.prefix+".order.*.created"), k.handler, e.groupOpts("w")...)
	match1 := gossip.NewEvent(e.typ("order.eu.created"), 1)
	match2 := gossip.NewEvent(e.typ("order.us.created"), 2)
	e.publish(pub,
		gossip.NewEvent(e.typ("order.eu.deleted"), 0),
		gossip.NewEvent(e.typ("order.eu.west.created"), 0),
		gossip.NewEvent(e.typ("order.created"), 0),
		match1, match2)
	marker := gossip.NewEvent(e.typ("order.marker.created"), 3)
	e.publish(pub, marker)
	got := k.waitDistinct(t, 3, s.h.Timeout)
	ids := map[string]bool{}
	for _, ev := range got {
		ids[ev.ID] = true
	}
	assert.True(t, ids[match1.ID] && ids[match2.ID] && ids[marker.ID], "matching types delivered")
	assert.Len(t, ids, 3, "non-matching types not delivered")
}

func (s *suite) testWildcardRest(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	k := newSink()
	e.subscribe(sub, gossip.EventType(e.prefix+".audit.>"), k.handler, e.groupOpts("w")...)
	want := []*gossip.Event{
		gossip.NewEvent(e.typ("audit.a"), 1),
		gossip.NewEvent(e.typ("audit.a.b.c"), 2),
	}
	e.publish(pub, gossip.NewEvent(e.typ("audit"), 0), gossip.NewEvent(e.typ("auditx.a"), 0))
	e.publish(pub, want...)
	// A type first seen after Subscribe is found too.
	late := gossip.NewEvent(e.typ("audit.late.new"), 3)
	e.publish(pub, late)
	got := k.waitDistinct(t, 3, s.h.Timeout)
	ids := map[string]bool{}
	for _, ev := range got {
		ids[ev.ID] = true
	}
	assert.True(t, ids[want[0].ID] && ids[want[1].ID] && ids[late.ID])
	assert.Len(t, ids, 3)
}

func (s *suite) testTopicIsolation(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	a, b := newSink(), newSink()
	e.subscribe(sub, e.typ("iso.a"), a.handler)
	e.subscribe(sub, e.typ("iso.b"), b.handler)
	for i := range 10 {
		e.publish(pub, gossip.NewEvent(e.typ("iso.a"), i), gossip.NewEvent(e.typ("iso.b"), i))
	}
	for _, ev := range a.waitDistinct(t, 10, s.h.Timeout) {
		assert.Equal(t, e.typ("iso.a"), ev.Type)
	}
	for _, ev := range b.waitDistinct(t, 10, s.h.Timeout) {
		assert.Equal(t, e.typ("iso.b"), ev.Type)
	}
	// Markers on each side prove nothing more crossed over.
	e.publish(pub, gossip.NewEvent(e.typ("iso.a"), 99), gossip.NewEvent(e.typ("iso.b"), 99))
	a.waitDistinct(t, 11, s.h.Timeout)
	b.waitDistinct(t, 11, s.h.Timeout)
	assert.Equal(t, 11, a.count())
	assert.Equal(t, 11, b.count())
}

func (s *suite) testOrdering(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	const n = 200
	k := newSink()
	e.subscribe(sub, e.typ("order"), k.handler, e.groupOpts("ordered", gossip.Workers(1))...)
	for i := range n {
		e.publish(pub, gossip.NewEvent(e.typ("order"), i))
	}
	got := k.waitDistinct(t, n, s.h.Timeout)
	for i, ev := range got[:n] {
		var v int
		require.NoError(t, ev.Decode(&v))
		require.Equal(t, i, v, "event %d out of order", i)
	}
}

func (s *suite) testWorkersConcurrent(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	const workers = 4
	var inside atomic.Int32
	all := make(chan struct{})
	var once sync.Once
	e.subscribe(sub, e.typ("conc"), func(ctx context.Context, ev *gossip.Event) error {
		if inside.Add(1) == workers {
			once.Do(func() { close(all) })
		}
		select { // each handler holds its worker until all are busy at once
		case <-all:
			return nil
		case <-time.After(s.h.Timeout):
			return errors.New("not all workers ran at once")
		}
	}, e.groupOpts("conc", gossip.Workers(workers))...)
	for i := range workers {
		e.publish(pub, gossip.NewEvent(e.typ("conc"), i))
	}
	waitChan(t, all, s.h.Timeout, "Workers(4) to run 4 handlers at once")
}

// flaky returns a handler failing (or panicking) on the first fails
// attempts of each event, and a sink of the successes.
func flaky(fails int, panics bool) (gossip.Handler, *sink, *atomic.Int64) {
	k := newSink()
	var calls atomic.Int64
	return func(ctx context.Context, ev *gossip.Event) error {
		calls.Add(1)
		if ev.Attempt() <= fails {
			if panics {
				panic("boom on attempt " + strconv.Itoa(ev.Attempt()))
			}
			return fmt.Errorf("fail on attempt %d", ev.Attempt())
		}
		k.add(ev)
		return nil
	}, k, &calls
}

func (s *suite) testRedeliveryAfterError(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	h, k, calls := flaky(2, false)
	e.subscribe(sub, e.typ("retry"), h, e.groupOpts("retry", gossip.MaxDeliveries(5))...)
	ev := gossip.NewEvent(e.typ("retry"), samplePayload(1))
	e.publish(pub, ev)
	got := k.waitDistinct(t, 1, s.h.Timeout)[0]
	assert.Equal(t, ev.ID, got.ID)
	assert.Equal(t, 3, got.Attempt(), "succeeded on the third delivery")
	var p Payload
	require.NoError(t, got.Decode(&p))
	assert.Equal(t, samplePayload(1), p, "a redelivery carries the same data")
	assert.Equal(t, int64(3), calls.Load())
}

func (s *suite) testRedeliveryAfterPanic(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	h, k, calls := flaky(1, true)
	e.subscribe(sub, e.typ("panic"), h, e.groupOpts("panic")...)
	ev := gossip.NewEvent(e.typ("panic"), 1)
	e.publish(pub, ev)
	got := k.waitDistinct(t, 1, s.h.Timeout)[0]
	assert.Equal(t, 2, got.Attempt(), "a panic is a failure, never an ack")
	assert.Equal(t, int64(2), calls.Load())
}

// deadLetters subscribes to the dead letters of (group, typ).
func (e *env) deadLetters(b *gossip.EventBus, group string, typ gossip.EventType) *sink {
	k := newSink()
	e.subscribe(b, gossip.DeadLetterType(group, typ), k.handler)
	return k
}

func (s *suite) testMaxDeliveries(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	typ := e.typ("dlq")
	dl := e.deadLetters(pub, e.group("dlq"), typ)
	var calls atomic.Int64
	e.subscribe(sub, typ, func(ctx context.Context, ev *gossip.Event) error {
		calls.Add(1)
		return errors.New("always fails")
	}, e.groupOpts("dlq", gossip.MaxDeliveries(3))...)
	ev := gossip.NewEvent(typ, samplePayload(2)).WithMetadata("k", "v")
	e.publish(pub, ev)
	got := dl.waitDistinct(t, 1, s.h.Timeout)[0]
	assert.Equal(t, ev.ID, got.ID, "the dead letter keeps the event's ID")
	assert.Equal(t, gossip.DeadLetterType(e.group("dlq"), typ), got.Type)
	assert.Equal(t, "v", got.Metadata["k"], "and its metadata")
	info, ok := gossip.DeadLetterInfo(got)
	require.True(t, ok)
	assert.Equal(t, 3, info.Deliveries)
	assert.Equal(t, "always fails", info.Error)
	assert.Equal(t, typ, info.OriginalType)
	assert.Equal(t, e.group("dlq"), info.Group)
	var p Payload
	require.NoError(t, got.Decode(&p))
	assert.Equal(t, samplePayload(2), p, "and its data")
	assert.Equal(t, int64(3), calls.Load(), "MaxDeliveries(3) means three attempts")
}

func (s *suite) testPermanent(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	typ := e.typ("perm")
	dl := e.deadLetters(pub, e.group("perm"), typ)
	var calls atomic.Int64
	e.subscribe(sub, typ, func(ctx context.Context, ev *gossip.Event) error {
		calls.Add(1)
		return gossip.Permanent(errors.New("bad input"))
	}, e.groupOpts("perm", gossip.MaxDeliveries(5))...)
	e.publish(pub, gossip.NewEvent(typ, 1))
	got := dl.waitDistinct(t, 1, s.h.Timeout)[0]
	info, _ := gossip.DeadLetterInfo(got)
	assert.Equal(t, 1, info.Deliveries)
	assert.Equal(t, "bad input", info.Error)
	assert.Equal(t, int64(1), calls.Load(), "a permanent error is not retried")
}

func (s *suite) testUndecodable(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	typ := e.typ("undecodable")
	dl := e.deadLetters(pub, e.group("dec"), typ)
	var calls atomic.Int64
	e.subscribe(sub, typ, gossip.Typed(func(ctx context.Context, ev *gossip.Event, n int) error {
		calls.Add(1)
		return nil
	}), e.groupOpts("dec")...)
	e.publish(pub, gossip.NewEvent(typ, "not a number"))
	got := dl.waitDistinct(t, 1, s.h.Timeout)[0]
	info, _ := gossip.DeadLetterInfo(got)
	assert.Equal(t, 1, info.Deliveries, "data that cannot decode is not retried")
	assert.Contains(t, info.Error, "cannot decode")
	assert.Zero(t, calls.Load())
}

func (s *suite) testReplay(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	typ := e.typ("replay")
	var fixed atomic.Bool
	ok := newSink()
	e.subscribe(sub, typ, func(ctx context.Context, ev *gossip.Event) error {
		if !fixed.Load() {
			return gossip.Permanent(errors.New("not yet"))
		}
		ok.add(ev)
		return nil
	}, e.groupOpts("replay")...)
	dl := e.deadLetters(pub, e.group("replay"), typ)
	orig := gossip.NewEvent(typ, samplePayload(5)).WithMetadata("tenant", "acme")
	e.publish(pub, orig)
	letter := dl.waitDistinct(t, 1, s.h.Timeout)[0]
	fixed.Store(true)
	e.publish(pub, gossip.Replay(letter))
	got := ok.waitDistinct(t, 1, s.h.Timeout)[0]
	assert.Equal(t, typ, got.Type)
	assert.Equal(t, "acme", got.Metadata["tenant"])
	_, isDL := got.Metadata[gossip.MetaDeadLetterError]
	assert.False(t, isDL, "replayed event carries no dead-letter metadata")
	var p Payload
	require.NoError(t, got.Decode(&p))
	assert.Equal(t, samplePayload(5), p)
}

func (s *suite) testChain(t *testing.T) {
	e := s.env(t)
	users, emails, analytics := e.bus(), e.bus(), e.bus()
	k := newSink()
	e.subscribe(emails, e.typ("user.created"), func(ctx context.Context, ev *gossip.Event) error {
		return emails.Publish(ctx, gossip.NewEvent(e.typ("email.sent"), ev.ID))
	}, e.groupOpts("email")...)
	e.subscribe(analytics, e.typ("email.sent"), k.handler, e.groupOpts("analytics")...)
	created := gossip.NewEvent(e.typ("user.created"), "alice")
	e.publish(users, created)
	got := k.waitDistinct(t, 1, s.h.Timeout)[0]
	var cause string
	require.NoError(t, got.Decode(&cause))
	assert.Equal(t, created.ID, cause)
}

func (s *suite) testBatchPublish(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	k := newSink()
	e.subscribe(sub, e.typ("batch"), k.handler, e.groupOpts("batch")...)
	batch := make([]*gossip.Event, 100)
	for i := range batch {
		batch[i] = gossip.NewEvent(e.typ("batch"), i)
	}
	e.publish(pub, batch...)
	k.waitDistinct(t, 100, s.h.Timeout)
}

func (s *suite) testConcurrency(t *testing.T) {
	e := s.env(t)
	const publishers, each, subscribers = 8, 50, 4
	sinks := make([]*sink, subscribers)
	for i := range sinks {
		sinks[i] = newSink()
		e.subscribe(e.bus(), e.typ("many"), sinks[i].handler, gossip.Workers(4))
	}
	var groupSink *sink
	if s.h.Groups {
		groupSink = newSink()
		for range 3 {
			e.subscribe(e.bus(), e.typ("many"), groupSink.handler, gossip.Group("many"), gossip.Workers(3))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := e.bus()
			for i := range each {
				if err := b.Publish(context.Background(), gossip.NewEvent(e.typ("many"), p*1000+i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, k := range sinks {
		k.waitDistinct(t, publishers*each, s.h.Timeout)
	}
	if groupSink != nil {
		groupSink.waitDistinct(t, publishers*each, s.h.Timeout)
	}
}

func (s *suite) testUnsubscribe(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	gone, stays := newSink(), newSink()
	sg := e.subscribe(sub, e.typ("unsub"), gone.handler, e.groupOpts("gone")...)
	e.subscribe(sub, e.typ("unsub"), stays.handler, gossip.Workers(1))
	e.publish(pub, gossip.NewEvent(e.typ("unsub"), 1))
	gone.waitDistinct(t, 1, s.h.Timeout)
	require.NoError(t, sg.Unsubscribe())
	require.NoError(t, sg.Unsubscribe(), "Unsubscribe is idempotent")
	waitChan(t, sg.Done(), s.h.Timeout, "Done after Unsubscribe")
	for i := range 5 {
		e.publish(pub, gossip.NewEvent(e.typ("unsub"), 10+i))
	}
	stays.waitDistinct(t, 6, s.h.Timeout)
	assert.Equal(t, 1, gone.count(), "no delivery after Unsubscribe")
}

func (s *suite) testUnsubscribeInHandler(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	var self *gossip.Subscription
	ready := make(chan struct{})
	unsubscribed := make(chan error, 1)
	self = e.subscribe(sub, e.typ("self"), func(ctx context.Context, ev *gossip.Event) error {
		<-ready
		unsubscribed <- self.Unsubscribe()
		return nil
	}, gossip.Workers(1))
	close(ready)
	e.publish(pub, gossip.NewEvent(e.typ("self"), 1))
	require.NoError(t, waitChan(t, unsubscribed, s.h.Timeout, "Unsubscribe from the handler"))
	waitChan(t, self.Done(), s.h.Timeout, "Done after a handler unsubscribed")
}

func (s *suite) testPublishAfterShutdown(t *testing.T) {
	e := s.env(t)
	b := e.bus()
	require.NoError(t, b.Shutdown(context.Background()))
	err := b.Publish(context.Background(), gossip.NewEvent(e.typ("closed"), 1))
	require.ErrorIs(t, err, gossip.ErrClosed)
	_, err = b.Subscribe(e.typ("closed"), newSink().handler)
	require.ErrorIs(t, err, gossip.ErrClosed)
}

func (s *suite) testShutdownIdempotent(t *testing.T) {
	e := s.env(t)
	b := e.bus()
	e.subscribe(b, e.typ("idem"), newSink().handler)
	require.NoError(t, b.Shutdown(context.Background()))
	require.NoError(t, b.Shutdown(context.Background()))
}

func (s *suite) testShutdownWaits(t *testing.T) {
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	entered := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	chained := newSink()
	e.subscribe(pub, e.typ("inflight.chained"), chained.handler)
	chainErr := make(chan error, 1)
	e.subscribe(sub, e.typ("inflight"), func(ctx context.Context, ev *gossip.Event) error {
		close(entered)
		<-release
		// A handler finishing during Shutdown may still chain an event.
		chainErr <- sub.Publish(ctx, gossip.NewEvent(e.typ("inflight.chained"), ev.ID))
		finished.Store(true)
		return nil
	}, e.groupOpts("inflight", gossip.Workers(1))...)
	e.publish(pub, gossip.NewEvent(e.typ("inflight"), 1))
	waitChan(t, entered, s.h.Timeout, "the handler to start")

	done := make(chan error, 1)
	go func() { done <- sub.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a handler was running", err)
	case <-time.After(50 * time.Millisecond): // give Shutdown the chance to return wrongly
	}
	close(release)
	require.NoError(t, waitChan(t, done, s.h.Timeout, "Shutdown"))
	assert.True(t, finished.Load(), "the in-flight handler finished before Shutdown returned")
	require.NoError(t, waitChan(t, chainErr, s.h.Timeout, "the handler's Publish"), "a handler may publish while its bus shuts down")
	chained.waitDistinct(t, 1, s.h.Timeout)
	require.ErrorIs(t, sub.Publish(context.Background(), gossip.NewEvent(e.typ("inflight.chained"), 2)), gossip.ErrClosed,
		"after Shutdown, publishing with a handler's ctx or any other fails")

	if s.h.Durable {
		// It was acked: the group's next member does not see it again.
		k := newSink()
		e.subscribe(e.bus(), e.typ("inflight"), k.handler, gossip.Group("inflight"), gossip.Workers(1))
		marker := gossip.NewEvent(e.typ("inflight"), "marker")
		e.publish(pub, marker)
		got := k.waitDistinct(t, 1, s.h.Timeout)
		assert.Equal(t, marker.ID, got[0].ID)
		assert.Equal(t, 1, k.count())
	}

	// A Shutdown whose ctx ends before the handler returns gives up with ctx's error.
	stuck, stuckRelease := make(chan struct{}), make(chan struct{})
	cfg := s.h.Config(t, e.ns)
	b, err := gossip.NewEventBus(&cfg)
	require.NoError(t, err)
	e.subscribe(b, e.typ("stuck"), func(ctx context.Context, ev *gossip.Event) error {
		close(stuck)
		select {
		case <-stuckRelease:
		case <-ctx.Done(): // Shutdown giving up cancels handler contexts
		}
		return nil
	})
	e.publish(pub, gossip.NewEvent(e.typ("stuck"), 1))
	waitChan(t, stuck, s.h.Timeout, "the stuck handler to start")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, b.Shutdown(ctx), context.DeadlineExceeded)
	close(stuckRelease)
}

func (s *suite) testPublishCancelled(t *testing.T) {
	e := s.env(t)
	b := e.bus()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := b.Publish(ctx, gossip.NewEvent(e.typ("cancel"), 1))
	require.ErrorIs(t, err, context.Canceled)
}

func (s *suite) testInvalidTypes(t *testing.T) {
	e := s.env(t)
	b := e.bus()
	k := newSink()
	e.subscribe(b, gossip.EventType(e.prefix+".>"), k.handler)
	for _, typ := range []gossip.EventType{"", "a..b", "a b", ".a", "a.", e.typ("*"), e.typ(">"), "a/b", "ünï"} {
		err := b.Publish(context.Background(), gossip.NewEvent(typ, 1))
		assert.ErrorIs(t, err, gossip.ErrInvalidEventType, "Publish %q", typ)
	}
	// A batch with one bad event sends none of it.
	good := gossip.NewEvent(e.typ("good"), 1)
	err := b.Publish(context.Background(), good, gossip.NewEvent("bad type", 2))
	assert.ErrorIs(t, err, gossip.ErrInvalidEventType)
	for _, p := range []gossip.EventType{"", "a..b", "a.>.b", "a*", "a b"} {
		_, err := b.Subscribe(p, k.handler)
		assert.ErrorIs(t, err, gossip.ErrInvalidEventType, "Subscribe %q", p)
	}
	for _, g := range []string{"a.b", "a b", "*"} {
		_, err := b.Subscribe(e.typ("x"), k.handler, gossip.Group(g))
		assert.ErrorIs(t, err, gossip.ErrInvalidEventType, "Group %q", g)
	}
	marker := gossip.NewEvent(e.typ("marker"), 1)
	e.publish(b, marker)
	got := k.waitDistinct(t, 1, s.h.Timeout)
	assert.Equal(t, marker.ID, got[0].ID, "nothing of a rejected batch was sent")
}

func (s *suite) testInvalidEvents(t *testing.T) {
	e := s.env(t)
	b := e.bus()
	assert.ErrorIs(t, b.Publish(context.Background(), nil), gossip.ErrInvalidEvent)
	bad := gossip.NewEvent(e.typ("x"), 1)
	bad.Metadata = map[string]string{"": "empty key"}
	assert.ErrorIs(t, b.Publish(context.Background(), bad), gossip.ErrInvalidEvent)
	bad.Metadata = map[string]string{"k": "\xff\xfe"}
	assert.ErrorIs(t, b.Publish(context.Background(), bad), gossip.ErrInvalidEvent)
	if s.h.Encodes {
		assert.ErrorIs(t, b.Publish(context.Background(), gossip.NewEvent(e.typ("x"), func() {})), gossip.ErrInvalidEvent,
			"data the codec cannot encode")
	}
}

func (s *suite) testTooLarge(t *testing.T) {
	if !s.h.Encodes {
		t.Skip("transport encodes nothing; no size limit applies")
	}
	e := s.env(t)
	b := e.bus(func(c *gossip.Config) { c.MaxEventSize = 4096 })
	k := newSink()
	e.subscribe(b, e.typ(">"), k.handler, gossip.Workers(1))
	err := b.Publish(context.Background(), gossip.NewEvent(e.typ("big"), strings.Repeat("x", 5000)))
	require.ErrorIs(t, err, gossip.ErrEventTooLarge)
	marker := gossip.NewEvent(e.typ("small"), "ok")
	e.publish(b, marker)
	got := k.waitDistinct(t, 1, s.h.Timeout)
	assert.Equal(t, marker.ID, got[0].ID, "the large event was not sent")
}

func (s *suite) testShutdownLeaksNoGoroutine(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	func() {
		e := s.env(t)
		cfg := s.h.Config(t, e.ns)
		pub, err := gossip.NewEventBus(&cfg)
		require.NoError(t, err)
		sub, err := gossip.NewEventBus(&cfg)
		require.NoError(t, err)
		k := newSink()
		_, err = sub.Subscribe(e.typ("leak"), k.handler, e.groupOpts("leak")...)
		require.NoError(t, err)
		_, err = sub.Subscribe(e.typ("leak"), k.handler)
		require.NoError(t, err)
		for i := range 20 {
			require.NoError(t, pub.Publish(context.Background(), gossip.NewEvent(e.typ("leak"), i)))
		}
		k.waitDistinct(t, 20, s.h.Timeout)
		require.NoError(t, sub.Shutdown(context.Background()))
		require.NoError(t, pub.Shutdown(context.Background()))
	}()
	goleak.VerifyNone(t, ignore)
}
