package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
)

// Every handler of the bus gets a deadline, retries in process, and turns
// panics into errors that are logged.
func Example() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, nil)) // Info: successes (Debug) are not shown
	bus, err := gossip.NewEventBus(&gossip.Config{
		Source: "checkout",
		Middleware: []gossip.Middleware{
			middleware.Logging(logger),
			middleware.Recovery(),
			middleware.Retry{MaxRetries: 2, InitialInterval: time.Millisecond}.Middleware(),
			middleware.Timeout(5 * time.Second),
		},
	})
	if err != nil {
		panic(err)
	}
	defer bus.Shutdown(context.Background())

	done := make(chan struct{})
	calls := 0
	_, err = bus.Subscribe("orders.created", func(ctx context.Context, e *gossip.Event) error {
		calls++
		if calls < 3 {
			return errors.New("database busy")
		}
		fmt.Println("order handled after", calls, "calls")
		close(done)
		return nil
	}, gossip.Workers(1))
	if err != nil {
		panic(err)
	}
	if err := bus.Publish(context.Background(), gossip.NewEvent("orders.created", nil)); err != nil {
		panic(err)
	}
	<-done
	// Output: order handled after 3 calls
}

func ExampleRecovery() {
	h := middleware.Recovery()(func(context.Context, *gossip.Event) error {
		panic("nil map")
	})

	err := h(context.Background(), gossip.NewEvent("orders.created", nil))
	var pe *gossip.PanicError
	fmt.Println(errors.As(err, &pe), pe.Value)
	fmt.Println(err)
	// Output:
	// true nil map
	// gossip: handler panicked: nil map
}

func ExampleLogging() {
	// Drop the attributes that change from run to run.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "duration" {
				return slog.Attr{}
			}
			return a
		},
	}))
	h := middleware.Logging(logger, middleware.LogMetadata("tenant"))(func(context.Context, *gossip.Event) error {
		return errors.New("stock service unavailable")
	})

	e := &gossip.Event{ID: "0190f0c4-0000-7000-8000-000000000001", Type: "orders.created", Source: "checkout"}
	_ = h(context.Background(), e.WithMetadata("tenant", "acme"))
	// Output:
	// level=WARN msg="gossip: handler failed" id=0190f0c4-0000-7000-8000-000000000001 type=orders.created source=checkout attempt=0 group="" correlation_id=0190f0c4-0000-7000-8000-000000000001 error="stock service unavailable" metadata.tenant=acme
}

func ExampleRetry_Middleware() {
	r := middleware.Retry{
		MaxRetries:      3,
		InitialInterval: time.Millisecond,
		OnRetry: func(_ context.Context, _ *gossip.Event, attempt int, err error) {
			fmt.Printf("retry %d after: %v\n", attempt, err)
		},
	}
	calls := 0
	h := r.Middleware()(func(context.Context, *gossip.Event) error {
		calls++
		if calls == 3 {
			return gossip.Permanent(errors.New("order not found"))
		}
		return errors.New("database busy")
	})

	err := h(context.Background(), gossip.NewEvent("orders.created", nil))
	fmt.Println(calls, "calls:", err)
	// Output:
	// retry 1 after: database busy
	// retry 2 after: database busy
	// 3 calls: order not found
}

func ExampleTimeout() {
	h := middleware.Timeout(10 * time.Millisecond)(func(ctx context.Context, _ *gossip.Event) error {
		select {
		case <-time.After(time.Minute): // slow work that honours ctx
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})

	fmt.Println(h(context.Background(), gossip.NewEvent("orders.created", nil)))
	// Output: context deadline exceeded
}

func ExampleFilter() {
	bus, err := gossip.NewEventBus(nil)
	if err != nil {
		panic(err)
	}
	defer bus.Shutdown(context.Background())

	done := make(chan struct{})
	onlyEU := middleware.Filter(middleware.And(
		middleware.HasMetadata("region", "eu"),
		middleware.Not(middleware.SourceIs("legacy")),
	))
	_, err = bus.Subscribe("orders.>", func(_ context.Context, e *gossip.Event) error {
		fmt.Println(e.Type, e.Metadata["region"])
		close(done)
		return nil
	}, gossip.WithMiddleware(onlyEU), gossip.Workers(1))
	if err != nil {
		panic(err)
	}
	err = bus.Publish(context.Background(),
		gossip.NewEvent("orders.created", nil).WithMetadata("region", "us"),
		gossip.NewEvent("orders.paid", nil).WithMetadata("region", "eu"))
	if err != nil {
		panic(err)
	}
	<-done
	// Output: orders.paid eu
}

func ExampleSetMetadata() {
	bus, err := gossip.NewEventBus(&gossip.Config{
		PublishMiddleware: []gossip.PublishMiddleware{middleware.SetMetadata("service_version", "1.4.2")},
	})
	if err != nil {
		panic(err)
	}
	defer bus.Shutdown(context.Background())

	done := make(chan struct{})
	_, err = bus.Subscribe("orders.created", func(_ context.Context, e *gossip.Event) error {
		fmt.Println("published by version", e.Metadata["service_version"])
		close(done)
		return nil
	})
	if err != nil {
		panic(err)
	}
	if err := bus.Publish(context.Background(), gossip.NewEvent("orders.created", nil)); err != nil {
		panic(err)
	}
	<-done
	// Output: published by version 1.4.2
}
