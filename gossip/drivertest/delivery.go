package drivertest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

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
