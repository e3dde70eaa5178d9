package outbox_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/outbox"
)

type keyed struct {
	Key string `json:"key"`
	N   int    `json:"n"`
}

// holdFirst holds a relay's first Publish until another relay has
// published: were the other relays free to take later rows of the keys in
// the held batch, they would publish them first, out of order.
type holdFirst struct {
	once, othersOnce sync.Once
	holding          chan struct{} // closed when the first Publish is held
	othersPublished  chan struct{}
}

func (h *holdFirst) held(next gossip.PublishFunc) gossip.PublishFunc {
	return func(ctx context.Context, events []*gossip.Event) error {
		h.once.Do(func() {
			close(h.holding)
			select {
			case <-h.othersPublished:
			case <-time.After(waitLimit):
			}
		})
		return next(ctx, events)
	}
}

func (h *holdFirst) other(next gossip.PublishFunc) gossip.PublishFunc {
	return func(ctx context.Context, events []*gossip.Event) error {
		err := next(ctx, events)
		h.othersOnce.Do(func() { close(h.othersPublished) })
		return err
	}
}

// Four relays on one table: every row is published once (no relay crashed,
// so no re-send), and the rows of each key arrive in the order they were
// written.
func TestFourRelaysShareOneTableKeepingOrderPerKey(t *testing.T) {
	const keys, perKey = 8, 50
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			dsn := db.dsn(t)
			o := newOutbox(t, openDB(t, dsn))
			url := "memory://" + randomName("relays")
			consumerBus := newBus(t, url, gossip.Config{})
			var (
				mu    sync.Mutex
				seen  = map[string]int{}
				byKey = map[string][]int{}
				all   = make(chan struct{})
			)
			_, err := consumerBus.Subscribe("stock.>", gossip.Typed(func(_ context.Context, e *gossip.Event, k keyed) error {
				mu.Lock()
				defer mu.Unlock()
				seen[e.ID]++
				byKey[k.Key] = append(byKey[k.Key], k.N)
				if len(seen) == keys*perKey && seen[e.ID] == 1 {
					close(all)
				}
				return nil
			}), gossip.Workers(1))
			require.NoError(t, err)

			for n := range perKey {
				var batch []*gossip.Event
				for k := range keys {
					key := fmt.Sprintf("sku-%d", k)
					batch = append(batch, gossip.NewEvent("stock.changed", keyed{key, n}).WithMetadata(outbox.KeyMetadata, key))
				}
				write(t, o, true, batch...)
			}

			relayed := map[string]int{}
			var rmu sync.Mutex
			hold := &holdFirst{holding: make(chan struct{}), othersPublished: make(chan struct{})}
			for i := range 4 {
				// Each relay with a connection pool and a bus of its own, as
				// four processes would have.
				ro, err := outbox.New(openDB(t, dsn), outbox.Options{Table: o.Table()})
				require.NoError(t, err)
				mw := hold.other
				if i == 0 {
					mw = hold.held
				}
				bus := newBus(t, url, gossip.Config{PublishMiddleware: []gossip.PublishMiddleware{mw}})
				// Fewer rows a batch than keys: a first batch always leaves
				// a key free for the others.
				// One Name for all four, as one config deployed to four
				// pods gives: the relays must still keep apart.
				r := newRelay(t, ro, bus, outbox.RelayOptions{Name: "orders-relay", BatchSize: 7})
				outbox.SetAfterPublish(r, func(ids []string) {
					rmu.Lock()
					relayed[fmt.Sprintf("relay-%d", i)] += len(ids)
					rmu.Unlock()
				})
				runRelay(t, r)
				if i == 0 {
					receive(t, hold.holding) // relay-0 holds the oldest rows
				}
			}
			receive(t, all)

			mu.Lock()
			defer mu.Unlock()
			for id, n := range seen {
				assert.Equal(t, 1, n, "event %s published %d times", id, n)
			}
			for key, ns := range byKey {
				for i := range ns {
					if !assert.Equal(t, i, ns[i], "key %s out of order: %v", key, ns) {
						break
					}
				}
			}
			rmu.Lock()
			t.Logf("rows per relay: %v", relayed)
			rmu.Unlock()
		})
	}
}
