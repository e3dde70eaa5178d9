// Package drivertest is the conformance suite every gossip transport runs:
// the SPEC's semantics table, shutdown, concurrency and bad input, checked
// through the public gossip API. A driver's test calls Run with a Harness:
//
//	func TestConformance(t *testing.T) {
//		drivertest.Run(t, drivertest.Harness{
//			Config: func(t testing.TB, ns string) gossip.Config {
//				return gossip.Config{Driver: "memory://" + ns}
//			},
//			Capabilities: drivertest.Capabilities{Groups: true},
//		})
//	}
//
// Every behaviour the suite checks is listed in docs/conformance.md: that
// list is the portability contract.
package drivertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gossipbus/gossip/gossip"
)

// Capabilities declares what the transport under test does, where the
// SPEC's semantics table lets transports differ.
type Capabilities struct {
	// Groups: Subscribe with Group works (false for Redis Pub/Sub, where
	// it must fail with ErrGroupsUnsupported).
	Groups bool
	// Durable: a group's events published while all its members are away
	// reach it on return, and acknowledged events are not seen again
	// (Redis Streams, JetStream).
	Durable bool
	// HandbackInOrder: a member that joins a group is given what members
	// that left handed back before anything newer (Redis Streams claims it
	// before it reads; the in-process transports keep one queue). Without
	// it (JetStream) a handed-back event may come after newer ones, or only
	// after AckWait: Exclusive handovers then keep every event, not per-key
	// order.
	HandbackInOrder bool
	// Encodes: events cross a wire encoded, so Config.MaxEventSize applies
	// (every transport but memory).
	Encodes bool
	// QueuedPublish: Publish may return while the events are still queued
	// in the client, as on a transport that holds nothing (NATS core by
	// default); Shutdown sends them. BroadcastStartsNow then shuts the
	// publishing bus down before it subscribes.
	QueuedPublish bool
}

// Harness tells the suite how to reach the transport under test.
type Harness struct {
	// Config returns the configuration of a new bus on the transport. Buses
	// opened with the same namespace share the transport's data (streams,
	// groups); buses of different namespaces never see each other's events.
	// The suite sets Source, retry backoffs and the logger itself.
	Config func(t testing.TB, ns string) gossip.Config

	Capabilities

	// Timeout bounds each wait for a delivery (default 15s).
	Timeout time.Duration

	// PutRaw, when set, writes body onto the transport as another producer
	// would, under event type typ in namespace ns (the type's stream,
	// subject or channel), without any CloudEvents framing: the bytes a
	// foreign or broken producer leaves there. Nil on a transport without a
	// wire (memory): the tests that need it skip.
	PutRaw func(t testing.TB, ns string, typ string, body []byte)

	// IgnoreGoroutines are goleak options for goroutines of the process
	// that are not the transport client's, which ShutdownLeaksNoGoroutine
	// must not count (an in-process test server's).
	IgnoreGoroutines []goleak.Option
}

// Run runs every conformance test against the transport.
func Run(t *testing.T, h Harness) {
	if h.Timeout <= 0 {
		h.Timeout = 15 * time.Second
	}
	s := &suite{h: h}
	// Tests that look at the whole process (goroutines) run first and alone.
	t.Run("ShutdownLeaksNoGoroutine", s.testShutdownLeaksNoGoroutine)
	t.Run("Parallel", func(t *testing.T) {
		for _, tc := range s.tests() {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.fn(t)
			})
		}
	})
}

type testCase struct {
	name string
	fn   func(t *testing.T)
}

type suite struct{ h Harness }

// env is one test's namespace, event-type prefix and buses.
type env struct {
	t      *testing.T
	s      *suite
	ns     string
	prefix string
}

func (s *suite) env(t *testing.T) *env {
	name := strings.NewReplacer("/", "_", " ", "_", ".", "_").Replace(t.Name())
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	id := fmt.Sprintf("%s_%x", strings.Trim(name, "_-"), rand.Uint32())
	id = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, id)
	return &env{t: t, s: s, ns: id, prefix: "dt." + id}
}

// typ returns an event type unique to the test: "dt.<test>.<suffix>".
func (e *env) typ(suffix string) gossip.EventType {
	return gossip.EventType(e.prefix + "." + suffix)
}

// config is the configuration of a new bus in the test's namespace: the
// harness's, with the suite's source, fast retries and a quiet logger.
func (e *env) config(mutate ...func(*gossip.Config)) gossip.Config {
	cfg := e.s.h.Config(e.t, e.ns)
	cfg.Source = "drivertest"
	cfg.RetryBackoff = 5 * time.Millisecond
	cfg.MaxRetryBackoff = 20 * time.Millisecond
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, m := range mutate {
		m(&cfg)
	}
	return cfg
}

// bus opens a bus in the test's namespace, shut down when the test ends.
func (e *env) bus(mutate ...func(*gossip.Config)) *gossip.EventBus {
	e.t.Helper()
	return e.open(true, mutate...)
}

// ownBus opens a bus in the test's namespace that the test shuts down
// itself, perhaps with an ended ctx (which makes Shutdown return ctx's
// error, and every later call the same): the cleanup only makes sure it is
// down, without judging that error.
func (e *env) ownBus(mutate ...func(*gossip.Config)) *gossip.EventBus {
	e.t.Helper()
	return e.open(false, mutate...)
}

func (e *env) open(judgeShutdown bool, mutate ...func(*gossip.Config)) *gossip.EventBus {
	e.t.Helper()
	cfg := e.config(mutate...)
	b, err := gossip.NewEventBus(&cfg)
	require.NoError(e.t, err, "NewEventBus")
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); judgeShutdown {
			require.NoError(e.t, err, "Shutdown at test end")
		}
	})
	return b
}

// groupOpts is Group(name) where the transport has groups, else nothing:
// tests of redelivery and dead letters run on broadcast subscriptions there.
func (e *env) groupOpts(name string, more ...gossip.SubscribeOption) []gossip.SubscribeOption {
	if e.s.h.Groups {
		return append([]gossip.SubscribeOption{gossip.Group(name)}, more...)
	}
	return more
}

func (e *env) group(name string) string {
	if e.s.h.Groups {
		return name
	}
	return ""
}

func (e *env) publish(b *gossip.EventBus, events ...*gossip.Event) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e.s.h.Timeout)
	defer cancel()
	require.NoError(e.t, b.Publish(ctx, events...), "Publish")
}

func (e *env) subscribe(b *gossip.EventBus, p gossip.EventType, h gossip.Handler, opts ...gossip.SubscribeOption) *gossip.Subscription {
	e.t.Helper()
	sub, err := b.Subscribe(p, h, opts...)
	require.NoError(e.t, err, "Subscribe %s", p)
	return sub
}

// sink collects delivered events.
type sink struct {
	mu     sync.Mutex
	events []*gossip.Event
	ids    map[string]int
	signal chan struct{}
}

func newSink() *sink { return &sink{ids: map[string]int{}, signal: make(chan struct{}, 1)} }

func (s *sink) handler(ctx context.Context, e *gossip.Event) error {
	s.add(e)
	return nil
}

func (s *sink) add(e *gossip.Event) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.ids[e.ID]++
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *sink) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id] > 0
}

func (s *sink) snapshot() []*gossip.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*gossip.Event(nil), s.events...)
}

func (s *sink) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

// waitDistinct waits until n distinct event IDs arrived.
func (s *sink) waitDistinct(t *testing.T, n int, timeout time.Duration) []*gossip.Event {
	t.Helper()
	waitUntil(t, s.signal, timeout, func() bool { return s.distinct() >= n },
		func() string { return fmt.Sprintf("for %d distinct events, have %d", n, s.distinct()) })
	return s.snapshot()
}

// waitIDs waits until every one of events arrived.
func (s *sink) waitIDs(t *testing.T, events []*gossip.Event, timeout time.Duration) {
	t.Helper()
	missing := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := 0
		for _, e := range events {
			if s.ids[e.ID] == 0 {
				n++
			}
		}
		return n
	}
	waitUntil(t, s.signal, timeout, func() bool { return missing() == 0 },
		func() string { return fmt.Sprintf("%d of %d events did not arrive", missing(), len(events)) })
}

// waitUntil waits until done holds, looking again at each signal, and
// fails the test after timeout with what says was missing.
func waitUntil(t *testing.T, signal <-chan struct{}, timeout time.Duration, done func() bool, what func() string) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !done() {
		select {
		case <-signal:
		case <-deadline.C:
			require.FailNowf(t, "timed out", "waited %v: %s", timeout, what())
		}
	}
}

// waitChan returns the next value from ch, failing the test after timeout.
func waitChan[T any](t *testing.T, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		require.FailNowf(t, "timed out", "waited %v for %s", timeout, what)
	}
	var zero T
	return zero
}

func (s *suite) tests() []testCase {
	return []testCase{
		{"PublishSubscribeTypedPayload", s.testTypedPayload},
		{"DecodeIntoOtherShapes", s.testDecodeOtherShapes},
		{"TypedPointerPayload", s.testTypedPointer},
		{"EventAttributesRoundTrip", s.testAttributes},
		{"MetadataRoundTrip", s.testMetadata},
		{"SubscribeIsLive", s.testSubscribeIsLive},
		{"BroadcastStartsNow", s.testBroadcastStartsNow},
		{"BroadcastListenersEachGetAll", s.testBroadcastFanOut},
		{"FanOutAcrossGroups", s.testFanOutGroups},
		{"CompetingConsumersExactlyOnce", s.testCompetingConsumers},
		{"GroupMemberLeavesOthersContinue", s.testMemberLeaves},
		{"GroupsUnsupportedIsAnError", s.testGroupsUnsupported},
		{"DurableGroupCatchesUp", s.testDurableCatchUp},
		{"NewGroupStartsWithNewEvents", s.testNewGroupStartsNew},
		{"FromOldestReplaysHeldEvents", s.testFromOldest},
		{"AckedEventsAreNotRedelivered", s.testAckedNotRedelivered},
		{"WildcardOneToken", s.testWildcardStar},
		{"WildcardRest", s.testWildcardRest},
		{"TopicIsolation", s.testTopicIsolation},
		{"OrderWithOneWorker", s.testOrdering},
		{"WorkersRunConcurrently", s.testWorkersConcurrent},
		{"RedeliveryAfterError", s.testRedeliveryAfterError},
		{"RedeliveryAfterPanic", s.testRedeliveryAfterPanic},
		{"MaxDeliveriesDeadLetters", s.testMaxDeliveries},
		{"PermanentDeadLettersAtOnce", s.testPermanent},
		{"UndecodableDataDeadLettered", s.testUndecodable},
		{"DeadLetterReplay", s.testReplay},
		{"HandlerPublishesChainedEvent", s.testChain},
		{"BatchPublish", s.testBatchPublish},
		{"ConcurrentPublishersAndSubscribers", s.testConcurrency},
		{"UnsubscribeStopsDelivery", s.testUnsubscribe},
		{"UnsubscribeFromInsideHandler", s.testUnsubscribeInHandler},
		{"PublishAfterShutdownIsErrClosed", s.testPublishAfterShutdown},
		{"ShutdownIsIdempotent", s.testShutdownIdempotent},
		{"ShutdownWaitsForInFlightHandlers", s.testShutdownWaits},
		{"PublishHonoursCancelledContext", s.testPublishCancelled},
		{"InvalidTypesRejected", s.testInvalidTypes},
		{"InvalidEventsRejected", s.testInvalidEvents},
		{"HostileIDsAndMetadataRoundTrip", s.testHostileIDsAndMetadataRoundTrip},
		{"OutsideTheIDAndMetadataRuleRefused", s.testOutsideTheRuleRefused},
		{"EventTooLargeRejected", s.testTooLarge},
		{"PoisonAcrossRestarts", s.testPoisonAcrossRestarts},
		{"UnpublishableDeadLetterIsRepaired", s.testUnpublishableDeadLetter},
		{"ShutdownWithEndedCtxStopsRetrying", s.testShutdownEndedCtxStopsRetrying},
		{"SubscribeRacingShutdown", s.testSubscribeRacingShutdown},
		{"RepublishedEventMetadataIsolated", s.testRepublishedMetadata},
		{"MemberLeavingHandsBackDeliveries", s.testMemberLeavingHandsBack},
		{"FiftySubscriptionsFlow", s.testFiftySubscriptionsFlow},
		{"UndecodableWireBytes", s.testUndecodableWireBytes},
		{"Idempotency", s.testIdempotency},
		{"Exclusive", s.testExclusive},
		{"KeyOrder", s.testKeyOrder},
		{"KeyRetryBlocksOnlyItsKey", s.testKeyRetryBlocksOnlyItsKey},
		{"KeyDeadLetterReleasesKey", s.testKeyDeadLetterReleases},
		{"CorrelationFollowsChain", s.testCorrelationFollowsChain},
	}
}
