package redis_test

import (
	"context"
	"fmt"
	"sync"

	_ "github.com/gossipbus/gossip/drivers/redis"
	"github.com/gossipbus/gossip/gossip"
)

// Invoice is the example's payload.
type Invoice struct {
	Number string `json:"number"`
	Cents  int    `json:"cents"`
}

// A service on Redis Streams: the accounting group handles each paid
// invoice once, however many instances of the service run. It needs a Redis
// on 127.0.0.1:6379.
func Example() {
	bus, err := gossip.NewEventBus(&gossip.Config{
		Driver: "redis://127.0.0.1:6379/0?prefix=example",
		Source: "billing",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bus.Shutdown(context.Background())

	handled := make(chan struct{})
	var once sync.Once
	_, err = bus.Subscribe("invoice.paid", gossip.Typed(func(ctx context.Context, e *gossip.Event, inv Invoice) error {
		fmt.Printf("%s paid: %d cents (delivery %d, via %s)\n", inv.Number, inv.Cents, e.Attempt(), bus.Transport())
		once.Do(func() { close(handled) })
		return nil
	}), gossip.Group("accounting"))
	if err != nil {
		fmt.Println(err)
		return
	}
	err = bus.Publish(context.Background(), gossip.NewEvent("invoice.paid", Invoice{Number: "A-17", Cents: 1250}))
	if err != nil {
		fmt.Println(err)
		return
	}
	<-handled
	// Output: A-17 paid: 1250 cents (delivery 1, via redis)
}
