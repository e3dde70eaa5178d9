package gossip_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gossipbus/gossip/gossip"
)

type UserCreated struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func Example() {
	bus, err := gossip.NewEventBus(nil) // in process
	if err != nil {
		panic(err)
	}
	done := make(chan struct{})
	_, err = bus.Subscribe("user_service.user.created", gossip.Typed(
		func(ctx context.Context, e *gossip.Event, u UserCreated) error {
			fmt.Printf("welcome, %s (%s)\n", u.Name, e.Type)
			close(done)
			return nil
		}), gossip.Group("email_service"))
	if err != nil {
		panic(err)
	}
	err = bus.Publish(context.Background(),
		gossip.NewEvent("user_service.user.created", UserCreated{ID: "u1", Name: "Alice"}))
	if err != nil {
		panic(err)
	}
	<-done
	_ = bus.Shutdown(context.Background())
	// Output: welcome, Alice (user_service.user.created)
}

// Dead letters are ordinary events: subscribe to them, inspect them, replay
// them.
func ExampleDeadLetterType() {
	bus, _ := gossip.NewEventBus(nil)
	defer bus.Shutdown(context.Background())

	letters := make(chan *gossip.Event, 1)
	_, _ = bus.Subscribe(gossip.DeadLetterType("billing", "order.placed"), func(ctx context.Context, e *gossip.Event) error {
		letters <- e
		return nil
	})
	_, _ = bus.Subscribe("order.placed", func(ctx context.Context, e *gossip.Event) error {
		return gossip.Permanent(errors.New("card declined"))
	}, gossip.Group("billing"))

	_ = bus.Publish(context.Background(), gossip.NewEvent("order.placed", map[string]int{"total": 42}))
	letter := <-letters
	info, _ := gossip.DeadLetterInfo(letter)
	fmt.Println(letter.Type)
	fmt.Println(info.OriginalType, info.Deliveries, info.Error)
	// Output:
	// dead_letter.billing.order.placed
	// order.placed 1 card declined
}

// Events of one key run one at a time, in publish order, while different
// keys run in parallel on the subscription's workers.
func ExampleOrderedByKey() {
	bus, _ := gossip.NewEventBus(nil)
	defer bus.Shutdown(context.Background())

	var mu sync.Mutex
	var wg sync.WaitGroup
	steps := map[string][]string{}
	_, _ = bus.Subscribe("order.>", func(ctx context.Context, e *gossip.Event) error {
		defer wg.Done()
		mu.Lock()
		defer mu.Unlock()
		steps[e.Key()] = append(steps[e.Key()], string(e.Type))
		return nil
	}, gossip.Group("shipping"), gossip.Workers(8), gossip.OrderedByKey())

	var events []*gossip.Event
	for _, step := range []gossip.EventType{"order.created", "order.paid", "order.shipped"} {
		for _, id := range []string{"order-1", "order-2"} {
			events = append(events, gossip.NewEvent(step, nil).WithKey(id))
		}
	}
	wg.Add(len(events))
	_ = bus.Publish(context.Background(), events...)
	wg.Wait()
	fmt.Println("order-1:", steps["order-1"])
	fmt.Println("order-2:", steps["order-2"])
	// Output:
	// order-1: [order.created order.paid order.shipped]
	// order-2: [order.created order.paid order.shipped]
}

// An event a handler publishes with its ctx carries the handled event's
// correlation and its ID as the cause, with no code in the handler.
func ExampleEvent_CorrelationID() {
	bus, _ := gossip.NewEventBus(nil)
	defer bus.Shutdown(context.Background())

	got := make(chan *gossip.Event, 1)
	_, _ = bus.Subscribe("order.placed", func(ctx context.Context, e *gossip.Event) error {
		return bus.Publish(ctx, gossip.NewEvent("invoice.created", nil)) // the handler's ctx
	})
	_, _ = bus.Subscribe("invoice.created", func(ctx context.Context, e *gossip.Event) error {
		got <- e
		return nil
	})
	placed := gossip.NewEvent("order.placed", nil)
	_ = bus.Publish(context.Background(), placed)
	invoice := <-got
	fmt.Println("correlation is the order:", invoice.CorrelationID() == placed.ID)
	fmt.Println("caused by the order:", invoice.CausationID() == placed.ID)
	// Output:
	// correlation is the order: true
	// caused by the order: true
}

// Two services' members of one group, one active at a time: the first holds
// the group's lease and handles its events; the second stands by and takes
// over when the first leaves. With OrderedByKey this keeps per-key order
// across several processes.
func ExampleExclusive() {
	// Two buses on one named broker stand for two processes.
	first, _ := gossip.NewEventBus(&gossip.Config{Driver: "memory://billing-example"})
	second, _ := gossip.NewEventBus(&gossip.Config{Driver: "memory://billing-example"})
	defer second.Shutdown(context.Background())

	handled := make(chan string, 2)
	member := func(name string) gossip.Handler {
		return func(ctx context.Context, e *gossip.Event) error {
			handled <- name + " handled " + e.Key()
			return nil
		}
	}
	opts := []gossip.SubscribeOption{gossip.Group("billing"), gossip.OrderedByKey(), gossip.Exclusive(time.Second)}
	a, _ := first.Subscribe("invoice.due", member("first"), opts...)
	b, _ := second.Subscribe("invoice.due", member("second"), opts...)
	fmt.Println("first active:", a.Active(), "second active:", b.Active())

	_ = first.Publish(context.Background(), gossip.NewEvent("invoice.due", nil).WithKey("customer-1"))
	fmt.Println(<-handled)

	_ = first.Shutdown(context.Background())      // hands the lease over
	poll := time.NewTicker(10 * time.Millisecond) // the standby bids every lease/3
	for !b.Active() {
		<-poll.C
	}
	poll.Stop()
	_ = second.Publish(context.Background(), gossip.NewEvent("invoice.due", nil).WithKey("customer-1"))
	fmt.Println(<-handled)
	// Output:
	// first active: true second active: false
	// first handled customer-1
	// second handled customer-1
}
