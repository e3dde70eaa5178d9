// Command batching shows a batch handler: page views are written to a store
// in batches of up to 50, or every 100ms, and acknowledged together only
// when the write succeeds.
//
//	go run ./examples/batching [-driver nats://... | redis://...]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/gossipbus/gossip/examples/internal/transport"
	"github.com/gossipbus/gossip/gossip"
)

type PageView struct {
	Path string `json:"path"`
	User string `json:"user"`
}

const pageViewed gossip.EventType = "web.page.viewed"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "batching:", err)
		os.Exit(1)
	}
}

func run() error {
	driverFlag := flag.String("driver", "memory", `transport: "memory", "nats" (embedded server), "redis", or a URL`)
	n := flag.Int("n", 230, "page views to publish")
	flag.Parse()
	dsn, stop, err := transport.Resolve(*driverFlag, "example")
	if err != nil {
		return err
	}
	defer stop()

	bus, err := gossip.NewEventBus(&gossip.Config{Driver: dsn, Source: "web"})
	if err != nil {
		return err
	}
	defer bus.Shutdown(context.Background())

	var mu sync.Mutex
	stored := 0
	all := make(chan struct{})
	failedOnce := false
	_, err = bus.SubscribeBatch(pageViewed, 50, 100*time.Millisecond, func(ctx context.Context, events []*gossip.Event) error {
		views := make([]PageView, 0, len(events))
		for _, e := range events {
			var v PageView
			if err := e.Decode(&v); err != nil {
				return gossip.Permanent(err)
			}
			views = append(views, v)
		}
		mu.Lock()
		defer mu.Unlock()
		if !failedOnce && len(views) == 50 {
			failedOnce = true
			fmt.Printf("store write of %d views failed: the whole batch will be redelivered\n", len(views))
			return errors.New("store unavailable")
		}
		stored += len(views)
		fmt.Printf("stored a batch of %3d views (total %d)\n", len(views), stored)
		if stored == *n {
			close(all)
		}
		return nil
	}, gossip.Group("analytics"))
	if err != nil {
		return err
	}

	for i := range *n {
		v := PageView{Path: fmt.Sprintf("/products/%d", i%7), User: fmt.Sprintf("user-%d", i%13)}
		if err := bus.Publish(context.Background(), gossip.NewEvent(pageViewed, v)); err != nil {
			return err
		}
	}
	select {
	case <-all:
		fmt.Printf("all %d views stored\n", *n)
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("timed out")
	}
}
