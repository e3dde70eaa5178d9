package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/drivers/nats/natsserver"
	"github.com/gossipbus/gossip/gossip"
)

// TestWalkthrough is the on-call walkthrough of docs/cli.md, on each
// transport that stores events: a handler fails and dead-letters three
// events, `deadletters list` finds them, `show` tells why, `lag` shows the
// events the group missed while it was away, the handler is fixed, `replay`
// sends one back and it is handled, `lag` drops to zero, and a dead letter
// already replayed is refused by --max-replays.
func TestWalkthrough(t *testing.T) {
	eachStoringTransport(t, walkthrough)
}

// eachStoringTransport runs test on NATS JetStream (GOSSIP_NATS_URL, else an
// embedded server) and Redis Streams (GOSSIP_REDIS_URL, else
// 127.0.0.1:6379), with a prefix of its own, removed afterwards.
func eachStoringTransport(t *testing.T, test func(t *testing.T, url string)) {
	prefix := "cli" + randomHex(t)
	t.Run("nats", func(t *testing.T) {
		url := os.Getenv("GOSSIP_NATS_URL")
		if url == "" {
			srv, err := natsserver.Start(natsserver.Options{})
			require.NoError(t, err)
			t.Cleanup(srv.Shutdown)
			url = srv.URL()
		}
		t.Cleanup(func() { dropNATSStream(t, url, prefix) })
		test(t, withParam(url, "prefix="+prefix))
	})
	t.Run("redis", func(t *testing.T) {
		url := os.Getenv("GOSSIP_REDIS_URL")
		if url == "" {
			c, err := net.DialTimeout("tcp", "127.0.0.1:6379", time.Second)
			if err != nil {
				t.Skip("no Redis: GOSSIP_REDIS_URL is unset and nothing answers on 127.0.0.1:6379")
			}
			c.Close()
			url = "redis://127.0.0.1:6379/0"
		}
		t.Cleanup(func() { dropRedisKeys(t, url, prefix) })
		test(t, withParam(url, "prefix="+prefix))
	})
}

func walkthrough(t *testing.T, url string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gossipCLI := func(args ...string) (string, string, int) {
		var out, errs bytes.Buffer
		code := run(ctx, append(args, "--driver", url), &out, &errs) // flags after the arguments
		t.Logf("$ gossip %s   (exit %d)\n%s%s", strings.Join(args, " "), code, out.String(), errs.String())
		return out.String(), errs.String(), code
	}
	listed := func(args ...string) []record {
		out, _, code := gossipCLI(append([]string{"deadletters", "list", "-o", "json"}, args...)...)
		require.Equal(t, exitOK, code)
		return decodeLines[record](t, out)
	}
	billing := func(t *testing.T) groupState {
		out, _, code := gossipCLI("lag", "--group", "billing", "-o", "json")
		require.Equal(t, exitOK, code)
		for _, g := range decodeLines[groupState](t, out) {
			if g.Pattern == "order.created" {
				return g
			}
		}
		require.FailNow(t, "no lag row for group billing on order.created")
		return groupState{}
	}
	// billingAt is billing's lag once it shows pending events pending and
	// none unacknowledged: what a member's acks and a publisher's events
	// (other connections) did reaches the server's consumer state a moment
	// later on NATS, so lag is asked again until it shows them, for up to
	// 10 s.
	billingAt := func(t *testing.T, pending int64) groupState {
		t.Helper()
		var g groupState
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if g = billing(t); (g.Pending == pending && g.Unacked == 0) || time.Now().After(deadline) {
				break
			}
		}
		assert.EqualValues(t, pending, g.Pending)
		assert.EqualValues(t, 0, g.Unacked)
		return g
	}

	// Dead letters arrive at a broadcast listener, so the test can wait for them.
	watch := newBus(t, url)
	deadLetters := make(chan *gossip.Event, 16)
	_, err := watch.Subscribe("dead_letter.billing.>", func(_ context.Context, e *gossip.Event) error {
		deadLetters <- e
		return nil
	})
	require.NoError(t, err)

	// billing's handler fails: three events become dead letters.
	var broken atomic.Bool
	broken.Store(true)
	handled := make(chan *gossip.Event, 16)
	member := func() *gossip.EventBus {
		b := newBus(t, url)
		_, err := b.Subscribe("order.created", func(_ context.Context, e *gossip.Event) error {
			if broken.Load() {
				return errors.New("card declined: payment gateway timeout")
			}
			handled <- e
			return nil
		}, gossip.Group("billing"), gossip.MaxDeliveries(2), gossip.RetryBackoff(time.Millisecond, 5*time.Millisecond))
		require.NoError(t, err)
		return b
	}
	m1 := member()
	pub := newBus(t, url)
	var ids []string
	for i := range 3 {
		e := gossip.NewEvent("order.created", map[string]int{"order": i})
		require.NoError(t, pub.Publish(ctx, e))
		ids = append(ids, e.ID)
	}
	for range 3 {
		receive(t, deadLetters)
	}
	require.NoError(t, m1.Shutdown(ctx))

	// Two more orders while billing is away: lag shows them pending.
	for i := 3; i < 5; i++ {
		require.NoError(t, pub.Publish(ctx, gossip.NewEvent("order.created", map[string]int{"order": i})))
	}
	g := billingAt(t, 2)
	assert.False(t, g.Oldest.IsZero(), "oldest pending event has an age")

	// list, filter, show.
	dls := listed()
	require.Len(t, dls, 3)
	for _, d := range dls {
		assert.Contains(t, ids, d.ID)
		assert.Equal(t, "billing", d.Group)
		assert.Equal(t, "order.created", d.Type)
		assert.Equal(t, 2, d.Deliveries)
		assert.Contains(t, d.Error, "card declined")
	}
	assert.Len(t, listed("--error", "GATEWAY TIMEOUT", "--type", "order.>"), 3)
	assert.Empty(t, listed("--error", "out of stock"))
	assert.Empty(t, listed("--group", "shipping"))
	out, _, code := gossipCLI("deadletters", "list")
	require.Equal(t, exitOK, code)
	assert.Contains(t, out, "3 dead letters")
	out, _, code = gossipCLI("deadletters", "show", ids[0])
	require.Equal(t, exitOK, code)
	assert.Contains(t, out, "card declined: payment gateway timeout")
	assert.Contains(t, out, `{"order":0}`)
	_, _, code = gossipCLI("deadletters", "show", "no-such-id")
	assert.Equal(t, exitError, code)
	_, _, code = gossipCLI("deadletters", "replay")
	assert.Equal(t, exitUsage, code, "replay without IDs, filter or --all")

	// A dry run changes nothing.
	out, _, code = gossipCLI("deadletters", "replay", ids[0], "--dry-run")
	require.Equal(t, exitOK, code)
	assert.Contains(t, out, "would replay "+ids[0])
	require.Len(t, listed(), 3)

	// The handler is fixed; billing comes back and catches up; the replay
	// of the first dead letter is handled.
	broken.Store(false)
	m2 := member()
	_, _, code = gossipCLI("deadletters", "replay", ids[0])
	require.Equal(t, exitOK, code)
	var replayed *gossip.Event
	for range 3 {
		if e := receive(t, handled); e.Metadata[gossip.MetaReplayOf] != "" {
			replayed = e
		}
	}
	require.NotNil(t, replayed, "the replayed event was handled")
	assert.Equal(t, ids[0], replayed.Metadata[gossip.MetaReplayOf])
	assert.Equal(t, "1", replayed.Metadata[gossip.MetaReplays])
	var data map[string]int
	require.NoError(t, replayed.Decode(&data))
	assert.Equal(t, map[string]int{"order": 0}, data)
	require.NoError(t, m2.Shutdown(ctx)) // flushes the acks
	billingAt(t, 0)
	left := listed()
	require.Len(t, left, 2, "a replayed dead letter is deleted")
	for _, d := range left {
		assert.NotEqual(t, ids[0], d.ID)
	}

	// The guard: an event that came back and failed again carries its
	// replay count, and --max-replays refuses it.
	broken.Store(true)
	m3 := member()
	_, _, code = gossipCLI("deadletters", "replay", ids[1])
	require.Equal(t, exitOK, code)
	again := receive(t, deadLetters)
	require.NoError(t, m3.Shutdown(ctx))
	assert.Equal(t, ids[1], again.Metadata[gossip.MetaReplayOf])
	_, errs, code := gossipCLI("deadletters", "replay", again.ID, "--max-replays", "1")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errs, "already replayed 1 times")
	require.Len(t, listed(), 2)

	_, _, code = gossipCLI("deadletters", "purge", "--all")
	require.Equal(t, exitOK, code)
	assert.Empty(t, listed())
}

func newBus(t *testing.T, url string) *gossip.EventBus {
	t.Helper()
	b, err := gossip.NewEventBus(&gossip.Config{Driver: url, Source: "walkthrough"})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Shutdown(ctx)
	})
	return b
}

func receive(t *testing.T, ch <-chan *gossip.Event) *gossip.Event {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(20 * time.Second):
		require.FailNow(t, "no event within 20s")
		return nil
	}
}

func decodeLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var vs []T
	for line := range strings.Lines(out) {
		var v T
		require.NoError(t, json.Unmarshal([]byte(line), &v), line)
		vs = append(vs, v)
	}
	return vs
}

func withParam(url, p string) string {
	if strings.Contains(url, "?") {
		return url + "&" + p
	}
	return url + "?" + p
}

func randomHex(t *testing.T) string {
	b := make([]byte, 4)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

func dropNATSStream(t *testing.T, url, prefix string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, prefix); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Logf("cleanup: delete stream %s: %v", prefix, err)
	}
}

func dropRedisKeys(t *testing.T, url, prefix string) {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return
	}
	c := goredis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	it := c.Scan(ctx, 0, prefix+":*", 500).Iterator()
	for n := 0; it.Next(ctx) && n < 10000; n++ {
		c.Del(ctx, it.Val())
	}
}
