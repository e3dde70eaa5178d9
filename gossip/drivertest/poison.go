package drivertest

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
)

// shutdownWithin shuts b down with ctx and fails the test when Shutdown
// does not return within d. It returns Shutdown's error.
func shutdownWithin(t *testing.T, b *gossip.EventBus, ctx context.Context, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- b.Shutdown(ctx) }()
	return waitChan(t, done, d, "Shutdown to return")
}

// endedCtx is a context that is already cancelled.
func endedCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// A poison event that kills (or stalls) every member handling it comes back
// to the group with a growing delivery count; once the count exceeds
// MaxDeliveries the next member dead-letters it before its handler runs.
func (s *suite) testPoisonAcrossRestarts(t *testing.T) {
	if !s.h.Durable {
		t.Skip("transport keeps no delivery across member restarts: a poison event goes with the member it killed")
	}
	e := s.env(t)
	const maxDeliveries = 2
	typ := e.typ("poison")
	shortAckWait := func(c *gossip.Config) { c.AckWait = time.Second }
	pub := e.bus(shortAckWait)
	dl := e.deadLetters(pub, "poison", typ)
	ev := gossip.NewEvent(typ, "poison")

	// Each member "dies" on the event: its handler blocks until its bus is
	// shut down with an ended ctx, so the delivery is never acked.
	for i := 1; i <= maxDeliveries; i++ {
		b := e.ownBus(shortAckWait)
		entered := make(chan int, 1)
		e.subscribe(b, typ, func(ctx context.Context, got *gossip.Event) error {
			select {
			case entered <- got.Attempt():
			default:
			}
			<-ctx.Done()
			return ctx.Err()
		}, gossip.Group("poison"), gossip.MaxDeliveries(maxDeliveries), gossip.Workers(1))
		if i == 1 {
			e.publish(pub, ev)
		}
		attempt := waitChan(t, entered, s.h.Timeout, "member "+strconv.Itoa(i)+" to get the poison event")
		t.Logf("member %d died on delivery %d", i, attempt)
		_ = shutdownWithin(t, b, endedCtx(), s.h.Timeout)
	}

	// The next member must not run the event again.
	saw := make(chan int, 1)
	e.subscribe(e.bus(shortAckWait), typ, func(ctx context.Context, got *gossip.Event) error {
		select {
		case saw <- got.Attempt():
		default:
		}
		return nil
	}, gossip.Group("poison"), gossip.MaxDeliveries(maxDeliveries), gossip.Workers(1))
	deadline := time.NewTimer(s.h.Timeout)
	defer deadline.Stop()
	for dl.distinct() == 0 {
		select {
		case attempt := <-saw:
			require.FailNowf(t, "poison event handled again",
				"the handler of the next member ran the event on delivery %d, past MaxDeliveries(%d): it must be dead-lettered before any handler runs",
				attempt, maxDeliveries)
		case <-dl.signal:
		case <-deadline.C:
			require.FailNowf(t, "timed out", "waited %v for the poison event's dead letter", s.h.Timeout)
		}
	}
	letter := dl.snapshot()[0]
	assert.Equal(t, ev.ID, letter.ID)
	info, ok := gossip.DeadLetterInfo(letter)
	require.True(t, ok)
	assert.Equal(t, typ, info.OriginalType)
	assert.Greater(t, info.Deliveries, maxDeliveries, "the dead letter gives the delivery count that made it one")
	select {
	case attempt := <-saw:
		assert.Failf(t, "poison event handled again", "the next member's handler ran it (delivery %d) as well as dead-lettering it", attempt)
	default:
	}
}

// A dead letter that would be invalid as it is — its type over 255 bytes,
// its size over MaxEventSize, its metadata refused by Publish — is repaired
// and stored, and the delivery is settled: the handler runs MaxDeliveries
// times, not forever.
func (s *suite) testUnpublishableDeadLetter(t *testing.T) {
	const maxDeliveries = 2
	const limit = 4096 // MaxEventSize of every bus of the near-limit case
	type setup struct {
		typ   gossip.EventType
		event func(b *gossip.EventBus) // puts the event on the transport
	}
	cases := []struct {
		name string
		// prepare returns the event type and how to put the event on the
		// transport, or skips.
		prepare func(t *testing.T, e *env, pub *gossip.EventBus) setup
		check   func(t *testing.T, letter *gossip.Event, info gossip.DeadLetter)
	}{{
		// A type of 250 bytes is valid; "dead_letter.g.<type>" is not.
		name: "LongType",
		prepare: func(t *testing.T, e *env, pub *gossip.EventBus) setup {
			base := string(e.typ("long"))
			typ := gossip.EventType(base + "." + strings.Repeat("x", 250-len(base)-1))
			require.NoError(t, typ.Validate())
			require.Error(t, gossip.DeadLetterType("g", typ).Validate(), "the dead letter's type is too long as it is")
			return setup{typ, func(b *gossip.EventBus) { e.publish(b, gossip.NewEvent(typ, "long type")) }}
		},
		check: func(t *testing.T, letter *gossip.Event, info gossip.DeadLetter) {
			assert.NoError(t, letter.Type.Validate(), "the dead letter's type is valid")
		},
	}, {
		// An event just under MaxEventSize: the dead letter, with its extra
		// metadata, would be over it.
		name: "NearSizeLimit",
		prepare: func(t *testing.T, e *env, pub *gossip.EventBus) setup {
			if !s.h.Encodes {
				t.Skip("transport encodes nothing; no size limit applies")
			}
			typ, probe := e.typ("near"), e.typ("prbe") // of one length: one size
			n := largestData(t, pub, probe, limit)
			return setup{typ, func(b *gossip.EventBus) { e.publish(b, gossip.NewEvent(typ, strings.Repeat("x", n))) }}
		},
		check: func(t *testing.T, letter *gossip.Event, info gossip.DeadLetter) {
			n, err := strconv.Atoi(letter.Metadata[gossip.MetaDeadLetterDataBytes])
			require.NoError(t, err, "the dead letter records the size of the data it left out (%s)", gossip.MetaDeadLetterDataBytes)
			assert.Greater(t, n, limit/2, "the size recorded is the original data's")
		},
	}, {
		// Publish refuses metadata with an empty key, so no event from the
		// public API carries it; a structured CloudEvent another producer
		// wrote can. Where the transport reads it as an event, its handler
		// fails; where it does not, it is dead-lettered as undecodable:
		// either way a dead letter must go out and the delivery settle.
		name: "OddMetadata",
		prepare: func(t *testing.T, e *env, pub *gossip.EventBus) setup {
			if s.h.PutRaw == nil {
				t.Skip("transport has no wire (Harness.PutRaw is nil): Publish refuses such metadata and nothing else can put it there")
			}
			typ := e.typ("oddmeta")
			body := `{"specversion":"1.0","id":"odd-1","type":"` + string(typ) + `","source":"elsewhere",` +
				`"datacontenttype":"application/json","data":"odd","gossipmetadata":{"":"empty key","ok":"fine"}}`
			return setup{typ, func(*gossip.EventBus) { s.h.PutRaw(t, e.ns, string(typ), []byte(body)) }}
		},
		check: func(t *testing.T, letter *gossip.Event, info gossip.DeadLetter) {
			t.Logf("dead-lettered after %d deliveries: %s", info.Deliveries, info.Error)
			for k := range letter.Metadata {
				assert.NotEmpty(t, k, "the dead letter carries no empty metadata key")
			}
			if info.Deliveries > 1 { // read as an event: its handler failed
				assert.Contains(t, letter.Metadata[gossip.MetaDeadLetterDropped], `""`,
					"the dead letter records the metadata key it left out (%s)", gossip.MetaDeadLetterDropped)
				assert.Equal(t, "fine", letter.Metadata["ok"], "and keeps the valid metadata")
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := s.env(t)
			withLimit := func(c *gossip.Config) { c.MaxEventSize = limit }
			// The subscriber is shut down with an ended ctx when the test
			// fails: a delivery retried without end would hold a graceful
			// Shutdown.
			pub, sub := e.bus(withLimit), e.ownBus(withLimit)
			giveUp := func() { _ = sub.Shutdown(endedCtx()) }
			dl := newSink()
			e.subscribe(pub, gossip.DeadLetterPrefix+".>", dl.handler)
			c := tc.prepare(t, e, pub)
			var calls atomic.Int64
			tooMany := make(chan struct{})
			e.subscribe(sub, c.typ, func(ctx context.Context, ev *gossip.Event) error {
				if calls.Add(1) == maxDeliveries+1 {
					close(tooMany)
				}
				return errors.New("always fails")
			}, e.groupOpts("g", gossip.MaxDeliveries(maxDeliveries))...)
			c.event(pub)

			deadline := time.NewTimer(s.h.Timeout)
			defer deadline.Stop()
			for dl.distinct() == 0 {
				select {
				case <-dl.signal:
				case <-tooMany:
					giveUp()
					require.FailNowf(t, "retried past MaxDeliveries", "the handler ran %d times with MaxDeliveries(%d): the dead letter was not stored and the delivery was retried",
						calls.Load(), maxDeliveries)
				case <-deadline.C:
					giveUp()
					require.FailNowf(t, "timed out", "waited %v for the dead letter (handler ran %d times)", s.h.Timeout, calls.Load())
				}
			}
			letter := dl.snapshot()[0]
			info, ok := gossip.DeadLetterInfo(letter)
			require.True(t, ok, "a dead letter: %s", letter.Type)
			assert.Equal(t, c.typ, info.OriginalType, "the dead letter names the original type")
			assert.Equal(t, e.group("g"), info.Group)
			assert.LessOrEqual(t, calls.Load(), int64(maxDeliveries), "the delivery was settled, not retried past MaxDeliveries")
			tc.check(t, letter, info)
		})
	}
}

// largestData returns the largest n for which an event of type typ with a
// string of n bytes as data is within limit on b. It finds it with
// Publish, which refuses a larger event before sending anything.
func largestData(t *testing.T, b *gossip.EventBus, typ gossip.EventType, limit int) int {
	t.Helper()
	lo, hi := 0, limit // lo fits, hi does not
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		err := b.Publish(context.Background(), gossip.NewEvent(typ, strings.Repeat("x", mid)))
		if errors.Is(err, gossip.ErrEventTooLarge) {
			hi = mid
			continue
		}
		require.NoError(t, err, "probe publish of %d bytes", mid)
		lo = mid
	}
	return lo
}

// Bytes another producer put on the transport that are no event are
// dead-lettered once, with the reason; the events around them flow on.
func (s *suite) testUndecodableWireBytes(t *testing.T) {
	if s.h.PutRaw == nil {
		t.Skip("transport has no wire (Harness.PutRaw is nil): memory hands over values, nothing is decoded")
	}
	e := s.env(t)
	pub, sub := e.bus(), e.bus()
	typ := e.typ("wire")
	k := newSink()
	e.subscribe(sub, typ, k.handler, e.groupOpts("wire", gossip.Workers(1))...)
	dl := e.deadLetters(pub, e.group("wire"), typ)
	var valid []*gossip.Event
	for i := range 3 {
		ev := gossip.NewEvent(typ, i)
		valid = append(valid, ev)
		e.publish(pub, ev)
		if i < 2 {
			s.h.PutRaw(t, e.ns, string(typ), []byte("\x00\x01 garbage "+strconv.Itoa(i)+" {not: an event"))
		}
	}
	k.waitIDs(t, valid, s.h.Timeout)
	letters := dl.waitDistinct(t, 2, s.h.Timeout)
	for _, letter := range letters {
		info, ok := gossip.DeadLetterInfo(letter)
		require.True(t, ok)
		assert.Equal(t, typ, info.OriginalType)
		assert.Equal(t, 1, info.Deliveries, "bytes that are no event are not retried")
		assert.Contains(t, info.Error, "cannot decode", "the dead letter says why the bytes are no event")
	}
	assert.Equal(t, len(valid), k.count(), "only the valid events reached the handler, once each")
	assert.Equal(t, 2, dl.count(), "each garbage entry dead-lettered once")
}
