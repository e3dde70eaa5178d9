package nats_test

import (
	"context"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	natsdriver "github.com/gossipbus/gossip/drivers/nats"
	"github.com/gossipbus/gossip/gossip/driver"
)

// Subscribe racing Close returns, with driver.ErrSubscriptionClosed or
// with a subscription that Stop and Close, as gossip calls them, end; and
// Close returns too: neither waits for the other forever (Subscribe once
// held the Conn's lock while closing the subscription it had just made,
// whose Close took that lock). TestMain's goleak check proves nothing is
// left running.
func TestSubscribeRacingCloseReturns(t *testing.T) {
	for _, mode := range []natsdriver.Mode{natsdriver.ModeJetStream, natsdriver.ModeCore} {
		t.Run(string(mode), func(t *testing.T) {
			// A connection the test owns stays open across Close, so every
			// Subscribe gets far enough to meet the closed Conn.
			nc, err := natsgo.Connect(shared.URL())
			require.NoError(t, err)
			defer nc.Close()
			p := prefix(t)
			deadline := time.After(10 * time.Second)
			for i := range 30 {
				c, err := natsdriver.New(nc, natsdriver.WithMode(mode), natsdriver.StreamPrefix(p))
				require.NoError(t, err)
				type result struct {
					s   driver.Subscription
					err error
				}
				subscribed, closed := make(chan result, 1), make(chan error, 1)
				go func() {
					s, err := c.Subscribe(context.Background(), driver.SubscribeSpec{Pattern: "a.b", BufferSize: 4})
					subscribed <- result{s, err}
				}()
				go func() { closed <- c.Close(context.Background()) }()
				var sub result
				for range 2 {
					select {
					case sub = <-subscribed:
					case err := <-closed:
						require.NoError(t, err, "round %d: Close", i)
					case <-deadline:
						t.Fatalf("round %d: Subscribe or Close did not return: a deadlock", i)
					}
				}
				if sub.err != nil {
					require.ErrorIs(t, sub.err, driver.ErrSubscriptionClosed, "round %d", i)
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				require.NoError(t, sub.s.Stop(ctx), "round %d: Stop", i)
				_, open := <-sub.s.Deliveries()
				require.False(t, open, "round %d: a delivery on a subscription that saw nothing published", i)
				require.NoError(t, sub.s.Close(ctx), "round %d: Close", i)
				cancel()
			}
		})
	}
}
