package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	_ "github.com/gossipbus/gossip/drivers/nats"
	"github.com/gossipbus/gossip/drivers/nats/natsserver"
	_ "github.com/gossipbus/gossip/drivers/redis"
	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/middleware"
	"github.com/gossipbus/gossip/outbox"
	"github.com/gossipbus/gossip/outbox/dburl"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every wait for something asynchronous.
const waitLimit = 15 * time.Second

var quiet = slog.New(slog.DiscardHandler)

// postgresURL is the PostgreSQL the tests use.
func postgresURL() string {
	if u := os.Getenv("GOSSIP_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// database is one of the databases every test runs on.
type database struct {
	name string
	// dsn opens it with dburl.Open: a fresh SQLite file per test, the
	// shared PostgreSQL.
	dsn func(t *testing.T) string
}

var databases = []database{
	{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "outbox.db") }},
	{"postgres", func(t *testing.T) string { requirePostgres(t); return postgresURL() }},
}

var (
	pgOnce sync.Once
	pgErr  error
)

// requirePostgres skips the test, loudly, when no PostgreSQL answers; in
// CI (CI=true) it fails it instead.
func requirePostgres(t *testing.T) {
	t.Helper()
	pgOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		db, _, err := dburl.Open(ctx, postgresURL())
		if err == nil {
			_ = db.Close()
		}
		pgErr = err
	})
	if pgErr == nil {
		return
	}
	msg := fmt.Sprintf("*** NO POSTGRESQL at %s (%v): the PostgreSQL outbox tests are SKIPPED; set GOSSIP_POSTGRES_URL", "GOSSIP_POSTGRES_URL or 127.0.0.1:5432", pgErr)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: PostgreSQL is required)")
	}
	fmt.Fprintln(os.Stderr, msg)
	t.Skip(msg)
}

// openDB opens dsn, closed when the test ends.
func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	db, _, err := dburl.Open(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// randomName is a name no other test run uses.
func randomName(prefix string) string {
	return fmt.Sprintf("%s_%x", prefix, rand.Uint64()&0xffffffffff)
}

// newOutbox makes an outbox on a new table of its own in db, dropped when
// the test ends.
func newOutbox(t *testing.T, db *sql.DB) *outbox.Outbox {
	t.Helper()
	return newOutboxTable(t, db, randomName("outbox_test"))
}

func newOutboxTable(t *testing.T, db *sql.DB, table string) *outbox.Outbox {
	t.Helper()
	o, err := outbox.New(db, outbox.Options{Table: table, Source: "outbox-test"})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	require.NoError(t, o.CreateSchema(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		_, _ = db.ExecContext(ctx, "DROP TABLE IF EXISTS "+table)
		if o.Dialect() == outbox.Postgres {
			_, _ = db.ExecContext(ctx, "DROP FUNCTION IF EXISTS "+table+"_notify()")
		}
	})
	return o
}

// write stores events in one committed transaction (or a rolled-back one
// when commit is false).
func write(t *testing.T, o *outbox.Outbox, commit bool, events ...*gossip.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	tx, err := o.DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, o.Publish(ctx, tx, events...))
	if commit {
		require.NoError(t, tx.Commit())
	} else {
		require.NoError(t, tx.Rollback())
	}
}

// pending counts the rows neither sent nor set aside.
func pending(t *testing.T, o *outbox.Outbox) int {
	t.Helper()
	var n int
	require.NoError(t, o.DB().QueryRow("SELECT count(*) FROM "+o.Table()+" WHERE sent_at IS NULL AND dead_at IS NULL").Scan(&n))
	return n
}

// eventuallyPending waits until n rows are pending: a relay marks rows
// sent just after a consumer may have seen them.
func eventuallyPending(t *testing.T, o *outbox.Outbox, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return pending(t, o) == n }, waitLimit, 10*time.Millisecond, "want %d rows pending", n)
}

// newBus opens a bus on driver, shut down when the test ends.
func newBus(t *testing.T, driver string, cfg gossip.Config) *gossip.EventBus {
	t.Helper()
	cfg.Driver = driver
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	bus, err := gossip.NewEventBus(&cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		require.NoError(t, bus.Shutdown(ctx))
	})
	return bus
}

// transport is a bus URL factory: each call is a namespace of its own on
// one transport, which every bus opened with that URL shares.
type transport struct {
	name string
	url  func(t *testing.T) string
}

var transports = []transport{
	{"memory", func(*testing.T) string { return "memory://" + randomName("outbox") }},
	{"redis", func(t *testing.T) string { return redisURL(t) + "?prefix=" + randomName("outbox") }},
	{"nats", func(t *testing.T) string { return natsURL(t) + "?prefix=" + randomName("outbox") }},
}

// shortDedup is url with, on NATS, a JetStream duplicate window of 100ms
// (the least JetStream takes) instead of 2 minutes: shorter than any relay
// lease in these tests, so a row re-sent after a lease ran out reaches the
// consumer there too, and its idempotency middleware is what drops it.
func shortDedup(tr transport, url string) string {
	if tr.name == "nats" {
		return url + "&duplicates=100ms"
	}
	return url
}

// redisURL is GOSSIP_REDIS_URL, else 127.0.0.1:6379 when it answers; the
// test skips without one, or fails in CI.
func redisURL(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("GOSSIP_REDIS_URL"); u != "" {
		return u
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:6379", time.Second); err == nil {
		_ = c.Close()
		return "redis://127.0.0.1:6379/0"
	}
	msg := "*** NO REDIS: set GOSSIP_REDIS_URL or run Redis on 127.0.0.1:6379; the Redis outbox tests are SKIPPED"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// natsURL is GOSSIP_NATS_URL, else an embedded server for the test.
func natsURL(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("GOSSIP_NATS_URL"); u != "" {
		return u
	}
	srv, err := natsserver.Start(natsserver.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	return srv.URL()
}

// runRelay runs a relay until the test ends.
func runRelay(t *testing.T, r *outbox.Relay) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(waitLimit):
			t.Errorf("relay %s did not stop within %v", r.Name(), waitLimit)
		}
	})
}

func newRelay(t *testing.T, o *outbox.Outbox, bus *gossip.EventBus, opts outbox.RelayOptions) *outbox.Relay {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 50 * time.Millisecond
	}
	r, err := o.NewRelay(bus, opts)
	require.NoError(t, err)
	return r
}

// consumer records what a subscription gets. handle is a plain handler:
// every delivery runs it. idempotent wraps the same body in the
// idempotency middleware, on a claim store of the bus's transport, and
// counts deliveries outside it: deliveries is what the transport
// delivered, runs what the handler body ran, so a test sees a duplicate
// that arrived and was dropped.
type consumer struct {
	mu         sync.Mutex
	deliveries map[string]int           // deliveries of each ID by the transport
	runs       map[string]int           // runs of the handler body per ID
	events     map[string]*gossip.Event // the copy the body ran first
	order      []*gossip.Event          // first runs, in order
	changed    chan struct{}            // signalled on each delivery and run
}

func newConsumer() *consumer {
	return &consumer{deliveries: map[string]int{}, runs: map[string]int{}, events: map[string]*gossip.Event{}, changed: make(chan struct{}, 1)}
}

// handle counts a delivery and runs the body.
func (c *consumer) handle(ctx context.Context, e *gossip.Event) error {
	return c.delivered(c.body)(ctx, e)
}

// idempotent returns the body behind middleware.Idempotent on a claim
// store of bus's transport (memory, Redis, NATS KV), deliveries counted
// outside the middleware.
func (c *consumer) idempotent(t *testing.T, bus *gossip.EventBus) gossip.Handler {
	t.Helper()
	store, err := bus.Claims(t.Context(), "outbox-test", 10*time.Minute)
	require.NoError(t, err)
	return gossip.Chain(c.delivered, middleware.Idempotent(store, middleware.IdempotencyOptions{}))(c.body)
}

// delivered is the outermost middleware: it counts what the transport
// delivered.
func (c *consumer) delivered(next gossip.Handler) gossip.Handler {
	return func(ctx context.Context, e *gossip.Event) error {
		c.mu.Lock()
		c.deliveries[e.ID]++
		c.mu.Unlock()
		c.signal()
		return next(ctx, e)
	}
}

// body is the handler's work: it counts its runs per ID.
func (c *consumer) body(_ context.Context, e *gossip.Event) error {
	c.mu.Lock()
	c.runs[e.ID]++
	if c.events[e.ID] == nil {
		c.events[e.ID] = e
		c.order = append(c.order, e)
	}
	c.mu.Unlock()
	c.signal()
	return nil
}

func (c *consumer) signal() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// waitUntil waits until cond (called under c.mu) holds.
func (c *consumer) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.changed:
		case <-deadline:
			t.Fatalf("%s: not within %v", what, waitLimit)
		}
	}
}

// waitFor waits until the body ran for every id.
func (c *consumer) waitFor(t *testing.T, ids ...string) {
	t.Helper()
	c.waitUntil(t, fmt.Sprintf("%d events handled", len(ids)), func() bool {
		for _, id := range ids {
			if c.events[id] == nil {
				return false
			}
		}
		return true
	})
}

// waitDelivered waits until the transport delivered id n times.
func (c *consumer) waitDelivered(t *testing.T, id string, n int) {
	t.Helper()
	c.waitUntil(t, fmt.Sprintf("%d deliveries of %s", n, id), func() bool { return c.deliveries[id] >= n })
}

// count is the number of deliveries of id.
func (c *consumer) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deliveries[id]
}

// ran is the number of runs of the handler body for id.
func (c *consumer) ran(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs[id]
}

func (c *consumer) get(id string) *gossip.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.events[id]
}

func ids(events []*gossip.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// receive waits for ch to be closed or to yield, failing the test after
// waitLimit.
func receive(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLimit):
		t.Fatalf("nothing within %v", waitLimit)
	}
}
