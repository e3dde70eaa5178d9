package outbox_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/outbox"
	"github.com/gossipbus/gossip/outbox/dburl"
)

type User struct {
	Email string `json:"email"`
}

// A user row and its user.created event commit in one transaction; the
// relay publishes the event once the transaction committed.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "outbox-example")
	defer func() { _ = os.RemoveAll(dir) }()
	db, _, err := dburl.Open(ctx, "sqlite://"+filepath.Join(dir, "app.db"))
	if err != nil {
		panic(err)
	}
	defer func() { _ = db.Close() }()
	if _, err := db.ExecContext(ctx, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)"); err != nil {
		panic(err)
	}
	ob, err := outbox.New(db, outbox.Options{})
	if err != nil {
		panic(err)
	}
	if err := ob.CreateSchema(ctx); err != nil {
		panic(err)
	}

	bus, err := gossip.NewEventBus(&gossip.Config{Source: "user_service"})
	if err != nil {
		panic(err)
	}
	defer func() { _ = bus.Shutdown(ctx) }()
	welcomed := make(chan struct{})
	_, err = bus.Subscribe("user_service.user.created", gossip.Typed(func(_ context.Context, e *gossip.Event, u User) error {
		fmt.Println("welcome,", u.Email)
		close(welcomed)
		return nil
	}))
	if err != nil {
		panic(err)
	}

	// The business write and its event, in one transaction.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		panic(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO users (email) VALUES (?)", "ada@example.com"); err != nil {
		panic(err)
	}
	if err := ob.Publish(ctx, tx, gossip.NewEvent("user_service.user.created", User{Email: "ada@example.com"})); err != nil {
		panic(err)
	}
	if err := tx.Commit(); err != nil {
		panic(err)
	}

	relay, err := ob.NewRelay(bus, outbox.RelayOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	rctx, stop := context.WithCancel(ctx)
	stopped := make(chan error)
	go func() { stopped <- relay.Run(rctx) }()
	<-welcomed
	stop()
	if err := <-stopped; err != nil {
		panic(err)
	}
	// Output: welcome, ada@example.com
}
