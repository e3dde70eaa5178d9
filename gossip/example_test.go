package gossip_test

import (
	"context"
	"errors"
	"fmt"

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
