package outbox_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/drivers/nats/natsserver"
	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/outbox"
)

// outage is how long the transport stays down.
const outage = 5 * time.Second

// failureCounter counts the Publish calls that failed and signals each.
type failureCounter struct {
	n      atomic.Int64
	failed chan struct{}
}

func (f *failureCounter) middleware(next gossip.PublishFunc) gossip.PublishFunc {
	return func(ctx context.Context, events []*gossip.Event) error {
		err := next(ctx, events)
		if err != nil {
			f.n.Add(1)
			select {
			case f.failed <- struct{}{}:
			default:
			}
		}
		return err
	}
}

// The transport goes down for 5 s: rows committed meanwhile wait in the
// table, the relay retries with backoff (a handful of tries, not a hot
// loop), and once the server is back every row is handled, once.
func TestTransportDownRowsWaitThenFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("stops a server for 5 s")
	}
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			o := newOutbox(t, openDB(t, db.dsn(t)))
			dir := t.TempDir()
			srv, err := natsserver.Start(natsserver.Options{Dir: dir})
			require.NoError(t, err)
			port := srv.Port()
			defer func() { srv.Shutdown() }()
			url := srv.URL() + "?prefix=" + randomName("down")

			consumerBus := newBus(t, url, gossip.Config{AckWait: time.Second})
			c := newConsumer()
			_, err = consumerBus.Subscribe("payments.>", c.handle, gossip.Group("g"))
			require.NoError(t, err)
			fc := &failureCounter{failed: make(chan struct{}, 1)}
			relayBus := newBus(t, url, gossip.Config{PublishMiddleware: []gossip.PublishMiddleware{fc.middleware}})
			runRelay(t, newRelay(t, o, relayBus, outbox.RelayOptions{PublishTimeout: 250 * time.Millisecond}))

			before := []*gossip.Event{gossip.NewEvent("payments.taken", 1), gossip.NewEvent("payments.taken", 2)}
			write(t, o, true, before...)
			c.waitFor(t, ids(before)...)

			srv.Shutdown()
			down := time.After(outage)
			var during []*gossip.Event
			for i := range 10 {
				during = append(during, gossip.NewEvent("payments.taken", 10+i))
			}
			write(t, o, true, during...)
			select {
			case <-fc.failed:
			case <-time.After(waitLimit):
				t.Fatal("the relay never tried to publish while the server was down")
			}
			<-down
			assert.Equal(t, len(during), pending(t, o), "rows wait while the transport is down")
			tries := fc.n.Load()
			assert.LessOrEqual(t, tries, int64(10), "failed publishes in %v: a hot loop", outage)

			srv, err = natsserver.Start(natsserver.Options{Dir: dir, Port: port})
			require.NoError(t, err)
			c.waitFor(t, ids(during)...)
			for _, e := range append(before, during...) {
				assert.Equal(t, 1, c.count(e.ID), "event %s", e.ID)
			}
			eventuallyPending(t, o, 0)
			t.Logf("%d failed publishes while the server was down", tries)
		})
	}
}
