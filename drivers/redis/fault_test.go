package redis_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	redisdrv "github.com/gossipbus/gossip/drivers/redis"
	"github.com/gossipbus/gossip/gossip"
)

// newBus opens a bus on rawURL with the key prefix ns, shut down when the
// test ends.
func newBus(t *testing.T, rawURL, ns string, mutate ...func(*gossip.Config)) *gossip.EventBus {
	t.Helper()
	cfg := gossip.Config{
		Driver: withParams(rawURL, "prefix", ns), Source: "redis-test", Logger: discard,
		RetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 20 * time.Millisecond,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	b, err := gossip.NewEventBus(&cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		assert.NoError(t, b.Shutdown(ctx))
	})
	return b
}

// received is what a handler saw of one delivery.
type received struct {
	id      string
	attempt int
}

// collect receives n values from ch or fails after timeout.
func collect[T any](t *testing.T, ch <-chan T, n int, timeout time.Duration, what string) []T {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	out := make([]T, 0, n)
	for len(out) < n {
		select {
		case v := <-ch:
			out = append(out, v)
		case <-deadline.C:
			require.FailNowf(t, "timed out", "waited %v for %d %s, got %d", timeout, n, what, len(out))
		}
	}
	return out
}

// dyingMember subscribes a group member on a client of its own whose
// handler reports each event and then blocks; kill closes the client, so
// the member can neither ack nor keep its entries alive: it died.
func dyingMember(t *testing.T, ns string, typ gossip.EventType, group string, n int, opts ...gossip.SubscribeOption) (got <-chan string, kill func()) {
	client := newClient(t, testURL)
	conn, err := redisdrv.New(client, redisdrv.Prefix(ns), redisdrv.Logger(discard))
	require.NoError(t, err)
	bus, err := gossip.NewEventBus(&gossip.Config{Conn: conn, AckWait: time.Second, Logger: discard, Source: "dying"})
	require.NoError(t, err)
	ch := make(chan string, n)
	release := make(chan struct{})
	_, err = bus.Subscribe(typ, func(ctx context.Context, e *gossip.Event) error {
		ch <- e.ID
		<-release
		return nil
	}, append([]gossip.SubscribeOption{gossip.Group(group), gossip.Workers(n)}, opts...)...)
	require.NoError(t, err)
	var once sync.Once
	kill = func() {
		once.Do(func() {
			_ = client.Close()
			close(release)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = bus.Shutdown(ctx) // its acks fail: the client is gone
		})
	}
	t.Cleanup(kill)
	return ch, kill
}

// A group member that read events and died without acking them: after
// AckWait another member of the group handles every one of them, as their
// second delivery.
func TestCrashedMemberEventsTakenOver(t *testing.T) {
	requireRedis(t)
	ns := newNS(t)
	const n = 10
	typ := gossip.EventType("crash.order.created")
	got, kill := dyingMember(t, ns, typ, "billing", n)

	pub := newBus(t, testURL, ns)
	var ids []string
	for i := range n {
		e := gossip.NewEvent(typ, i)
		ids = append(ids, e.ID)
		require.NoError(t, pub.Publish(context.Background(), e))
	}
	assert.ElementsMatch(t, ids, collect(t, got, n, 10*time.Second, "events at the dying member"))
	kill()

	rescued := make(chan received, n)
	other := newBus(t, testURL, ns, func(c *gossip.Config) { c.AckWait = time.Second })
	_, err := other.Subscribe(typ, func(ctx context.Context, e *gossip.Event) error {
		rescued <- received{e.ID, e.Attempt()}
		return nil
	}, gossip.Group("billing"))
	require.NoError(t, err)
	var again []string
	for _, r := range collect(t, rescued, n, 15*time.Second, "events taken over") {
		again = append(again, r.id)
		assert.Equal(t, 2, r.attempt, "the take-over is the event's second delivery")
	}
	assert.ElementsMatch(t, ids, again)
}

// MaxDeliveries counts deliveries to every member: an event a member died
// on is dead-lettered by the next one once the count is reached, and an
// event delivered more often than allowed without an ack (members keep
// dying on it) is dead-lettered without running the handler again.
func TestMaxDeliveriesHonouredAcrossMembers(t *testing.T) {
	requireRedis(t)
	for _, tc := range []struct {
		name          string
		maxDeliveries int
		wantCalls     int64
		wantError     string
	}{
		{"ReachedOnTheNextMember", 2, 1, "still failing"},
		{"ExceededByCrashes", 1, 0, "delivered 2 times without an ack"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNS(t)
			typ := gossip.EventType("crash.poison")
			got, kill := dyingMember(t, ns, typ, "g", 1, gossip.MaxDeliveries(tc.maxDeliveries))
			pub := newBus(t, testURL, ns)
			dead := make(chan *gossip.Event, 1)
			_, err := pub.Subscribe(gossip.DeadLetterType("g", typ), func(ctx context.Context, e *gossip.Event) error {
				dead <- e
				return nil
			})
			require.NoError(t, err)
			ev := gossip.NewEvent(typ, "poison")
			require.NoError(t, pub.Publish(context.Background(), ev))
			collect(t, got, 1, 10*time.Second, "the event at the dying member")
			kill()

			var calls atomic.Int64
			other := newBus(t, testURL, ns, func(c *gossip.Config) { c.AckWait = time.Second })
			_, err = other.Subscribe(typ, func(ctx context.Context, e *gossip.Event) error {
				calls.Add(1)
				return errors.New("still failing")
			}, gossip.Group("g"), gossip.MaxDeliveries(tc.maxDeliveries))
			require.NoError(t, err)
			letter := collect(t, dead, 1, 15*time.Second, "dead letter")[0]
			info, ok := gossip.DeadLetterInfo(letter)
			require.True(t, ok)
			assert.Equal(t, ev.ID, letter.ID)
			assert.Equal(t, 2, info.Deliveries, "the delivery count spans members")
			assert.Contains(t, info.Error, tc.wantError)
			assert.Equal(t, tc.wantCalls, calls.Load(), "handler runs at the second member")
		})
	}
}

// A redis-server with appendonly yes is SIGKILLed and restarted on the same
// port and directory while events are published and handled: every event
// whose Publish returned nil is handled.
func TestServerRestartLosesNoConfirmedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the restart test (it kills and restarts a redis-server)")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("no redis-server binary on PATH: cannot run a server of the test's own to kill")
	}
	port := freePort(nil)
	srv, err := launch(t.TempDir(), port, "--appendonly", "yes", "--appendfsync", "always")
	require.NoError(t, err)
	t.Cleanup(srv.kill)
	base := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	const ns = "restart"
	typ := gossip.EventType("restart.tick")
	short := func(c *gossip.Config) {
		c.AckWait = 2 * time.Second
		c.DialTimeout = 5 * time.Second
	}
	pub := newBus(t, base, ns, short)
	sub := newBus(t, base, ns, short)
	var mu sync.Mutex
	handled := map[string]bool{}
	signal := make(chan struct{}, 1)
	_, err = sub.Subscribe(typ, func(ctx context.Context, e *gossip.Event) error {
		mu.Lock()
		handled[e.ID] = true
		mu.Unlock()
		select {
		case signal <- struct{}{}:
		default:
		}
		return nil
	}, gossip.Group("g"), gossip.Workers(4))
	require.NoError(t, err)

	// Publish one event at a time while, at a third of the way, the server
	// is SIGKILLed and restarted under the publisher and the subscriber.
	const total = 300
	var (
		pmu       sync.Mutex
		confirmed []string
		failed    int
	)
	third := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		deadline := time.Now().Add(60 * time.Second)
		for i := 0; time.Now().Before(deadline); i++ {
			e := gossip.NewEvent(typ, i)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := pub.Publish(ctx, e)
			cancel()
			pmu.Lock()
			if err != nil {
				failed++
			} else {
				confirmed = append(confirmed, e.ID)
			}
			n := len(confirmed)
			pmu.Unlock()
			if n == total/3 && err == nil {
				close(third)
			}
			if n == total {
				return
			}
		}
	}()
	select {
	case <-third:
	case <-time.After(30 * time.Second):
		t.Fatal("the first third of the events was not published within 30s")
	}
	srv.kill()
	require.NoError(t, srv.start(), "restart redis-server on the same port and directory")
	<-published
	pmu.Lock()
	defer pmu.Unlock()
	require.Len(t, confirmed, total, "publishing resumed after the restart")
	t.Logf("%d publishes confirmed, %d failed while the server was down", len(confirmed), failed)

	missing := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, id := range confirmed {
			if !handled[id] {
				n++
			}
		}
		return n
	}
	wait := time.NewTimer(30 * time.Second)
	defer wait.Stop()
	for missing() > 0 {
		select {
		case <-signal:
		case <-wait.C:
			require.FailNowf(t, "lost events", "%d of %d confirmed events were never handled", missing(), len(confirmed))
		}
	}
	deleteKeys(t, base, ns)
}

// The go-redis client of the test package, to write entries as another
// producer would.
func plainClient(t *testing.T) goredis.UniversalClient { return newClient(t, testURL) }
