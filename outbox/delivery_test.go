package outbox_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/outbox"
)

type userCreated struct {
	ID    int    `json:"id"`
	Email string `json:"email"`
}

const typeUserCreated gossip.EventType = "user_service.user.created"

// Committed rows are handled once each downstream, by a consumer behind
// the idempotency middleware on a claim store of the transport, with the
// ID, type, source, time, metadata and payload bytes they were written
// with; rows of a rolled-back transaction never go out. The first relay
// stops dead after publishing its first batch, before marking it sent: the
// next relay takes the rows over when its lease ends and sends them again,
// the transport delivers those copies (counted outside the middleware),
// and the handler still runs once per ID. On every database and transport.
func TestCommittedEventsAreHandledOnceRolledBackNever(t *testing.T) {
	for _, db := range databases {
		for _, tr := range transports {
			t.Run(db.name+"/"+tr.name, func(t *testing.T) {
				o := newOutbox(t, openDB(t, db.dsn(t)))
				url := shortDedup(tr, tr.url(t))
				consumerBus := newBus(t, url, gossip.Config{Source: "consumer"})
				c := newConsumer()
				_, err := consumerBus.Subscribe("user_service.>", c.idempotent(t, consumerBus), gossip.Group("audit"), gossip.Workers(1))
				require.NoError(t, err)

				rolledBack := []*gossip.Event{gossip.NewEvent(typeUserCreated, userCreated{ID: -1})}
				write(t, o, false, rolledBack...)
				raw := json.RawMessage("{ \"id\" :7,\n \"email\":\"r@example.com\"  }")
				committed := []*gossip.Event{
					gossip.NewEvent(typeUserCreated, userCreated{ID: 1, Email: "a@example.com"}).WithMetadata("tenant", "t1").WithMetadata("k", " spaced\nvalue "),
					gossip.NewEvent(typeUserCreated, raw),
				}
				for i := 2; i < 10; i++ {
					committed = append(committed, gossip.NewEvent(typeUserCreated, userCreated{ID: i}))
				}
				write(t, o, true, committed[:5]...)
				write(t, o, false, gossip.NewEvent(typeUserCreated, userCreated{ID: -2}))
				write(t, o, true, committed[5:]...)

				// The first relay publishes a batch and then hangs as if dead:
				// it holds the rows' lease and never marks them sent.
				relayBus := newBus(t, url, gossip.Config{Source: "relay"})
				dead := newRelay(t, o, relayBus, outbox.RelayOptions{BatchSize: 4, Lease: time.Second, PublishTimeout: 250 * time.Millisecond})
				firstBatch := make(chan []string, 1)
				hang := make(chan struct{})
				outbox.SetAfterPublish(dead, func(ids []string) {
					select {
					case firstBatch <- ids:
						<-hang
					default:
					}
				})
				runRelay(t, dead)
				t.Cleanup(func() { close(hang) }) // before runRelay's cleanup stops it
				var resent []string
				select {
				case resent = <-firstBatch:
				case <-time.After(waitLimit):
					t.Fatal("the first relay published nothing")
				}
				require.Equal(t, ids(committed[:4]), resent)

				runRelay(t, newRelay(t, o, relayBus, outbox.RelayOptions{BatchSize: 4}))
				c.waitFor(t, ids(committed)...)
				for _, id := range resent {
					c.waitDelivered(t, id, 2)
				}
				eventuallyPending(t, o, 0)

				for i, want := range committed {
					got := c.get(want.ID)
					deliveries := 1
					if i < len(resent) {
						deliveries = 2
					}
					assert.Equal(t, deliveries, c.count(want.ID), "deliveries of %s", want.ID)
					assert.Equal(t, 1, c.ran(want.ID), "handler runs for %s", want.ID)
					assert.Equal(t, want.Type, got.Type)
					assert.Equal(t, "outbox-test", got.Source, "the outbox's Source, not the relay bus's")
					assert.True(t, want.Timestamp.Equal(got.Timestamp), "timestamp %v, want %v", got.Timestamp, want.Timestamp)
					assert.Equal(t, want.Metadata, got.Metadata)
				}
				var u userCreated
				require.NoError(t, c.get(committed[0].ID).Decode(&u))
				assert.Equal(t, userCreated{ID: 1, Email: "a@example.com"}, u)
				got, ok := c.get(committed[1].ID).Data.(json.RawMessage)
				require.True(t, ok, "data of a raw event is %T", c.get(committed[1].ID).Data)
				assert.Equal(t, string(raw), string(got), "raw JSON travels byte for byte")
				for _, e := range rolledBack {
					assert.Zero(t, c.count(e.ID), "a rolled-back event was published")
				}
				c.mu.Lock()
				assert.Len(t, c.order, len(committed), "only committed events are handled")
				c.mu.Unlock()
			})
		}
	}
}

// Publish checks events as EventBus.Publish does and stores none of a
// call that has an invalid one.
func TestPublishRefusesInvalidEvents(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			o := newOutbox(t, openDB(t, db.dsn(t)))
			tx, err := o.DB().Begin()
			require.NoError(t, err)
			defer func() { _ = tx.Rollback() }()
			ctx := t.Context()
			err = o.Publish(ctx, tx, gossip.NewEvent(typeUserCreated, 1), gossip.NewEvent("bad type", 2))
			require.ErrorIs(t, err, gossip.ErrInvalidEventType)
			err = o.Publish(ctx, tx, gossip.NewEvent(typeUserCreated, 1).WithMetadata("", "v"))
			require.ErrorIs(t, err, gossip.ErrInvalidEvent)
			err = o.Publish(ctx, tx, gossip.NewEvent(typeUserCreated, func() {}))
			require.ErrorIs(t, err, gossip.ErrInvalidEvent)
			e := &gossip.Event{Type: typeUserCreated}
			require.NoError(t, o.Publish(ctx, tx, e))
			assert.NotEmpty(t, e.ID, "Publish fills the ID, as a direct Publish does")
			assert.Equal(t, "outbox-test", e.Source)
			assert.WithinDuration(t, time.Now(), e.Timestamp, time.Minute)
			require.NoError(t, tx.Commit())
			assert.Equal(t, 1, pending(t, o), "only the valid event is stored")
		})
	}
}
