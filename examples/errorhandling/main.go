// Command errorhandling shows how gossip treats failing handlers: retries
// with backoff, permanent errors, dead letters, replaying them once the
// cause is fixed, and an idempotent handler that charges a payment once even
// when its event arrives again.
//
//	go run ./examples/errorhandling [-driver nats://... | redis://...]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gossipbus/gossip/examples/internal/transport"
	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
)

type Payment struct {
	OrderID string `json:"order_id"`
	Amount  int    `json:"amount"`
}

const paymentRequested gossip.EventType = "billing.payment.requested"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "errorhandling:", err)
		os.Exit(1)
	}
}

func run() error {
	driverFlag := flag.String("driver", "memory", `transport: "memory", "nats" (embedded server), "redis", or a URL`)
	flag.Parse()
	dsn, stop, err := transport.Resolve(*driverFlag, "example")
	if err != nil {
		return err
	}
	defer stop()

	bus, err := gossip.NewEventBus(&gossip.Config{
		Driver:          dsn,
		Source:          "billing",
		RetryBackoff:    20 * time.Millisecond,
		MaxRetryBackoff: 200 * time.Millisecond,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	defer bus.Shutdown(context.Background())
	bus.Use(middleware.Recovery())
	ctx := context.Background()

	// The charges the payment service made, by order: the idempotency
	// middleware must keep each at one, whatever arrives twice.
	var charges sync.Map // order ID → *atomic.Int32
	// The claim store lives on the bus's transport (memory, Redis keys, a
	// NATS KV bucket): every instance of the service shares it.
	claims, err := bus.Claims(ctx, "billing-charge", time.Hour)
	if err != nil {
		return err
	}
	// settled reports every delivery of the payments group once the
	// idempotency middleware is done with it, run or skipped.
	settled := make(chan string, 10)
	report := func(next gossip.Handler) gossip.Handler {
		return func(ctx context.Context, e *gossip.Event) error {
			err := next(ctx, e)
			if err == nil {
				select {
				case settled <- e.ID:
				default: // nobody is waiting yet
				}
			}
			return err
		}
	}

	var gatewayUp atomic.Bool
	handled := make(chan string, 10)
	letters := make(chan *gossip.Event, 10)

	// The payment service: a flaky gateway (retried), bad input (permanent).
	_, err = bus.Subscribe(paymentRequested, gossip.Typed(func(ctx context.Context, e *gossip.Event, p Payment) error {
		switch {
		case p.Amount <= 0:
			fmt.Printf("  %s attempt %d: amount %d is invalid → permanent, no retry\n", p.OrderID, e.Attempt(), p.Amount)
			return gossip.Permanent(fmt.Errorf("invalid amount %d", p.Amount))
		case p.OrderID == "o-flaky" && e.Attempt() < 3:
			fmt.Printf("  %s attempt %d: gateway timeout → retry with backoff\n", p.OrderID, e.Attempt())
			return errors.New("gateway timeout")
		case p.OrderID == "o-down" && !gatewayUp.Load():
			fmt.Printf("  %s attempt %d: gateway down\n", p.OrderID, e.Attempt())
			return errors.New("gateway down")
		}
		n, _ := charges.LoadOrStore(p.OrderID, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		fmt.Printf("  %s attempt %d: charged %d\n", p.OrderID, e.Attempt(), p.Amount)
		handled <- p.OrderID
		return nil
	}), gossip.Group("payments"), gossip.MaxDeliveries(3),
		// A failed attempt releases its claim, so the retry charges; a
		// success is remembered for an hour, so a copy is acked unrun.
		gossip.WithMiddleware(report, middleware.Idempotent(claims, middleware.IdempotencyOptions{})))
	if err != nil {
		return err
	}

	// An operator's view of the dead letters of the payments group.
	_, err = bus.Subscribe(gossip.DeadLetterType("payments", paymentRequested), func(ctx context.Context, e *gossip.Event) error {
		letters <- e
		return nil
	})
	if err != nil {
		return err
	}

	flaky := gossip.NewEvent(paymentRequested, Payment{OrderID: "o-flaky", Amount: 10})
	fmt.Println("publishing three payments")
	err = bus.Publish(ctx,
		flaky,
		gossip.NewEvent(paymentRequested, Payment{OrderID: "o-bad", Amount: -5}),
		gossip.NewEvent(paymentRequested, Payment{OrderID: "o-down", Amount: 30}),
	)
	if err != nil {
		return err
	}

	wait := func() error {
		select {
		case <-time.After(10 * time.Second):
			return errors.New("timed out")
		case id := <-handled:
			fmt.Println("✔ handled", id)
		case e := <-letters:
			info, _ := gossip.DeadLetterInfo(e)
			var p Payment
			_ = e.Decode(&p)
			fmt.Printf("✘ dead letter %s: %s after %d deliveries: %s\n", e.Type, p.OrderID, info.Deliveries, info.Error)
			if p.OrderID == "o-down" {
				fmt.Println("the gateway is back: replaying", p.OrderID)
				gatewayUp.Store(true)
				if err := bus.Publish(ctx, gossip.Replay(e)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	// o-flaky handled, o-bad and o-down dead-lettered, o-down replayed and handled.
	for range 4 {
		if err := wait(); err != nil {
			return err
		}
	}

	fmt.Println("the checkout service sends o-flaky's request again (a retried publish)")
	if err := bus.Publish(ctx, flaky); err != nil {
		return err
	}
	// The copy comes back settled without a charge, or (JetStream, whose
	// duplicate window drops a re-sent ID) never comes at all.
	timeout := time.After(2 * time.Second)
	for done := false; !done; {
		select {
		case id := <-settled:
			done = id == flaky.ID
		case <-timeout:
			done = true
		}
	}
	n, _ := charges.Load("o-flaky")
	fmt.Printf("o-flaky was charged %d time(s)\n", n.(*atomic.Int32).Load())
	return nil
}
