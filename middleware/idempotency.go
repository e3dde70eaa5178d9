package middleware

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gossipbus/gossip/gossip"
	"github.com/gossipbus/gossip/gossip/driver"
)

// IdempotencyOptions configures Idempotent. The zero value works.
type IdempotencyOptions struct {
	// Key derives the idempotency key of an event (default IdempotencyKey).
	// Events with the same key run the handler at most once within the
	// store's retention. An empty key fails the event permanently (it is
	// dead-lettered with the reason).
	Key func(e *gossip.Event) string
	// Lease is how long a delivery holds its key while the handler runs
	// (default 30s); it is extended every third of it while the handler
	// runs, so it bounds how long a crashed member keeps the key from the
	// others, not how long a handler may take. It must be at most the
	// store's retention: a longer one fails every event permanently (a
	// dead letter wrapping gossip.ErrInvalidOption).
	Lease time.Duration
	// MaxWait bounds how long a delivery waits while another delivery of
	// the same key holds it (default 1 minute). When the other ends, the
	// waiting delivery acks without running the handler (the other
	// succeeded) or runs it (the other failed). After MaxWait it fails with
	// ErrInProgress and is redelivered later, which counts an attempt
	// towards MaxDeliveries.
	MaxWait time.Duration
}

// ErrInProgress is the error of a delivery that waited MaxWait for another
// delivery of the same key to end: it is retried like any failure.
var ErrInProgress = errors.New("middleware: another delivery of this key is still in progress")

// IdempotencyKey is Idempotent's default key: "<group>/<type>/<id>", the
// event's ID scoped by the consumer group that delivered it and its type
// (a dead letter keeps its event's ID under another type). A broadcast
// listener has the empty group: the event then runs once among all the
// broadcast listeners sharing the store, as a group would run it once
// among its members.
func IdempotencyKey(e *gossip.Event) string {
	return e.Group() + "/" + string(e.Type) + "/" + e.ID
}

// Idempotent returns middleware that runs the handler at most once per key
// (IdempotencyOptions.Key) within store's retention, across every member
// that uses a store of the same name, and across their restarts:
//
//   - A delivery first claims the key in store. When the key is done (an
//     earlier delivery succeeded), it acks without running the handler.
//   - While another delivery holds the key, it waits (with backoff, up to
//     MaxWait, never longer than ctx) and looks again: two deliveries of one
//     key never run the handler at the same time.
//   - When the handler fails, the claim is released, so the retry runs it;
//     the handler's error is returned as it is (Permanent stays permanent),
//     and a panic as a *gossip.PanicError.
//   - When it succeeds, the key is completed: later duplicates ack at once.
//   - When the store cannot be reached, the delivery fails (and is retried
//     by the bus): the handler is never run, nor skipped, on a guess.
//   - While the handler runs, the lease is extended every Lease/3. If it
//     cannot be (the store was unreachable for two thirds of a lease, before
//     the lease ends, or another member took the key over), the handler's
//     ctx is cancelled with a cause wrapping gossip.ErrClaimNotHeld.
//
// If the store cannot record a success, the delivery fails: the event is
// redelivered and, once the lease has run out, runs again. At-least-once
// holds in every case; at-most-once holds while the store answers.
//
// Open the store with EventBus.Claims, one name per kind of work
// ("billing-charge"): handlers sharing a store and a key share claims.
// Retention should cover the window in which duplicates arrive (publisher
// retries, redeliveries, replays of a backlog).
func Idempotent(store gossip.ClaimStore, opts IdempotencyOptions) gossip.Middleware {
	if opts.Key == nil {
		opts.Key = IdempotencyKey
	}
	if opts.Lease <= 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = time.Minute
	}
	i := &idempotent{store: store, opts: opts,
		wait: driver.Backoff{Initial: 5 * time.Millisecond, Max: min(500*time.Millisecond, opts.Lease/2)}}
	return func(h gossip.Handler) gossip.Handler {
		return func(ctx context.Context, e *gossip.Event) error { return i.handle(ctx, e, h) }
	}
}

type idempotent struct {
	store gossip.ClaimStore
	opts  IdempotencyOptions
	wait  driver.Backoff
}

// settleTimeout bounds Complete and Release, which run even when the
// handler's ctx has ended.
const settleTimeout = 10 * time.Second

func (i *idempotent) handle(ctx context.Context, e *gossip.Event, h gossip.Handler) error {
	key := i.opts.Key(e)
	if key == "" {
		return gossip.Permanent(fmt.Errorf("middleware: empty idempotency key for event %s", e.ID))
	}
	owner := newOwner()
	state, err := i.claim(ctx, key, owner)
	if err != nil {
		return err
	}
	if state == gossip.Done {
		return nil
	}
	hctx, cancel := context.WithCancelCause(ctx)
	l := i.keep(ctx, cancel, key, owner)
	herr := run(hctx, e, h)
	l.stop()
	cancel(nil)
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer scancel()
	if herr != nil {
		if rerr := i.store.Release(sctx, key, owner); rerr != nil && !errors.Is(rerr, gossip.ErrClaimNotHeld) {
			return fmt.Errorf("%w (and releasing idempotency key %q failed: %v)", herr, key, rerr)
		}
		return herr
	}
	if err := i.store.Complete(sctx, key, owner); err != nil {
		return fmt.Errorf("middleware: the handler succeeded but idempotency key %q was not recorded as done (the event will be redelivered and may run again): %w", key, err)
	}
	return nil
}

// run calls h, turning a panic into a *gossip.PanicError, so that the
// claim is released (and the lease stops) whatever the handler does.
func run(ctx context.Context, e *gossip.Event, h gossip.Handler) (err error) {
	returned := false
	defer func() {
		if !returned {
			err = &gossip.PanicError{Value: recover(), Stack: debug.Stack()}
		}
	}()
	err = h(ctx, e)
	returned = true
	return err
}

// claim takes key, waiting while another owner holds it.
func (i *idempotent) claim(ctx context.Context, key, owner string) (gossip.ClaimState, error) {
	var deadline time.Time
	for attempt := 1; ; attempt++ {
		state, err := i.store.Claim(ctx, key, owner, i.opts.Lease)
		switch {
		case errors.Is(err, gossip.ErrInvalidOption):
			return 0, gossip.Permanent(fmt.Errorf("middleware: idempotency key %q: %w", key, err))
		case err != nil:
			return 0, fmt.Errorf("middleware: claim idempotency key %q: %w", key, err)
		case state != gossip.Busy:
			return state, nil
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(i.opts.MaxWait)
		} else if !time.Now().Before(deadline) {
			return 0, fmt.Errorf("%w: key %q, waited %v", ErrInProgress, key, i.opts.MaxWait)
		}
		if !i.wait.Wait(ctx, attempt) {
			return 0, fmt.Errorf("middleware: waiting for idempotency key %q held by another delivery: %w", key, ctx.Err())
		}
	}
}

// lease extends a held claim every third of its length until stopped.
type lease struct {
	i          *idempotent
	ctx        context.Context // for Extend: the delivery's values, not its cancellation
	cancel     context.CancelCauseFunc
	key, owner string

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
	lastOK  time.Time
}

func (i *idempotent) keep(ctx context.Context, cancel context.CancelCauseFunc, key, owner string) *lease {
	l := &lease{i: i, ctx: context.WithoutCancel(ctx), cancel: cancel, key: key, owner: owner, lastOK: time.Now()}
	l.mu.Lock()
	l.t = time.AfterFunc(i.opts.Lease/3, l.extend)
	l.mu.Unlock()
	return l
}

func (l *lease) extend() {
	d := l.i.opts.Lease
	ctx, cancel := context.WithTimeout(l.ctx, d/3)
	err := l.i.store.Extend(ctx, l.key, l.owner, d) // not under the lock: stop must not wait for it
	cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	now := time.Now()
	switch {
	case err == nil:
		l.lastOK = now
	case errors.Is(err, gossip.ErrClaimNotHeld):
		l.cancel(fmt.Errorf("middleware: idempotency lease on %q lost: %w", l.key, err))
		return
	case now.Sub(l.lastOK) >= d*2/3:
		// Give up before the lease ends, when another delivery may claim
		// the key: the handler must not run on beside it.
		l.cancel(fmt.Errorf("middleware: idempotency lease on %q not extended for %v (%w): %w", l.key, now.Sub(l.lastOK).Round(time.Millisecond), gossip.ErrClaimNotHeld, err))
		return
	}
	l.t.Reset(d / 3)
}

func (l *lease) stop() {
	l.mu.Lock()
	l.stopped = true
	l.t.Stop()
	l.mu.Unlock()
}

// Owners are "<random>-<n>": unique per delivery attempt in the process,
// and across processes.
var (
	ownerPrefix = func() string {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b) + "-"
	}()
	ownerSeq atomic.Uint64
)

func newOwner() string { return ownerPrefix + strconv.FormatUint(ownerSeq.Add(1), 10) }
