// Package testdriver is a transport that tests drive by hand, for what a
// real one cannot be made to do on cue (report drops, deliver a given
// Delivery).
package testdriver

import (
	"context"
	"sync"

	"github.com/gossipbus/gossip/gossip/driver"
)

// Conn is a driver.Conn the test drives. Each field is optional.
type Conn struct {
	// Specs receives each subscription's spec, so that the test can call
	// its Dropped as an at-most-once transport does for a slow consumer.
	Specs chan driver.SubscribeSpec
	// Deliveries feeds every subscription (they share it); without it a
	// subscription delivers nothing.
	Deliveries chan driver.Delivery
	// Published receives every message published; without it they are
	// discarded.
	Published chan *driver.Message
}

// Name is the transport's name, as a bus reports it.
func (c *Conn) Name() string { return "test" }

func (c *Conn) Publish(_ context.Context, ms []*driver.Message) error {
	if c.Published != nil {
		for _, m := range ms {
			c.Published <- m
		}
	}
	return nil
}

func (c *Conn) Subscribe(_ context.Context, spec driver.SubscribeSpec) (driver.Subscription, error) {
	if c.Specs != nil {
		c.Specs <- spec
	}
	ch := c.Deliveries
	if ch == nil {
		ch = make(chan driver.Delivery)
	}
	return &subscription{ch: ch}, nil
}

func (c *Conn) Close(context.Context) error { return nil }

type subscription struct {
	ch   chan driver.Delivery
	once sync.Once
}

func (s *subscription) Deliveries() <-chan driver.Delivery { return s.ch }
func (s *subscription) Stop(context.Context) error {
	s.once.Do(func() { close(s.ch) })
	return nil
}
func (s *subscription) Close(context.Context) error { return nil }
