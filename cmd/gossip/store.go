package main

import (
	"context"
	"errors"
	"time"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/driver"
)

// errNothingStored is the answer of the commands that read what a
// transport stores, on one that stores nothing.
var errNothingStored = errors.New("this transport stores nothing (memory, NATS core and Redis Pub/Sub keep no events): " +
	"dead letters exist only as they are published; watch them with 'gossip tail dead_letter.>'")

// stored is an event as the transport holds it.
type stored struct {
	Msg    *driver.Message
	Err    error     // why Msg could not be read, when it could not
	Stored time.Time // when the transport stored it
	ref    any       // where it is: a stream sequence, a Redis stream key and entry ID
}

// groupState is one consumer group on one pattern (NATS: a durable
// consumer; Redis: a consumer group on one type's stream).
type groupState struct {
	Group     string    `json:"group"`
	Pattern   string    `json:"pattern"`
	Pending   int64     `json:"pending"`         // stored, not yet delivered to the group; -1 unknown
	Unacked   int64     `json:"unacked"`         // delivered, not yet acknowledged
	Oldest    time.Time `json:"oldest,omitzero"` // the oldest event pending or unacknowledged (zero: none)
	Consumers int       `json:"consumers"`       // members connected
}

// store reads and changes what a transport holds.
type store interface {
	// deadLetters calls fn with each stored dead letter, oldest first
	// (per stream on Redis), until fn returns false.
	deadLetters(ctx context.Context, fn func(stored) bool) error
	// remove deletes one stored event.
	remove(ctx context.Context, s stored) error
	// groups reports every consumer group.
	groups(ctx context.Context) ([]groupState, error)
	// forget removes every stored event of type t.
	forget(ctx context.Context, t string) error
}

// storeOf returns the store of conn; false when the transport stores
// nothing.
func storeOf(conn driver.Conn) (store, bool) {
	if s, ok := natsStoreOf(conn); ok {
		return s, true
	}
	if s, ok := redisStoreOf(conn); ok {
		return s, true
	}
	return nil, false
}

// openStore opens the transport without creating anything (see
// openExisting) and returns its store, with the bus the caller shuts down.
func (c *cli) openStore(ctx context.Context) (*gossip.EventBus, store, error) {
	bus, conn, err := c.openExisting(ctx)
	if err != nil {
		return nil, nil, err
	}
	st, ok := storeOf(conn)
	if !ok {
		c.shutdown(bus)
		return nil, nil, errNothingStored
	}
	return bus, st, nil
}
