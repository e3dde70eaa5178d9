package outbox_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/outbox"
)

// publishCounter counts, per event ID, the events handed to Publish.
type publishCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (p *publishCounter) middleware(next gossip.PublishFunc) gossip.PublishFunc {
	return func(ctx context.Context, events []*gossip.Event) error {
		p.mu.Lock()
		if p.n == nil {
			p.n = map[string]int{}
		}
		for _, e := range events {
			p.n[e.ID]++
		}
		p.mu.Unlock()
		return next(ctx, events)
	}
}

func (p *publishCounter) count(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[id]
}

// insertRaw writes a row by hand, as another writer (or a bug) could: an
// event of an invalid type.
func insertRaw(t *testing.T, o *outbox.Outbox, id, typ, key string) {
	t.Helper()
	q := "INSERT INTO " + o.Table() + " (event_id, event_type, source, event_time, content_type, data, metadata, ordering_key"
	args := []any{id, typ, "hand", time.Now().UTC().Format(time.RFC3339Nano), "application/json", []byte(`1`), "{}", key}
	if o.Dialect() == outbox.Postgres {
		q += ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
	} else {
		q += ", created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
		args = append(args, time.Now().UnixMicro())
	}
	_, err := o.DB().Exec(q, args...)
	require.NoError(t, err)
}

// A row the bus refuses (over its size limit, an invalid type) is set
// aside with its reason, tried no more than twice (in its batch, then
// alone), and the rows behind it, of the same key, flow.
func TestPoisonRowsAreSetAsideAndRowsBehindFlow(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			o := newOutbox(t, openDB(t, db.dsn(t)))
			url := natsURL(t) + "?prefix=" + randomName("poison")
			consumerBus := newBus(t, url, gossip.Config{})
			c := newConsumer()
			_, err := consumerBus.Subscribe("orders.>", c.handle, gossip.Group("g"))
			require.NoError(t, err)

			key := func(e *gossip.Event) *gossip.Event { return e.WithMetadata(outbox.KeyMetadata, "order-1") }
			ok1 := key(gossip.NewEvent("orders.placed", 1))
			big := key(gossip.NewEvent("orders.placed", strings.Repeat("x", 8<<10)))
			ok2 := key(gossip.NewEvent("orders.placed", 2))
			write(t, o, true, ok1, big, ok2)
			insertRaw(t, o, "bad-type-row", "orders..placed", "order-1")
			ok3 := key(gossip.NewEvent("orders.placed", 3))
			write(t, o, true, ok3)

			var pc publishCounter
			relayBus := newBus(t, url, gossip.Config{MaxEventSize: 4 << 10, PublishMiddleware: []gossip.PublishMiddleware{pc.middleware}})
			runRelay(t, newRelay(t, o, relayBus, outbox.RelayOptions{}))
			c.waitFor(t, ok1.ID, ok2.ID, ok3.ID)

			dead, err := o.Dead(t.Context(), 10)
			require.NoError(t, err)
			require.Len(t, dead, 2)
			assert.Equal(t, big.ID, dead[0].EventID)
			assert.Contains(t, dead[0].Reason, "too large")
			assert.Equal(t, "bad-type-row", dead[1].EventID)
			assert.Contains(t, dead[1].Reason, "invalid event type")
			assert.False(t, dead[0].DeadAt.IsZero())

			// One more row through: the relay has gone round again, and
			// has not retried the dead ones.
			ok4 := key(gossip.NewEvent("orders.placed", 4))
			write(t, o, true, ok4)
			c.waitFor(t, ok4.ID)
			assert.LessOrEqual(t, pc.count(big.ID), 2, "a poison row is retried")
			assert.LessOrEqual(t, pc.count("bad-type-row"), 2, "a poison row is retried")
			assert.Zero(t, c.count(big.ID))
			eventuallyPending(t, o, 0)

			// Requeued, it is tried again, and set aside again.
			n, err := o.Requeue(t.Context(), dead[0].Seq)
			require.NoError(t, err)
			assert.EqualValues(t, 1, n)
			ok5 := key(gossip.NewEvent("orders.placed", 5))
			write(t, o, true, ok5)
			c.waitFor(t, ok5.ID)
			assert.Greater(t, pc.count(big.ID), 1)
			dead, err = o.Dead(t.Context(), 10)
			require.NoError(t, err)
			assert.Len(t, dead, 2)
		})
	}
}
