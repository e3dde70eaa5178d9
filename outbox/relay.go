package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/driver"
)

// RelayOptions configure a Relay. The zero value works; every duration and
// count has a range, checked by Outbox.NewRelay (zero is the default).
type RelayOptions struct {
	// Name identifies the relay in its logs and, with a random suffix of
	// each relay's own, in the rows it claims (default: host name, process
	// ID and a random suffix). Relays given the same Name stay apart.
	Name string

	// BatchSize is the most rows claimed and published at once (default
	// 100; 1 to 10,000).
	BatchSize int

	// PollInterval is how often an idle relay looks for new rows (default
	// 500ms; 1ms to 1h). On PostgreSQL a trigger's NOTIFY wakes it at once
	// when rows commit; polling is the fallback.
	PollInterval time.Duration

	// PublishTimeout bounds each Publish of a batch (default 10s; 10ms to
	// 10 minutes). A Publish that runs out is a transport failure: the rows
	// stay and are retried.
	PublishTimeout time.Duration

	// Lease is how long claimed rows belong to this relay (default 30s;
	// longer than PublishTimeout, at most 24h). Rows of a relay that died
	// are claimed by another after it.
	Lease time.Duration

	// RetryBackoff is the wait after a failure (transport or database)
	// before the next try (default 100ms); it doubles after each failure in
	// a row, with ±20% jitter, up to MaxRetryBackoff (default 10s).
	// Range: 0 < RetryBackoff <= MaxRetryBackoff <= 1h.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration

	// Retention is how long sent rows are kept (default 0: deleted as soon
	// as they are sent; at most 1 year). Kept rows are purged in batches
	// of PurgeBatch (default 1000; 1 to 100,000), every Retention or every
	// minute, whichever is sooner.
	Retention  time.Duration
	PurgeBatch int

	// Logger receives the relay's diagnostics (default slog.Default()).
	Logger *slog.Logger

	// MeterProvider makes the relay's metrics (default: the global one).
	MeterProvider metric.MeterProvider
}

// Relay publishes an outbox's committed rows through an EventBus, oldest
// first, and marks them sent once Publish returned nil: once the transport
// holds them. Rows of one ordering key (KeyMetadata, else the event type)
// go out in the order they were written, also with several relays on one
// table. A relay that dies between Publish and marking re-sends those rows
// with their original IDs: delivery is at least once.
type Relay struct {
	o    *Outbox
	bus  *gossip.EventBus
	opts RelayOptions
	// owner is what the relay writes in the rows it claims: its Name and
	// a random suffix, so that relays given the same Name (one config in
	// several pods) never take each other's rows for their own.
	owner string
	log   *slog.Logger
	m     *relayMetrics

	// afterPublish, when set (tests), runs after a batch was published and
	// before it is marked sent.
	afterPublish func(ids []string)
}

// Ranges of the relay's options.
const (
	maxBatchSize  = 10_000
	maxPurgeBatch = 100_000
)

// NewRelay returns a relay publishing o's rows through bus. Start it with
// Run.
func (o *Outbox) NewRelay(bus *gossip.EventBus, opts RelayOptions) (*Relay, error) {
	if bus == nil {
		return nil, fmt.Errorf("%w: nil *gossip.EventBus", ErrInvalidOption)
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	r := &Relay{o: o, bus: bus, opts: opts, log: opts.Logger.With("outbox", o.table, "relay", opts.Name),
		owner: opts.Name + "/" + strconv.FormatUint(rand.Uint64(), 36)}
	m, err := newRelayMetrics(opts.MeterProvider, o.table)
	if err != nil {
		return nil, err
	}
	r.m = m
	return r, nil
}

func (ro *RelayOptions) setDefaults() error {
	if ro.Name == "" {
		host, _ := os.Hostname()
		ro.Name = host + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(rand.Uint64()&0xffffff, 16)
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&ro.PollInterval, 500*time.Millisecond)
	def(&ro.PublishTimeout, 10*time.Second)
	def(&ro.Lease, max(30*time.Second, 3*ro.PublishTimeout))
	def(&ro.RetryBackoff, 100*time.Millisecond)
	def(&ro.MaxRetryBackoff, max(10*time.Second, ro.RetryBackoff))
	if ro.BatchSize == 0 {
		ro.BatchSize = 100
	}
	if ro.PurgeBatch == 0 {
		ro.PurgeBatch = 1000
	}
	if ro.Logger == nil {
		ro.Logger = slog.Default()
	}
	checks := []struct {
		ok   bool
		rule string
	}{
		{ro.BatchSize >= 1 && ro.BatchSize <= maxBatchSize, "BatchSize: 1 to 10,000"},
		{ro.PurgeBatch >= 1 && ro.PurgeBatch <= maxPurgeBatch, "PurgeBatch: 1 to 100,000"},
		{ro.PollInterval >= time.Millisecond && ro.PollInterval <= time.Hour, "PollInterval: 1ms to 1h"},
		{ro.PublishTimeout >= 10*time.Millisecond && ro.PublishTimeout <= 10*time.Minute, "PublishTimeout: 10ms to 10 minutes"},
		{ro.Lease > ro.PublishTimeout && ro.Lease <= 24*time.Hour, "Lease: longer than PublishTimeout, at most 24h"},
		{ro.RetryBackoff > 0 && ro.RetryBackoff <= ro.MaxRetryBackoff && ro.MaxRetryBackoff <= time.Hour, "RetryBackoff: 0 < RetryBackoff <= MaxRetryBackoff <= 1h"},
		{ro.Retention >= 0 && ro.Retention <= 365*24*time.Hour, "Retention: 0 to 1 year"},
	}
	for _, c := range checks {
		if !c.ok {
			return fmt.Errorf("%w: %s", ErrInvalidOption, c.rule)
		}
	}
	return nil
}

// Name is the relay's name; the rows it claims hold it, then "/" and a
// suffix of this relay's own.
func (r *Relay) Name() string { return r.opts.Name }

// Run relays rows until ctx ends, then hands back the rows it claimed but
// did not send (another relay takes them at once) and returns nil. Failures
// of the transport or the database are logged and retried with backoff;
// Run returns an error only when the bus is shut down (wrapping
// gossip.ErrClosed). A row the bus refuses (invalid, too large) is set
// aside with its reason (see Outbox.Dead) and the rows behind it go on.
// Call Run once per Relay; run more relays (with distinct names) for more
// throughput or availability. On PostgreSQL Run keeps one connection of
// the pool for itself, LISTENing.
func (r *Relay) Run(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	var wg sync.WaitGroup
	lctx, stopListen := context.WithCancel(ctx)
	if r.o.st.listen != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.listen(lctx, wake)
		}()
	}
	unregister := r.m.observeLag(r.o)
	defer func() {
		stopListen()
		wg.Wait()
		unregister()
	}()

	failures := 0
	nextPurge := time.Now()
	var err error
	for ctx.Err() == nil {
		var n int
		n, err = r.relayBatch(ctx)
		if errors.Is(err, gossip.ErrClosed) || ctx.Err() != nil {
			break // stopping: no retry, no warning
		}
		var wait <-chan struct{}
		var delay time.Duration
		switch {
		case err != nil:
			failures++
			delay = driver.Backoff{Initial: r.opts.RetryBackoff, Max: r.opts.MaxRetryBackoff}.Delay(failures)
			r.log.LogAttrs(ctx, slog.LevelWarn, "outbox relay failed; retrying",
				slog.String("error", err.Error()), slog.Int("failures", failures), slog.Duration("backoff", delay))
		case n == r.opts.BatchSize:
			failures = 0 // more rows are waiting
		default:
			failures = 0
			delay, wait = r.opts.PollInterval, wake
		}
		if r.opts.Retention > 0 && !time.Now().Before(nextPurge) {
			r.purge(ctx)
			nextPurge = time.Now().Add(min(r.opts.Retention, time.Minute))
		}
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
			case <-t.C:
			case <-wait:
			}
			t.Stop()
		}
	}
	r.release()
	if errors.Is(err, gossip.ErrClosed) {
		return fmt.Errorf("gossip: outbox: relay %s: %w", r.opts.Name, err)
	}
	return nil
}

// release hands back the rows this relay claimed and did not send.
func (r *Relay) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.o.db.ExecContext(ctx, r.o.st.release, r.owner); err != nil {
		r.log.LogAttrs(ctx, slog.LevelWarn, "outbox relay could not release its claimed rows; they return when the lease ends",
			slog.String("error", err.Error()), slog.Duration("lease", r.opts.Lease))
	}
}

// purge deletes sent rows older than Retention, PurgeBatch at a time, at
// most ten batches a round.
func (r *Relay) purge(ctx context.Context) {
	for range 10 {
		var args []any
		if r.o.dialect == Postgres {
			args = []any{r.opts.Retention.Microseconds(), r.opts.PurgeBatch}
		} else {
			args = []any{time.Now().Add(-r.opts.Retention).UnixMicro(), r.opts.PurgeBatch}
		}
		res, err := r.o.db.ExecContext(ctx, r.o.st.purge, args...)
		if err != nil {
			if ctx.Err() == nil {
				r.log.LogAttrs(ctx, slog.LevelWarn, "outbox purge failed", slog.String("error", err.Error()))
			}
			return
		}
		n, err := res.RowsAffected()
		r.m.purged.Add(ctx, n, r.m.attrs)
		if err != nil || n < int64(r.opts.PurgeBatch) {
			return
		}
	}
}
