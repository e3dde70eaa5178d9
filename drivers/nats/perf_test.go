package nats_test

import (
	"context"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	natsdriver "github.com/gossipbus/gossip/drivers/nats"
	"github.com/gossipbus/gossip/gossip"
)

// Many goroutines publishing single events at once share the connection's
// writes, and each gets its own confirmation: every event whose Publish
// returned nil is stored, once.
func TestConcurrentPublishersEachGetTheirOwnConfirmation(t *testing.T) {
	p := prefix(t)
	cfg := gossip.Config{Driver: shared.URL() + "?prefix=" + p}
	pub := newBus(t, cfg)
	const publishers, each = 64, 20
	ids := make([][]string, publishers)
	var wg sync.WaitGroup
	for g := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e := gossip.NewEvent("many", i)
				if assert.NoError(t, pub.Publish(context.Background(), e)) {
					ids[g] = append(ids[g], e.ID)
				}
			}
		}()
	}
	wg.Wait()
	var all []string
	for _, l := range ids {
		all = append(all, l...)
	}
	require.Len(t, all, publishers*each)

	// Confirmed means stored: the stream holds every one of them, once.
	nc, err := natsgo.Connect(shared.URL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	s, err := js.Stream(context.Background(), p)
	require.NoError(t, err)
	assert.Equal(t, uint64(publishers*each), s.CachedInfo().State.Msgs)

	got := newLedger()
	_, err = newBus(t, cfg).Subscribe("many", got.handler, gossip.Group("g"), gossip.FromOldest())
	require.NoError(t, err)
	got.waitFor(t, all, 15*time.Second)
}

// Acks go out without waiting for the server's reply; Shutdown flushes
// them, so that the group has nothing pending once it returns, also on a
// connection the application owns (which Shutdown leaves open).
func TestAcksAreFlushedAtShutdown(t *testing.T) {
	p := prefix(t)
	nc, err := natsgo.Connect(shared.URL())
	require.NoError(t, err)
	defer nc.Close()
	conn, err := natsdriver.New(nc, natsdriver.StreamPrefix(p))
	require.NoError(t, err)
	sub := newBus(t, gossip.Config{Conn: conn})
	handled := newLedger()
	_, err = sub.Subscribe("acked", handled.handler, gossip.Group("g"), gossip.Workers(4))
	require.NoError(t, err)

	pub := newBus(t, gossip.Config{Driver: shared.URL() + "?prefix=" + p})
	const n = 200
	events := make([]*gossip.Event, n)
	var ids []string
	for i := range events {
		events[i] = gossip.NewEvent("acked", i)
		ids = append(ids, events[i].ID)
	}
	require.NoError(t, pub.Publish(context.Background(), events...))
	handled.waitFor(t, ids, 15*time.Second)
	require.NoError(t, sub.Shutdown(context.Background()))
	require.False(t, nc.IsClosed(), "Shutdown leaves the application's connection open")

	// The server has read every ack; it applies them in order.
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	name := groupConsumer(t, js, p)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		info, err := js.Consumer(context.Background(), p, name)
		require.NoError(c, err)
		ci := info.CachedInfo()
		assert.Equal(c, 0, ci.NumAckPending)
		assert.Equal(c, uint64(n), ci.AckFloor.Stream)
	}, 5*time.Second, 10*time.Millisecond)
}

// groupConsumer is the name of the one durable consumer in stream.
func groupConsumer(t *testing.T, js jetstream.JetStream, stream string) string {
	t.Helper()
	s, err := js.Stream(context.Background(), stream)
	require.NoError(t, err)
	names := s.ConsumerNames(context.Background())
	var found []string
	for n := range names.Name() {
		found = append(found, n)
	}
	require.NoError(t, names.Err())
	require.Len(t, found, 1)
	return found[0]
}

// A core-mode Publish returns before the server has the events (unless
// flush=sync); Shutdown flushes them, so a live subscriber gets every one.
func TestCoreAsyncFlushDeliversWhatWasPublishedBeforeShutdown(t *testing.T) {
	p := prefix(t)
	got := newLedger()
	sub := newBus(t, gossip.Config{Driver: shared.URL() + "?mode=core&prefix=" + p})
	s, err := sub.Subscribe("fast", got.handler)
	require.NoError(t, err)

	pub := newBus(t, gossip.Config{Driver: shared.URL() + "?mode=core&prefix=" + p})
	var ids []string
	for i := range 2000 {
		e := gossip.NewEvent("fast", i)
		ids = append(ids, e.ID)
		require.NoError(t, pub.Publish(context.Background(), e))
	}
	require.NoError(t, pub.Shutdown(context.Background()))
	got.waitFor(t, ids, 15*time.Second)
	assert.Zero(t, s.Dropped())
}
