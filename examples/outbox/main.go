// Command outbox shows what the transactional outbox is for: a service
// that dies right after its database commit still gets its event out.
//
//	go run ./examples/outbox                                     # SQLite in a temp dir, memory bus
//	go run ./examples/outbox -db postgres://127.0.0.1:5432/test  # PostgreSQL
//	go run ./examples/outbox -driver redis://127.0.0.1:6379/0    # any transport
//
// The order service runs as a child process: it writes an order row and
// its shop.order.placed event in one transaction, commits, and is killed
// (SIGKILL) before its relay publishes anything. The row and the event are
// both in the database. The service starts again: its relay finds the
// committed event and publishes it, and the shipping service (an
// idempotent consumer) handles it once. Without the outbox, the order
// would exist and nobody would ever be told.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gossipbus/gossip/examples/internal/transport"
	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/outbox"
	"github.com/gossipbus/gossip/outbox/dburl"
)

// OrderPlaced is the payload of shop.order.placed.
type OrderPlaced struct {
	OrderID string `json:"order_id"`
	Item    string `json:"item"`
}

const orderPlaced gossip.EventType = "shop.order.placed"

const (
	ordersTable = "outbox_example_orders"
	outboxTable = "outbox_example_outbox"
	childEnv    = "GOSSIP_OUTBOX_EXAMPLE_CHILD" // the database the child writes to
)

func main() {
	var err error
	if dsn := os.Getenv(childEnv); dsn != "" {
		err = placeOrderAndDie(dsn)
	} else {
		err = run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "outbox:", err)
		os.Exit(1)
	}
}

func run() error {
	driverFlag := flag.String("driver", "memory", `transport: "memory", "nats" (embedded server), "redis", or a URL`)
	dbFlag := flag.String("db", "", `database: "sqlite:///path/to/file.db" or "postgres://127.0.0.1:5432/test" (default: SQLite in a new temporary directory)`)
	timeout := flag.Duration("timeout", 10*time.Second, "how long to wait for the event")
	flag.Parse()
	dbURL := *dbFlag
	if dbURL == "" {
		dir, err := os.MkdirTemp("", "gossip-outbox-example-")
		if err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(dir) }()
		dbURL = "sqlite://" + filepath.Join(dir, "shop.db")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	// 1. The order service places an order and dies right after the commit.
	orderID := "o-" + strings.ToLower(gossip.NewID()[32:])
	if err := crash(ctx, dbURL, orderID); err != nil {
		return err
	}

	db, _, err := dburl.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	ob, err := outbox.New(db, outbox.Options{Table: outboxTable, Source: "order_service"})
	if err != nil {
		return err
	}
	var orders int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+ordersTable+" WHERE id = "+placeholder(ob, 1), orderID).Scan(&orders); err != nil {
		return err
	}
	pending, err := ob.Pending(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("[database]         order %s: %d row; outbox: %d event pending\n", orderID, orders, pending)

	// 2. The shipping service listens; the order service starts again.
	return restart(ctx, *driverFlag, ob, orderID, *timeout)
}

// crash runs the order service's first life in a child process, which
// places the order and is killed.
func crash(ctx context.Context, dbURL, orderID string) error {
	child := exec.CommandContext(ctx, os.Args[0])
	child.Env = append(os.Environ(), childEnv+"="+dbURL, "ORDER_ID="+orderID)
	child.Stdout, child.Stderr = os.Stdout, os.Stderr
	err := child.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		return fmt.Errorf("the order service should have been killed; it ended with %v", err)
	}
	fmt.Println("[order_service]    killed (SIGKILL) after the commit, before its relay published")
	return nil
}

// restart starts the shipping service and the order service's second
// life, whose relay publishes what the first committed, and waits until the
// order's event was handled and the outbox is empty.
func restart(ctx context.Context, driverFlag string, ob *outbox.Outbox, orderID string, timeout time.Duration) error {
	dsn, stop, err := transport.Resolve(driverFlag, "outbox-example")
	if err != nil {
		return err
	}
	defer stop()
	quiet := slog.New(slog.DiscardHandler)
	shippingBus, err := gossip.NewEventBus(&gossip.Config{Driver: dsn, Source: "shipping_service", Logger: quiet})
	if err != nil {
		return err
	}
	defer func() { _ = shippingBus.Shutdown(context.Background()) }()
	shipped := make(chan string, 1)
	seen := idempotent{ids: map[string]bool{}}
	_, err = shippingBus.Subscribe(orderPlaced, gossip.Typed(func(_ context.Context, e *gossip.Event, o OrderPlaced) error {
		if !seen.first(e.ID) {
			fmt.Printf("[shipping_service] duplicate of event %s dropped\n", e.ID)
			return nil
		}
		fmt.Printf("[shipping_service] shipping %s for order %s (event %s)\n", o.Item, o.OrderID, e.ID)
		if o.OrderID == orderID {
			shipped <- e.ID
		}
		return nil
	}), gossip.Group("shipping_service"))
	if err != nil {
		return err
	}

	orderBus, err := gossip.NewEventBus(&gossip.Config{Driver: dsn, Source: "order_service", Logger: quiet})
	if err != nil {
		return err
	}
	defer func() { _ = orderBus.Shutdown(context.Background()) }()
	relay, err := ob.NewRelay(orderBus, outbox.RelayOptions{Logger: quiet, PollInterval: 100 * time.Millisecond})
	if err != nil {
		return err
	}
	fmt.Println("[order_service]    restarted: its relay publishes what committed")
	rctx, stopRelay := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := relay.Run(rctx); err != nil {
			fmt.Fprintln(os.Stderr, "relay:", err)
		}
	}()
	defer func() { stopRelay(); wg.Wait() }()

	select {
	case <-shipped:
	case <-ctx.Done():
		return fmt.Errorf("the order's event was not handled within %v", timeout)
	}
	for {
		n, err := ob.Pending(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	fmt.Println("[database]         outbox: 0 events pending: the order's event went out once")
	return nil
}

// placeOrderAndDie is the order service's first life: the order row and
// its event in one transaction, then SIGKILL.
func placeOrderAndDie(dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, _, err := dburl.Open(ctx, dsn)
	if err != nil {
		return err
	}
	ob, err := outbox.New(db, outbox.Options{Table: outboxTable, Source: "order_service"})
	if err != nil {
		return err
	}
	if err := ob.CreateSchema(ctx); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+ordersTable+" (id TEXT PRIMARY KEY, item TEXT NOT NULL)"); err != nil {
		return err
	}
	order := OrderPlaced{OrderID: os.Getenv("ORDER_ID"), Item: "a teapot"}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	q := "INSERT INTO " + ordersTable + " (id, item) VALUES (" + placeholder(ob, 1) + ", " + placeholder(ob, 2) + ")"
	if _, err := tx.ExecContext(ctx, q, order.OrderID, order.Item); err != nil {
		return err
	}
	e := gossip.NewEvent(orderPlaced, order).WithMetadata(outbox.KeyMetadata, order.OrderID)
	if err := ob.Publish(ctx, tx, e); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	fmt.Printf("[order_service]    order %s placed: row and event %s committed in one transaction\n", order.OrderID, e.ID)
	return syscall.Kill(os.Getpid(), syscall.SIGKILL) // dies before any relay runs
}

func placeholder(ob *outbox.Outbox, n int) string {
	if ob.Dialect() == outbox.Postgres {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}

// idempotent remembers the event IDs a consumer handled.
type idempotent struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (i *idempotent) first(id string) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.ids[id] {
		return false
	}
	i.ids[id] = true
	return true
}
