package gossip

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
)

// exclusiveStore is the claim store in which the members of Exclusive
// groups hold their leases; exclusiveRetention bounds every lease.
const (
	exclusiveStore     = "gossip-exclusive"
	exclusiveRetention = maxExclusiveLease
)

// exclusive runs one member of an Exclusive group: it stands by until it
// holds the group's lease, then runs an ordinary subscription on the
// transport (a term) for as long as it keeps the lease, and stands by again
// when it loses it. The user's Subscription is a shell around it: its Done
// is closed when the member has stopped and its last term is closed.
type exclusive struct {
	s      *Subscription // the shell
	claims driver.Claims
	key    string
	owner  string
	lease  time.Duration
	open   func(ctx context.Context) (*Subscription, error) // a new term, not started

	quit     chan struct{} // closed by stop: no new term, end the current one
	quitOnce sync.Once

	started   atomic.Bool // run was started (Subscribe completed)
	abandoned atomic.Bool // Shutdown gave up waiting for the handlers

	mu     sync.Mutex
	term   *Subscription // the running term, nil while standing by
	active bool
}

// subscribeExclusive makes the shell of an Exclusive member. Its first bid
// for the lease happens before Subscribe returns: a member that wins it is
// live (subscribed on the transport) when Subscribe returns.
func (b *EventBus) subscribeExclusive(ctx context.Context, pattern EventType, sc subscribeConfig, handler Handler, drops *dropCounter) (*Subscription, error) {
	c, ok := b.conn.(driver.Claimer)
	if !ok {
		return nil, fmt.Errorf("%w (%s): Exclusive keeps its lease there", ErrClaimsUnsupported, b.Transport())
	}
	claims, err := c.Claims(ctx, exclusiveStore, exclusiveRetention)
	if err != nil {
		return nil, &opError{op: "subscribe " + string(pattern), err: err}
	}
	termCfg := sc
	termCfg.exclusive = 0
	shellCfg := sc // the shell runs no workers of its own
	shellCfg.byKey = false
	s := newSubscription(b, pattern, shellCfg, handler, nil)
	s.drops = drops
	x := &exclusive{
		s: s, claims: claims,
		key:   sc.group + "/" + string(pattern),
		owner: newClaimOwner(b.Source()),
		lease: sc.exclusive,
		quit:  make(chan struct{}),
		open: func(ctx context.Context) (*Subscription, error) {
			return b.subscribeTransport(ctx, pattern, termCfg, handler, drops)
		},
	}
	s.ex = x
	if err := x.bid(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// newClaimOwner names a lease holder uniquely: the service, then random
// bits.
func newClaimOwner(source string) string {
	if len(source) > 64 {
		source = source[:64]
	}
	return source + "/" + NewID()
}

// bid tries once to take the lease and, when it does, opens a term. An
// error is returned only when the transport refuses the subscription
// itself; a store that cannot be asked leaves the member standing by.
func (x *exclusive) bid(ctx context.Context) error {
	state, err := x.claims.Claim(ctx, x.key, x.owner, x.lease)
	if err != nil || state != driver.Claimed {
		if err != nil {
			x.s.bus.logger.Warn("gossip: exclusive member cannot reach its claim store; standing by",
				"pattern", x.s.pattern, "group", x.s.cfg.group, "error", err)
		}
		return nil
	}
	term, err := x.open(ctx)
	if err != nil {
		x.release()
		return err
	}
	x.mu.Lock()
	x.term, x.active = term, true
	x.mu.Unlock()
	return nil
}

// run is the member's life after Subscribe: hold the lease while a term
// runs, stand by otherwise, until stop.
func (x *exclusive) run() {
	defer close(x.s.done)
	retry := driver.Backoff{Initial: x.lease / 3, Max: x.lease}
	failures := 0
	for {
		x.mu.Lock()
		term := x.term
		x.mu.Unlock()
		if term != nil {
			if x.stopping() { // stop came while it bid
				x.discard(term)
				return
			}
			term.start()
			failures = 0
			x.hold(term)
			continue
		}
		if x.stopping() {
			return
		}
		// Standing by: bid again every lease/3 (with jitter), longer
		// after the transport refused a term.
		wait := retry.Delay(1)
		if failures > 0 {
			wait = retry.Delay(failures)
		}
		select {
		case <-x.quit:
			return
		case <-time.After(wait):
		}
		ctx, cancel := context.WithTimeout(context.Background(), x.lease/3)
		err := x.bid(ctx)
		cancel()
		if err != nil {
			failures++
			x.s.bus.logger.Warn("gossip: exclusive member holds the lease but cannot subscribe; handing it back",
				"pattern", x.s.pattern, "group", x.s.cfg.group, "error", err)
		}
	}
}

// hold keeps the lease of the running term, renewing it every lease/3,
// until the term is over. When the member stops, the term stops fetching
// and the lease is still renewed while its handlers finish. When the lease
// is lost, or cannot be renewed for two thirds of a lease (before it ends),
// the term stops and its handlers' ctx is cancelled. Then hold closes the
// term and hands the lease back, unless it was lost.
func (x *exclusive) hold(term *Subscription) {
	renewed := time.Now()
	tick := time.NewTicker(x.lease / 3)
	defer tick.Stop()
	held, stopped := true, false
	stop := func(cancelHandlers bool) {
		if !stopped {
			stopped = true
			ctx, cancel := context.WithTimeout(context.Background(), x.s.bus.cfg.DialTimeout)
			term.stop(ctx)
			cancel()
		}
		if cancelHandlers {
			term.cancel()
		}
	}
	quit, ended := x.quit, term.ctx.Done()
wait:
	for {
		select {
		case <-quit:
			quit = nil
			stop(false)
			continue
		case <-term.done:
			break wait
		case <-ended: // the workers are done, or Shutdown gave up on them
			if x.abandoned.Load() {
				break wait
			}
			ended = nil
			continue
		case <-tick.C:
		}
		if !held {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), x.lease/3)
		err := x.claims.Extend(ctx, x.key, x.owner, x.lease)
		cancel()
		switch {
		case err == nil:
			renewed = time.Now()
		case errors.Is(err, driver.ErrClaimNotHeld):
			held = false
			x.s.bus.logger.Warn("gossip: exclusive member lost its lease; standing by",
				"pattern", x.s.pattern, "group", x.s.cfg.group)
			stop(true)
		case time.Since(renewed) >= x.lease*2/3 && !stopped:
			// Stop before the lease ends: another member may take it then.
			x.s.bus.logger.Warn("gossip: exclusive member cannot renew its lease; standing by",
				"pattern", x.s.pattern, "group", x.s.cfg.group, "error", err)
			stop(true)
		}
	}
	stop(false)
	ctx, cancel := context.WithTimeout(context.Background(), x.s.bus.cfg.DialTimeout)
	term.close(ctx)
	cancel()
	x.mu.Lock()
	x.term, x.active = nil, false
	x.mu.Unlock()
	if held {
		x.release()
	}
}

// discard closes a term that never started (the member stopped while it
// bid) and hands the lease back.
func (x *exclusive) discard(term *Subscription) {
	ctx, cancel := context.WithTimeout(context.Background(), x.s.bus.cfg.DialTimeout)
	defer cancel()
	term.stop(ctx)
	term.close(ctx)
	x.mu.Lock()
	x.term, x.active = nil, false
	x.mu.Unlock()
	x.release()
}

func (x *exclusive) release() {
	ctx, cancel := context.WithTimeout(context.Background(), max(x.lease/3, time.Second))
	defer cancel()
	if err := x.claims.Release(ctx, x.key, x.owner); err != nil && !errors.Is(err, driver.ErrClaimNotHeld) {
		x.s.bus.logger.Warn("gossip: exclusive member could not hand its lease back; it ends on its own",
			"pattern", x.s.pattern, "group", x.s.cfg.group, "lease", x.lease, "error", err)
	}
}

func (x *exclusive) stopping() bool {
	select {
	case <-x.quit:
		return true
	default:
		return false
	}
}

// stop ends the member: no new term; the running one stops fetching at
// once and ends once its handlers are done.
func (x *exclusive) stop(ctx context.Context) error {
	x.quitOnce.Do(func() { close(x.quit) })
	x.mu.Lock()
	term := x.term
	x.mu.Unlock()
	if term != nil {
		return term.stop(ctx)
	}
	return nil
}

// abandon gives up on the running term (Shutdown's ctx ended).
func (x *exclusive) abandon() {
	x.abandoned.Store(true)
	x.quitOnce.Do(func() { close(x.quit) })
	x.mu.Lock()
	term := x.term
	x.mu.Unlock()
	if term != nil {
		term.abandon()
	}
}

// close closes the running term at once if the member has not ended yet
// (Shutdown gave up waiting for it, or the bus closed while Subscribe ran).
func (x *exclusive) close(ctx context.Context) error {
	if !x.started.Load() { // run never ran: close the first term here
		x.mu.Lock()
		term := x.term
		x.term, x.active = nil, false
		x.mu.Unlock()
		if term == nil {
			return nil
		}
		err := term.close(ctx)
		x.release()
		return err
	}
	select {
	case <-x.s.done:
		return nil
	default:
	}
	x.mu.Lock()
	term := x.term
	x.mu.Unlock()
	if term != nil {
		return term.close(ctx)
	}
	return nil
}

// Active reports whether the subscription is handling events: always for
// an ordinary subscription until it stops; for an Exclusive member, while
// it holds its group's lease.
func (s *Subscription) Active() bool {
	if s.ex == nil {
		select {
		case <-s.done:
			return false
		default:
			return true
		}
	}
	s.ex.mu.Lock()
	defer s.ex.mu.Unlock()
	return s.ex.active
}
