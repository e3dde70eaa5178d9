package middleware_test

import (
	"context"
	"fmt"
	"time"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
)

// A payment published three times (a publisher retrying after a timeout)
// is charged once: the claim store of the bus's transport remembers, for a
// day, which events the "payments" group handled.
func ExampleIdempotent() {
	ctx := context.Background()
	bus, err := gossip.NewEventBus(&gossip.Config{Driver: "memory://example-idempotent"})
	if err != nil {
		panic(err)
	}
	defer bus.Shutdown(ctx)

	claims, err := bus.Claims(ctx, "billing-charge", 24*time.Hour)
	if err != nil {
		panic(err)
	}
	handled := make(chan string)
	_, err = bus.Subscribe("billing.payment.requested", func(ctx context.Context, e *gossip.Event) error {
		var amount int
		if err := e.Decode(&amount); err != nil {
			return err
		}
		if amount > 0 {
			fmt.Println("charged", amount)
		}
		handled <- e.ID
		return nil
	}, gossip.Group("payments"), gossip.Workers(1),
		gossip.WithMiddleware(middleware.Idempotent(claims, middleware.IdempotencyOptions{})))
	if err != nil {
		panic(err)
	}

	payment := gossip.NewEvent("billing.payment.requested", 42)
	for range 3 {
		if err := bus.Publish(ctx, payment); err != nil {
			panic(err)
		}
	}
	<-handled
	// One worker: the copies were acked without running before this
	// marker's turn came.
	if err := bus.Publish(ctx, gossip.NewEvent("billing.payment.requested", 0)); err != nil {
		panic(err)
	}
	<-handled
	// Output: charged 42
}
