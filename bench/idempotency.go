package main

import (
	"context"
	"fmt"
	"time"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
)

// idempotencyScenarios measure middleware.Idempotent's cost per event on
// each transport's claim store: typed events, one per Publish, to one group
// member with the bus's default workers. The "raw" column is gossip
// without the middleware, the "gossip" column the same with it (every
// event a new ID: a Claim and a Complete each). Watermill's Deduplicator
// keeps IDs in one process only, so it has no matching row.
func idempotencyScenarios(ne *natsEnv, re *redisEnv) []*Scenario {
	row := func(name, chart string, events int, url func(run int) string, cleanup func(), serverCPU func() time.Duration) *Scenario {
		return &Scenario{
			Name: "idempotency: " + name + ", without / with the middleware", Typed: true, Params: Params{Events: events},
			Cleanup: cleanup, ServerCPU: serverCPU,
			Impls: [nImpl]Impl{
				{Label: "gossip " + chart, Open: openIdempotent(url, false)},
				{Label: "gossip " + chart + " + Idempotent", Open: openIdempotent(url, true)},
				{Label: "—", Note: "Watermill's Deduplicator is in-process only"},
			},
		}
	}
	s := []*Scenario{
		row("in-process", "memory", 200_000, func(run int) string { return fmt.Sprintf("memory://idem%d", run) }, nil, nil),
		row("JetStream", "nats", 5_000, func(run int) string { return fmt.Sprintf("%s?prefix=gi%d", ne.url, run) }, ne.cleanup, ne.cpu),
	}
	if re != nil {
		s = append(s, row("Redis Streams", "redis", 6_000,
			func(run int) string { return fmt.Sprintf("%s?prefix=gi%d&maxlen=-1", re.srv.URL, run) }, re.cleanup, re.srv.CPU))
	}
	return s
}

// openIdempotent opens a publishing bus and a subscribing bus (a group of
// one member), the subscriber with middleware.Idempotent on a claim store
// of its transport when idem is set.
func openIdempotent(url func(run int) string, idem bool) Opener {
	return func(ctx context.Context, run int, sh Shape, recv Receiver) (Pipe, error) {
		if sh != (Shape{}) {
			return nil, errNotApplicable
		}
		newBus := func() (*gossip.EventBus, error) {
			return gossip.NewEventBus(&gossip.Config{Driver: url(run), Source: "bench", Workers: gossipWorkers})
		}
		pub, err := newBus()
		if err != nil {
			return nil, err
		}
		p := &gossipPipe{pub: pub}
		sub, err := newBus()
		if err != nil {
			p.Close()
			return nil, err
		}
		p.subs = append(p.subs, sub)
		opts := []gossip.SubscribeOption{gossip.Group("g")}
		if idem {
			claims, err := sub.Claims(ctx, "bench", 10*time.Minute)
			if err != nil {
				p.Close()
				return nil, err
			}
			opts = append(opts, gossip.WithMiddleware(middleware.Idempotent(claims, middleware.IdempotencyOptions{})))
		}
		handler := gossip.Typed(func(_ context.Context, _ *gossip.Event, v Payload) error {
			recv(nil, v.Seq)
			return nil
		})
		if _, err := sub.Subscribe(benchType, handler, opts...); err != nil {
			p.Close()
			return nil, err
		}
		return gossipValuePipe{p}, nil
	}
}
