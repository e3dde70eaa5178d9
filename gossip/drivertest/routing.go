package drivertest

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
)

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
