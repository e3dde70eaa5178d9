package main

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gossipbus/gossip/gossip"
)

// orderingKeys is the number of ordering keys the keyed rows spread their
// events over, and orderingWorkers the subscription's workers.
const orderingKeys, orderingWorkers = 1000, 8

// orderingScenarios are the rows of issue 13's ordering target: events
// over 1,000 keys in a gossip.OrderedByKey subscription with Workers(8)
// (the gossip column) against the same events without keys in a plain
// subscription (the raw column, here gossip itself), typed, on memory,
// JetStream and Redis Streams. The target is keyed within 20 % of unkeyed.
func orderingScenarios(ne *natsEnv, re *redisEnv) []*Scenario {
	target := Target{MinRatio: 0.8}
	row := func(name string, p Params, open func(keyed bool) Opener, cleanup func(), cpu func() time.Duration) *Scenario {
		return &Scenario{Name: name, Typed: true, Params: p, Target: target, Cleanup: cleanup, ServerCPU: cpu,
			Impls: [nImpl]Impl{
				{Label: "gossip without keys", Open: open(false)},
				{Label: "gossip OrderedByKey", Open: open(true)},
				{Label: "—", Note: "Watermill has no ordering keys"},
			}}
	}
	memory := func(keyed bool) Opener {
		return func(ctx context.Context, run int, sh Shape, recv Receiver) (Pipe, error) {
			return openOrdered(fmt.Sprintf("memory://keys%d", run), false, keyed, recv)
		}
	}
	jetstream := func(keyed bool) Opener {
		return func(ctx context.Context, run int, sh Shape, recv Receiver) (Pipe, error) {
			if !haveNATSDriver {
				return nil, errPending
			}
			return openOrdered(fmt.Sprintf("%s?prefix=gk%d", ne.url, run), true, keyed, recv)
		}
	}
	s := []*Scenario{
		row("ordering keys: in-process, 1,000 keys, Workers(8) (raw column: gossip without keys)",
			Params{Events: 300_000}, memory, nil, nil),
		row("ordering keys: JetStream, batches of 100, 1,000 keys, Workers(8) (raw column: gossip without keys)",
			Params{Events: 60_000, Batch: 100}, jetstream, ne.cleanup, ne.cpu),
	}
	if re != nil {
		streams := func(keyed bool) Opener {
			return func(ctx context.Context, run int, sh Shape, recv Receiver) (Pipe, error) {
				if !haveRedisDriver {
					return nil, errPending
				}
				return openOrdered(fmt.Sprintf("%s?prefix=gk%d&maxlen=-1", re.srv.URL, run), true, keyed, recv)
			}
		}
		s = append(s, row("ordering keys: Redis Streams, batches of 100, 1,000 keys, Workers(8) (raw column: gossip without keys)",
			Params{Events: 60_000, Batch: 100}, streams, re.cleanup, re.srv.CPU))
	}
	return s
}

// openOrdered opens a publisher bus and a subscriber bus on driverURL,
// the subscriber with Workers(8) in a group where the transport is
// durable; keyed publishes each event with one of 1,000 keys, in turn,
// and subscribes with OrderedByKey.
func openOrdered(driverURL string, group, keyed bool, recv Receiver) (Pipe, error) {
	newBus := func() (*gossip.EventBus, error) {
		return gossip.NewEventBus(&gossip.Config{Driver: driverURL, Source: "bench"})
	}
	pub, err := newBus()
	if err != nil {
		return nil, err
	}
	p := &keyedPipe{gossipPipe: &gossipPipe{pub: pub}, keyed: keyed}
	sub, err := newBus()
	if err != nil {
		p.Close()
		return nil, err
	}
	p.subs = append(p.subs, sub)
	opts := []gossip.SubscribeOption{gossip.Workers(orderingWorkers)}
	if group {
		opts = append(opts, gossip.Group("g0"))
	}
	if keyed {
		opts = append(opts, gossip.OrderedByKey())
	}
	_, err = sub.Subscribe(benchType, gossip.Typed(func(_ context.Context, _ *gossip.Event, v Payload) error {
		recv(nil, v.Seq)
		return nil
	}), opts...)
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

var orderingKeyNames = func() []string {
	keys := make([]string, orderingKeys)
	for i := range keys {
		keys[i] = "order-" + strconv.Itoa(i)
	}
	return keys
}()

// keyedPipe publishes Payload values, each with the next of the 1,000
// keys when keyed.
type keyedPipe struct {
	*gossipPipe
	keyed bool
	next  atomic.Uint64
}

func (p *keyedPipe) PublishValues(ctx context.Context, batch []Payload) error {
	events := make([]*gossip.Event, len(batch))
	for i, v := range batch {
		events[i] = gossip.NewEvent(benchType, v)
		if p.keyed {
			events[i].WithKey(orderingKeyNames[p.next.Add(1)%orderingKeys])
		}
	}
	return p.pub.Publish(ctx, events...)
}
