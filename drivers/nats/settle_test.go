package nats_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	natsdriver "github.com/gossipbus/gossip/drivers/nats"
	"github.com/gossipbus/gossip/gossip/driver"
)

// openJS opens a JetStream Conn in a stream of the test's own, closed when
// the test ends.
func openJS(t *testing.T) driver.Conn {
	t.Helper()
	c, err := natsdriver.Connect(context.Background(), shared.URL()+"?prefix="+prefix(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func publishN(t *testing.T, c driver.Conn, typ string, n int) {
	t.Helper()
	msgs := make([]*driver.Message, n)
	for i := range msgs {
		msgs[i] = &driver.Message{ID: fmt.Sprint(i), Type: typ, Source: "test", Time: time.Now(), Data: []byte("{}")}
	}
	require.NoError(t, c.Publish(context.Background(), msgs))
}

func subscribe(t *testing.T, c driver.Conn, spec driver.SubscribeSpec) driver.Subscription {
	t.Helper()
	s, err := c.Subscribe(context.Background(), spec)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = s.Stop(context.Background())
		_ = s.Close(context.Background())
	})
	return s
}

// A member that stops hands back at once what it pulled and never handed
// over (Stop) and what gossip never started (Release): another member of
// the group gets every event long before the 30 s ack wait.
func TestStoppedMemberHandsBackWhatItPulled(t *testing.T) {
	c := openJS(t)
	spec := driver.SubscribeSpec{Pattern: "a.b", Group: "g", BufferSize: 8, AckWait: 30 * time.Second, Start: driver.StartOldest}
	leaving := subscribe(t, c, spec)
	const n = 40
	publishN(t, c, "a.b", n)
	first := recv(t, leaving.Deliveries(), 10*time.Second, "a first delivery")
	// Wait until the member holds more than gossip took and its channel
	// holds: those only Stop can hand back.
	require.Eventually(t, func() bool {
		return len(leaving.Deliveries()) == cap(leaving.Deliveries()) && consumers(t, c)[0].NumAckPending > 1+cap(leaving.Deliveries())
	}, 10*time.Second, 10*time.Millisecond, "the member pulls ahead")
	require.NoError(t, leaving.Stop(context.Background()))
	unstarted := []driver.Delivery{first}
	for d := range leaving.Deliveries() {
		unstarted = append(unstarted, d)
	}
	require.NoError(t, leaving.(driver.Releaser).Release(context.Background(), unstarted))
	require.NoError(t, leaving.Close(context.Background()))

	staying := subscribe(t, c, spec)
	seen := map[string]bool{}
	for len(seen) < n {
		d := recv(t, staying.Deliveries(), 10*time.Second, fmt.Sprintf("event %d of %d", len(seen)+1, n))
		seen[d.ID] = true
		require.NoError(t, staying.(driver.Acker).Ack(context.Background(), []driver.Delivery{d}))
	}
}

// A nacked delivery comes back, counted by the server: Attempt is 2.
func TestNackedDeliveryComesBackWithTheServersCount(t *testing.T) {
	c := openJS(t)
	s := subscribe(t, c, driver.SubscribeSpec{Pattern: "a.b", Group: "g", BufferSize: 2, AckWait: 30 * time.Second})
	publishN(t, c, "a.b", 1)
	d := recv(t, s.Deliveries(), 10*time.Second, "the delivery")
	require.Equal(t, 1, d.Attempt)
	require.NoError(t, s.(driver.Nacker).Nack(context.Background(), []driver.Delivery{d}, 10*time.Millisecond))
	again := recv(t, s.Deliveries(), 10*time.Second, "the redelivery")
	assert.Equal(t, d.ID, again.ID)
	assert.Equal(t, 2, again.Attempt)
}

// Closing a broadcast listener deletes its consumer on the server.
func TestClosedBroadcastListenerLeavesNoConsumer(t *testing.T) {
	c := openJS(t)
	s, err := c.Subscribe(context.Background(), driver.SubscribeSpec{Pattern: "a.b", BufferSize: 2})
	require.NoError(t, err)
	require.Len(t, consumers(t, c), 1)
	require.NoError(t, s.Stop(context.Background()))
	require.NoError(t, s.Close(context.Background()))
	assert.Empty(t, consumers(t, c))
}

// consumers lists the consumers of c's stream as the server has them now.
func consumers(t *testing.T, c driver.Conn) []*jetstream.ConsumerInfo {
	t.Helper()
	js, err := jetstream.New(c.(*natsdriver.Conn).NATS())
	require.NoError(t, err)
	str, err := js.Stream(context.Background(), c.(*natsdriver.Conn).Stream())
	require.NoError(t, err)
	var infos []*jetstream.ConsumerInfo
	list := str.ListConsumers(context.Background())
	for info := range list.Info() {
		infos = append(infos, info)
	}
	require.NoError(t, list.Err())
	return infos
}
