// Command outbox shows what the transactional outbox is for: a service
// that dies right after its database commit still gets its event out, and
// a relay that dies after publishing sends it again, which the consumer's
// idempotency middleware drops.
//
//	go run ./examples/outbox                                     # SQLite in a temp dir, memory bus
//	go run ./examples/outbox -db postgres://127.0.0.1:5432/test  # PostgreSQL
//	go run ./examples/outbox -driver redis://127.0.0.1:6379/0    # any transport
//
// The order service runs as a child process: it writes an order row and
// its shop.order.placed event in one transaction, commits, and is killed
// (SIGKILL) before its relay publishes anything. The row and the event are
// both in the database. Without the outbox, the order would exist and
// nobody would ever be told. The service starts again: its relay finds the
// committed event and publishes it, the shipping service handles it, and
// the service dies again before the relay marks the row sent. In its third
// life, once the dead relay's lease ran out, its relay sends the event
// again with the same ID; the shipping service's handler runs behind
// middleware.Idempotent (on a claim store of the bus's transport), which
// acks the second copy without shipping twice. On NATS JetStream the
// stream's duplicate window drops the copy even before that.
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
	"github.com/gossipbus/gossip/middleware"
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

// The second life's relay dies right after the transport took the event:
// its lease must run out before the third life's relay takes the row over.
const (
	deadRelayLease   = time.Second
	deadRelayTimeout = 300 * time.Millisecond
)

// restart starts the shipping service and the order service's second
// life, whose relay publishes what the first committed and dies before
// marking it sent; then its third life, whose relay sends the event again.
// It waits until the shipping service handled the event once and dropped
// the re-sent copy, and the outbox is empty.
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
	shipped, dropped := make(chan string, 1), make(chan string, 1)
	if err := subscribeShipping(ctx, shippingBus, orderID, shipped, dropped); err != nil {
		return err
	}

	// 2. The order service's second life: its relay publishes the event,
	// and the service dies before the relay marks the row sent. (A publish
	// middleware stands in for the crash: once the transport took the
	// event, the relay never returns, as if its process were gone; it
	// holds its lease on the row until the lease runs out.)
	published, dead := make(chan string, 1), make(chan struct{})
	secondLife, err := gossip.NewEventBus(&gossip.Config{Driver: dsn, Source: "order_service", Logger: quiet,
		PublishMiddleware: []gossip.PublishMiddleware{dieAfterPublish(published, dead)}})
	if err != nil {
		return err
	}
	defer func() { _ = secondLife.Shutdown(context.Background()) }()
	fmt.Println("[order_service]    restarted: its relay publishes what committed")
	stopSecond, err := startRelay(ctx, ob, secondLife, outbox.RelayOptions{Name: "order_service-2", Logger: quiet,
		PollInterval: 100 * time.Millisecond, Lease: deadRelayLease, PublishTimeout: deadRelayTimeout})
	if err != nil {
		return err
	}
	defer func() { close(dead); stopSecond() }()
	var eventID string
	for _, ch := range []chan string{published, shipped} {
		select {
		case eventID = <-ch:
		case <-ctx.Done():
			return fmt.Errorf("the order's event was not published and handled within %v", timeout)
		}
	}
	fmt.Printf("[order_service]    its relay published event %s; the service died before marking it sent\n", eventID)

	// 3. The third life: its relay takes the row over once the dead
	// relay's lease ran out, and sends the event again, with its ID.
	thirdLife, err := gossip.NewEventBus(&gossip.Config{Driver: dsn, Source: "order_service", Logger: quiet})
	if err != nil {
		return err
	}
	defer func() { _ = thirdLife.Shutdown(context.Background()) }()
	fmt.Printf("[order_service]    restarted again: its relay sends the row again once the dead relay's lease (%v) ran out\n", deadRelayLease)
	stopThird, err := startRelay(ctx, ob, thirdLife, outbox.RelayOptions{Name: "order_service-3", Logger: quiet, PollInterval: 100 * time.Millisecond})
	if err != nil {
		return err
	}
	defer stopThird()
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
	// The re-sent copy is on the transport: memory and Redis deliver it;
	// NATS JetStream drops it within its duplicate window (2 minutes by
	// default), by its ID, before any consumer sees it.
	select {
	case <-dropped:
		fmt.Printf("[database]         outbox: 0 events pending: event %s was delivered twice and handled once\n", eventID)
	case <-time.After(2 * time.Second):
		fmt.Printf("[database]         outbox: 0 events pending: the transport dropped the re-sent copy by its ID (JetStream's duplicate window); event %s was handled once\n", eventID)
	}
	return nil
}

// subscribeShipping subscribes the shipping service: its handler runs
// behind the idempotency middleware, on a claim store of the bus's own
// transport, so a re-sent copy of an event it handled is acked without
// running it. The outer middleware reports such a drop.
func subscribeShipping(ctx context.Context, bus *gossip.EventBus, orderID string, shipped, dropped chan<- string) error {
	store, err := bus.Claims(ctx, "shipping", 24*time.Hour)
	if err != nil {
		return err
	}
	ship := gossip.Typed(func(ctx context.Context, e *gossip.Event, o OrderPlaced) error {
		ran(ctx)
		fmt.Printf("[shipping_service] shipping %s for order %s (event %s)\n", o.Item, o.OrderID, e.ID)
		if o.OrderID == orderID {
			select {
			case shipped <- e.ID:
			default: // shipped twice: the output shows it
			}
		}
		return nil
	})
	_, err = bus.Subscribe(orderPlaced, ship, gossip.Group("shipping_service"),
		gossip.WithMiddleware(reportDrops(dropped), middleware.Idempotent(store, middleware.IdempotencyOptions{})))
	return err
}

type ranKey struct{}

// ran tells reportDrops that the handler ran for this delivery.
func ran(ctx context.Context) {
	if p, ok := ctx.Value(ranKey{}).(*bool); ok {
		*p = true
	}
}

// reportDrops prints a delivery that the idempotency middleware acked
// without running the handler.
func reportDrops(dropped chan<- string) gossip.Middleware {
	return func(next gossip.Handler) gossip.Handler {
		return func(ctx context.Context, e *gossip.Event) error {
			handled := new(bool)
			err := next(context.WithValue(ctx, ranKey{}, handled), e)
			if err == nil && !*handled {
				fmt.Printf("[shipping_service] event %s delivered again: dropped by the idempotency middleware, not shipped twice\n", e.ID)
				select {
				case dropped <- e.ID:
				default:
				}
			}
			return err
		}
	}
}

// dieAfterPublish is publish middleware that plays a crash: after the
// transport took the first batch, it reports the batch's first event ID and
// never returns until dead is closed, so the relay neither marks the row
// sent nor hands it back.
func dieAfterPublish(published chan<- string, dead <-chan struct{}) gossip.PublishMiddleware {
	var once sync.Once
	return func(next gossip.PublishFunc) gossip.PublishFunc {
		return func(ctx context.Context, events []*gossip.Event) error {
			if err := next(ctx, events); err != nil {
				return err
			}
			once.Do(func() {
				published <- events[0].ID
				<-dead
			})
			return nil
		}
	}
}

// startRelay runs a relay until the returned func is called.
func startRelay(ctx context.Context, ob *outbox.Outbox, bus *gossip.EventBus, opts outbox.RelayOptions) (stop func(), err error) {
	relay, err := ob.NewRelay(bus, opts)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := relay.Run(rctx); err != nil {
			fmt.Fprintln(os.Stderr, "relay:", err)
		}
	}()
	return func() { cancel(); wg.Wait() }, nil
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
