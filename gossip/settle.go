package gossip

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
)

// settler makes every call gossip makes on a driver subscription besides
// Stop and Close: acks and releases in batches, nacks, keep-alives. Once
// the subscription is closed (or Shutdown gave up on it) it calls nothing.
type settler struct {
	s *Subscription

	gate      sync.RWMutex // calls hold it shared; close takes it to end them
	closed    bool
	gaveUp    atomic.Bool
	calls     context.Context // cancelled when Shutdown gives up
	endCalls  context.CancelFunc
	bound     boundCalls
	acks      coalescer
	releases  coalescer
	heldMu    sync.Mutex
	held      map[*heldDelivery]struct{}
	keepEvery time.Duration
}

// heldDelivery is a delivery gossip holds (being handled, or waiting for an
// in-process retry) on a transport that needs it kept alive.
type heldDelivery struct {
	d    driver.Delivery
	last time.Time // when it was received or last kept alive
}

func (st *settler) init(s *Subscription) {
	st.s = s
	st.calls, st.endCalls = context.WithCancel(context.Background())
	st.acks.send = func(ds []driver.Delivery) {
		st.call("ack", ds, func(ctx context.Context) error { return s.acker.Ack(ctx, ds) })
	}
	st.releases.send = func(ds []driver.Delivery) {
		st.call("hand-back", ds, func(ctx context.Context) error { return s.releaser.Release(ctx, ds) })
	}
	if s.keeper != nil {
		st.held = map[*heldDelivery]struct{}{}
		st.keepEvery = max(s.bus.cfg.AckWait/3, 10*time.Millisecond)
	}
}

// call runs f on the driver unless the subscription is closed, and logs
// its error.
func (st *settler) call(what string, ds []driver.Delivery, f func(ctx context.Context) error) {
	st.gate.RLock()
	defer st.gate.RUnlock()
	if st.closed || st.gaveUp.Load() {
		return
	}
	if err := f(st.bound.context(st.calls, st.s.bus.cfg.DialTimeout)); err != nil && st.calls.Err() == nil {
		st.s.bus.logger.Warn("gossip: "+what+" failed; the transport redelivers the events after its ack wait",
			"pattern", string(st.s.pattern), "group", st.s.cfg.group, "events", len(ds), "first_id", ds[0].ID, "error", err)
	}
}

func (st *settler) ack(d driver.Delivery) {
	if st.s.acker != nil {
		st.acks.add(d)
	}
}

func (st *settler) release(ds ...driver.Delivery) { st.releases.add(ds...) }

func (st *settler) nack(d driver.Delivery, delay time.Duration) {
	ds := []driver.Delivery{d}
	st.call("nack", ds, func(ctx context.Context) error { return st.s.nacker.Nack(ctx, ds, delay) })
}

// abandon stops every later call (and ends those under way); abandoned
// reports it. close does the same once the subscription is closed, after
// waiting for the calls under way.
func (st *settler) abandon()        { st.gaveUp.Store(true); st.endCalls() }
func (st *settler) abandoned() bool { return st.gaveUp.Load() }
func (st *settler) close() {
	st.gate.Lock()
	st.closed = true
	st.gate.Unlock()
	st.endCalls()
}

// hold registers d for keep-alive, where the transport needs it, until
// unhold. It records d in h, or in a new heldDelivery when h is nil; a
// worker passes the one it reuses for every delivery it handles.
func (st *settler) hold(h *heldDelivery, d driver.Delivery) *heldDelivery {
	if h == nil {
		h = new(heldDelivery)
	}
	*h = heldDelivery{d: d, last: time.Now()}
	if st.held != nil {
		st.heldMu.Lock()
		st.held[h] = struct{}{}
		st.heldMu.Unlock()
	}
	return h
}

func (st *settler) unhold(h *heldDelivery) {
	if st.held != nil {
		st.heldMu.Lock()
		delete(st.held, h)
		st.heldMu.Unlock()
	}
}

// keepAlive tells the transport, every third of the ack wait, which held
// deliveries are still being worked on, until the workers are done.
func (st *settler) keepAlive() {
	t := time.NewTicker(st.keepEvery)
	defer t.Stop()
	var due []driver.Delivery
	for {
		select {
		case <-st.s.done:
			return
		case now := <-t.C:
			due = due[:0]
			st.heldMu.Lock()
			for h := range st.held {
				if now.Sub(h.last) >= st.keepEvery {
					h.last = now
					due = append(due, h.d)
				}
			}
			st.heldMu.Unlock()
			if len(due) > 0 {
				st.call("keep-alive", due, func(ctx context.Context) error { return st.s.keeper.KeepAlive(ctx, due) })
			}
		}
	}
}

// boundCalls bounds settling calls in time without a timer per call: calls
// share a context with a deadline, replaced by a new one when less than half
// of the limit is left. So each call has between half the limit and the
// limit (Config.DialTimeout), and a busy subscription makes a timer every
// half limit rather than one per ack.
type boundCalls struct {
	mu       sync.Mutex
	ctx      context.Context
	cancel   context.CancelFunc // of ctx; it ends by itself at its deadline
	deadline time.Time
}

func (bc *boundCalls) context(parent context.Context, limit time.Duration) context.Context {
	now := time.Now()
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if bc.ctx == nil || bc.deadline.Sub(now) < limit/2 {
		// The old context may still serve a call: it is left to its deadline.
		bc.deadline = now.Add(limit)
		bc.ctx, bc.cancel = context.WithDeadline(parent, bc.deadline)
	}
	return bc.ctx
}

// coalescer joins calls without a goroutine of its own: a caller that finds
// no call under way sends the queue, and keeps sending what others queued
// meanwhile until it is empty; the others return at once. So a busy
// subscription makes one call per round trip, and once its workers have
// returned every queued delivery was sent.
type coalescer struct {
	send  func([]driver.Delivery) // must not keep its argument
	mu    sync.Mutex
	busy  bool
	queue []driver.Delivery
	spare []driver.Delivery
}

func (b *coalescer) add(ds ...driver.Delivery) {
	b.mu.Lock()
	b.queue = append(b.queue, ds...)
	if b.busy {
		b.mu.Unlock()
		return
	}
	b.busy = true
	for len(b.queue) > 0 {
		ds := b.queue
		b.queue, b.spare = b.spare[:0], nil
		b.mu.Unlock()
		b.send(ds)
		clear(ds)
		b.mu.Lock()
		b.spare = ds[:0]
	}
	b.busy = false
	b.mu.Unlock()
}

// redeliveries are in-process retries, for transports without a Nacker:
// timers that put a failed delivery back before the workers.
type redeliveries struct {
	s        *Subscription
	ch       chan driver.Delivery
	mu       sync.Mutex
	pending  int // scheduled or being handled
	chDone   bool
	drained  bool // the Deliveries channel is closed
	stopping bool
	timers   map[*time.Timer]*heldDelivery
}

func (r *redeliveries) stopped() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.stopping }

// after schedules d's redelivery with its attempt counted. It schedules
// nothing and reports false when the caller must run d again at once: the
// subscription stopped on an in-process transport and its workers are
// leaving (the retries channel is closed: nothing would take d from it).
func (r *redeliveries) after(d driver.Delivery, delay time.Duration) (scheduled bool) {
	d.Attempt++
	r.mu.Lock()
	if r.chDone && r.s.releaser == nil && !r.s.settle.abandoned() {
		r.mu.Unlock()
		return false
	}
	r.pending++
	if r.stopping {
		r.mu.Unlock()
		r.settleStopped(d)
		return true
	}
	h := r.s.settle.hold(nil, d)
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		r.mu.Lock()
		_, mine := r.timers[t]
		delete(r.timers, t)
		r.mu.Unlock()
		if mine {
			r.s.settle.unhold(h)
			r.ch <- d
		}
	})
	r.timers[t] = h
	r.mu.Unlock()
	return true
}

// stop ends the waiting: a retry goes back to the group where the
// transport can take it, is handled at once in process, or is dropped when
// Shutdown gave up.
func (r *redeliveries) stop() {
	r.mu.Lock()
	r.stopping = true
	var ds []driver.Delivery
	for t, h := range r.timers {
		if t.Stop() {
			delete(r.timers, t)
			r.s.settle.unhold(h)
			ds = append(ds, h.d)
		}
	}
	r.mu.Unlock()
	r.settleStopped(ds...)
}

// settleStopped disposes of retries after stop.
func (r *redeliveries) settleStopped(ds ...driver.Delivery) {
	if len(ds) == 0 {
		return
	}
	switch {
	case r.s.settle.abandoned():
		for _, d := range ds {
			r.s.notHandled(d)
		}
		if r.s.order != nil {
			r.s.order.dropKeys(ds)
		}
	case r.s.releaser != nil:
		r.s.settle.release(ds...)
		if r.s.order != nil {
			r.s.order.dropKeys(ds) // after them: what waited behind them goes back in order
		}
	default:
		go func() { // handled before the workers stop
			for _, d := range ds {
				r.ch <- d
			}
		}()
		return
	}
	r.mu.Lock()
	r.pending -= len(ds)
	r.closeIfDone()
	r.mu.Unlock()
}

// deliveriesClosed notes that the driver sends nothing more.
func (r *redeliveries) deliveriesClosed() {
	r.mu.Lock()
	r.drained = true
	r.closeIfDone()
	r.mu.Unlock()
}

// done notes that a redelivery was handled.
func (r *redeliveries) done() {
	r.mu.Lock()
	r.pending--
	r.closeIfDone()
	r.mu.Unlock()
}

func (r *redeliveries) closeIfDone() {
	if r.drained && r.pending == 0 && !r.chDone {
		r.chDone = true
		close(r.ch)
	}
}
