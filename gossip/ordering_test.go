package gossip_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/driver"
)

// seqLog records the sequence numbers a handler completed.
type seqLog struct {
	mu   sync.Mutex
	seqs []int
	sig  chan struct{}
}

func newSeqLog() *seqLog { return &seqLog{sig: make(chan struct{}, 1)} }

func (l *seqLog) add(n int) {
	l.mu.Lock()
	l.seqs = append(l.seqs, n)
	l.mu.Unlock()
	select {
	case l.sig <- struct{}{}:
	default:
	}
}

func (l *seqLog) waitFor(t *testing.T, n int) []int {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		l.mu.Lock()
		got := append([]int(nil), l.seqs...)
		l.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-l.sig:
		case <-deadline:
			require.FailNowf(t, "timed out", "waited for %d handled events, have %d", n, len(got))
		}
	}
}

// orderedBus is a bus whose Shutdown at the test's end is bounded, so
// that a failing test ends rather than waiting on stuck workers.
func orderedBus(t *testing.T, cfg *gossip.Config) *gossip.EventBus {
	t.Helper()
	b, err := gossip.NewEventBus(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, b.Shutdown(ctx))
	})
	return b
}

func upTo(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// Deliveries waiting behind a busy key count against BufferSize: with the
// key's head stuck, the subscription takes at most BufferSize of them (plus
// the one in hand) and the memory transport's buffer fills, so Publish
// waits instead of the lines growing.
func TestOrderedByKeyWaitingEventsAreBounded(t *testing.T) {
	const buffer = 4
	b := orderedBus(t, &gossip.Config{BufferSize: buffer})
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before Shutdown
	l := newSeqLog()
	_, err := b.Subscribe("keyed.item", func(ctx context.Context, e *gossip.Event) error {
		var n int
		require.NoError(t, e.Decode(&n))
		if n == 0 {
			<-release
		}
		l.add(n)
		return nil
	}, gossip.OrderedByKey(), gossip.Workers(2))
	require.NoError(t, err)

	var rejected error
	accepted := 0
	for i := range 100 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		err := b.Publish(ctx, gossip.NewEvent("keyed.item", i).WithKey("k"))
		cancel()
		if err != nil {
			rejected = err
			break
		}
		accepted++
	}
	require.ErrorIs(t, rejected, context.DeadlineExceeded, "a full subscription makes Publish wait")
	// One in the handler, BufferSize waiting in the key's line, one in the
	// hand of the worker waiting for room, BufferSize in the transport.
	assert.LessOrEqual(t, accepted, 1+buffer+1+buffer)
	once.Do(func() { close(release) })
	assert.Equal(t, upTo(accepted), l.waitFor(t, accepted), "in publish order")
}

// A worker waiting for room in the lines runs the in-process retries
// meanwhile: they are what frees the room, so waiting for it must not
// block them.
func TestOrderedByKeyRetryRunsWhileWaitingForRoom(t *testing.T) {
	b := orderedBus(t, &gossip.Config{BufferSize: 1, RetryBackoff: time.Millisecond, MaxRetryBackoff: time.Millisecond})
	published := make(chan struct{})
	l := newSeqLog()
	_, err := b.Subscribe("keyed.item", func(ctx context.Context, e *gossip.Event) error {
		var n int
		require.NoError(t, e.Decode(&n))
		if n == 0 && e.Attempt() == 1 {
			<-published // event 1 waits in the line, 2 waits for room
			return errors.New("first attempt fails")
		}
		l.add(n)
		return nil
	}, gossip.OrderedByKey(), gossip.Workers(2))
	require.NoError(t, err)
	for i := range 4 { // the fourth fits in the transport once the third is taken
		require.NoError(t, b.Publish(context.Background(), gossip.NewEvent("keyed.item", i).WithKey("k")))
	}
	close(published)
	assert.Equal(t, upTo(4), l.waitFor(t, 4))
}

// durable is a hand-fed transport with the capabilities of JetStream: it
// acks, nacks, keeps alive and hands back, and records what it was told.
type durable struct {
	deliveries chan driver.Delivery
	kept       chan string // every ID kept alive, when set
	mu         sync.Mutex
	acked      []string
	nacked     []string
	released   []string
}

func (c *durable) Publish(context.Context, []*driver.Message) error { return nil }
func (c *durable) Subscribe(context.Context, driver.SubscribeSpec) (driver.Subscription, error) {
	return &durableSub{c: c}, nil
}
func (c *durable) Close(context.Context) error { return nil }

func (c *durable) record(to *[]string, ds []driver.Delivery) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range ds {
		*to = append(*to, d.ID)
	}
}

type durableSub struct {
	c    *durable
	once sync.Once
}

func (s *durableSub) Deliveries() <-chan driver.Delivery { return s.c.deliveries }
func (s *durableSub) Stop(context.Context) error {
	s.once.Do(func() { close(s.c.deliveries) })
	return nil
}
func (s *durableSub) Close(context.Context) error { return nil }
func (s *durableSub) Ack(_ context.Context, ds []driver.Delivery) error {
	s.c.record(&s.c.acked, ds)
	return nil
}
func (s *durableSub) Nack(_ context.Context, ds []driver.Delivery, _ time.Duration) error {
	s.c.record(&s.c.nacked, ds)
	return nil
}
func (s *durableSub) Release(_ context.Context, ds []driver.Delivery) error {
	s.c.record(&s.c.released, ds)
	return nil
}
func (s *durableSub) KeepAlive(_ context.Context, ds []driver.Delivery) error {
	for _, d := range ds {
		if s.c.kept != nil {
			select {
			case s.c.kept <- d.ID:
			default:
			}
		}
	}
	return nil
}

func keyed(id, key string) driver.Delivery {
	return driver.Delivery{Attempt: 1, Message: &driver.Message{
		ID: id, Type: "keyed.item", Source: "test", Time: time.Now(),
		Data: []byte(`1`), ContentType: "application/json",
		Metadata: map[string]string{gossip.MetaPartitionKey: key},
	}}
}

// On a transport that redelivers natively, a failed event of a key is
// retried in process (never nacked, which would let the next event of its
// key overtake it), and when the subscription stops while it waits, it
// and the events behind it go back to the group, in order, unhandled.
func TestOrderedByKeyRetryIsInProcessAndHandedBackWithItsLine(t *testing.T) {
	tr := &durable{deliveries: make(chan driver.Delivery)}
	b := orderedBus(t, &gossip.Config{Conn: tr, RetryBackoff: time.Hour, MaxRetryBackoff: time.Hour})
	var mu sync.Mutex
	var ran []string
	failed, otherDone := make(chan struct{}), make(chan struct{})
	sub, err := b.Subscribe("keyed.item", func(ctx context.Context, e *gossip.Event) error {
		mu.Lock()
		ran = append(ran, e.ID)
		mu.Unlock()
		switch e.ID {
		case "a1":
			close(failed)
			return errors.New("fails")
		case "b1":
			close(otherDone)
		}
		return nil
	}, gossip.OrderedByKey(), gossip.Workers(2))
	require.NoError(t, err)
	for _, d := range []driver.Delivery{keyed("a1", "a"), keyed("a2", "a"), keyed("a3", "a"), keyed("b1", "b")} {
		tr.deliveries <- d // taken by a worker once the send returns
	}
	for _, ch := range []chan struct{}{failed, otherDone} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			require.FailNow(t, "timed out waiting for the handlers")
		}
	}
	require.NoError(t, sub.Unsubscribe())
	select {
	case <-sub.Done():
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the subscription did not stop")
	}
	require.NoError(t, b.Shutdown(context.Background()))

	mu.Lock()
	assert.Equal(t, []string{"a1", "b1"}, ran, "nothing of key a ran after its failed head; key b flowed")
	mu.Unlock()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	assert.Empty(t, tr.nacked, "a keyed event is never nacked")
	assert.Equal(t, []string{"b1"}, tr.acked)
	assert.Equal(t, []string{"a1", "a2", "a3"}, tr.released, "the waiting head and its line go back, in order")
}

// Events waiting behind their key, and the key's head waiting for its
// retry, are kept alive, so that the transport does not hand them to
// another member while they wait.
func TestOrderedByKeyWaitingDeliveriesAreKeptAlive(t *testing.T) {
	tr := &durable{deliveries: make(chan driver.Delivery), kept: make(chan string, 64)}
	b := orderedBus(t, &gossip.Config{Conn: tr, AckWait: 100 * time.Millisecond, RetryBackoff: time.Hour, MaxRetryBackoff: time.Hour})
	failed := make(chan struct{})
	_, err := b.Subscribe("keyed.item", func(ctx context.Context, e *gossip.Event) error {
		if e.ID == "a1" {
			close(failed)
		}
		return errors.New("fails")
	}, gossip.OrderedByKey(), gossip.Workers(2))
	require.NoError(t, err)
	tr.deliveries <- keyed("a1", "a")
	tr.deliveries <- keyed("a2", "a")
	<-failed
	want := map[string]bool{"a1": true, "a2": true}
	deadline := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case id := <-tr.kept:
			delete(want, id)
		case <-deadline:
			require.FailNow(t, "not kept alive", "%v", want)
		}
	}
}

func TestWithKeyEmptyIsNoKey(t *testing.T) {
	e := gossip.NewEvent("a.b", 1).WithKey("order-7")
	assert.Equal(t, "order-7", e.Key())
	assert.Equal(t, "order-7", e.Metadata[gossip.MetaPartitionKey], "the key is the partitionkey extension")
	e.WithKey("")
	assert.Equal(t, "", e.Key())
	_, ok := e.Metadata[gossip.MetaPartitionKey]
	assert.False(t, ok, "WithKey(\"\") removes the key")
	assert.Equal(t, "", gossip.NewEvent("a.b", 1).Key())
}

// A delivered event's key is removed on a copy of its metadata: other
// handlers of the same event keep seeing it.
func TestWithKeyOnDeliveredEventCopiesMetadata(t *testing.T) {
	b := newBus(t, nil)
	seen := make(chan string, 2)
	strip := make(chan struct{})
	for i := range 2 {
		_, err := b.Subscribe("keyed.copy", func(ctx context.Context, e *gossip.Event) error {
			if i == 0 {
				e.WithKey("")
				close(strip)
			} else {
				<-strip
			}
			seen <- fmt.Sprint(i, e.Key())
			return nil
		})
		require.NoError(t, err)
	}
	require.NoError(t, b.Publish(context.Background(), gossip.NewEvent("keyed.copy", 1).WithKey("k")))
	got := []string{<-seen, <-seen}
	assert.ElementsMatch(t, []string{"0", "1k"}, got)
}
