package gossip

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
)

// handlerKey marks the contexts handlers run with, by the bus running them:
// a handler may publish (chain an event) while its bus shuts down.
type handlerKey struct{}

// Subscription is a live subscription made by EventBus.Subscribe.
//
// It owns the lifecycle of its driver subscription: it runs the workers,
// decides retries, poison and dead letters, keeps held deliveries alive and
// settles them, and closes the driver subscription in one order: Stop (no
// more fetching), hand back what was never started, wait for the handlers,
// settle, Close. After Close it calls nothing on the driver.
type Subscription struct {
	bus     *EventBus
	pattern EventType
	cfg     subscribeConfig
	handler Handler
	ds      driver.Subscription
	backoff driver.Backoff

	// The transport's optional capabilities (nil when it lacks them).
	acker    driver.Acker
	nacker   driver.Nacker
	keeper   driver.KeepAliver
	releaser driver.Releaser

	ctx    context.Context // handlers' base context; cancelled when Shutdown gives up
	cancel context.CancelFunc

	workers sync.WaitGroup
	done    chan struct{}

	stopOnce  sync.Once
	closeOnce sync.Once
	closeErr  error

	ex *exclusive // an Exclusive member's terms; nil for others

	settle   settler // acks, releases and keep-alives, in batches
	redelive redeliveries
	order    *keyOrder    // OrderedByKey's dispatch, nil without it
	drops    *dropCounter // what an at-most-once transport discarded
}

func newSubscription(b *EventBus, pattern EventType, sc subscribeConfig, h Handler, ds driver.Subscription) *Subscription {
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), handlerKey{}, b))
	s := &Subscription{
		bus: b, pattern: pattern, cfg: sc, handler: h, ds: ds,
		backoff: driver.Backoff{Initial: sc.backoff, Max: sc.maxBackoff},
		ctx:     ctx, cancel: cancel,
		done: make(chan struct{}),
	}
	s.acker, _ = ds.(driver.Acker)
	s.nacker, _ = ds.(driver.Nacker)
	s.keeper, _ = ds.(driver.KeepAliver)
	s.releaser, _ = ds.(driver.Releaser)
	s.settle.init(s)
	s.redelive = redeliveries{s: s, ch: make(chan driver.Delivery, sc.workers), timers: map[*time.Timer]*heldDelivery{}}
	if sc.byKey {
		s.order = newKeyOrder(s)
	}
	return s
}

// Pattern is the event type or pattern the subscription matches.
func (s *Subscription) Pattern() EventType { return s.pattern }

// Group is the subscription's consumer group, "" for a broadcast listener.
func (s *Subscription) Group() string { return s.cfg.group }

// Done is closed once the subscription has stopped and its last handler has
// returned.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Unsubscribe stops the subscription: nothing new is fetched; handlers
// already running finish and settle; a group member hands the deliveries it
// fetched but never started back to the group at once; a broadcast
// listener in process handles what it had buffered first. It does not wait
// for the handlers (so a handler may unsubscribe itself); Done says when
// they are over. Unsubscribe is idempotent.
func (s *Subscription) Unsubscribe() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.bus.cfg.DialTimeout)
	defer cancel()
	err := s.stop(ctx)
	go func() { // Shutdown still sees the subscription until it is closed
		<-s.done
		s.close(context.Background())
		s.bus.forget(s)
	}()
	return err
}

// stop stops fetching and hands back what waits for a retry. The workers
// then drain the Deliveries channel (releasing or handling what is left)
// and return.
func (s *Subscription) stop(ctx context.Context) error {
	if s.ex != nil {
		return s.ex.stop(ctx)
	}
	var err error
	s.stopOnce.Do(func() {
		s.redelive.stop()
		ctx, cancel := context.WithTimeout(ctx, s.bus.cfg.DialTimeout)
		defer cancel()
		err = s.ds.Stop(ctx)
	})
	return err
}

// abandon gives up on the subscription when Shutdown's ctx ended: no handler
// starts any more, nothing is retried or settled; durable deliveries stay
// unacknowledged on the transport, in-process ones are dropped.
func (s *Subscription) abandon() {
	if s.ex != nil {
		s.ex.abandon()
		return
	}
	s.settle.abandon()
	s.cancel()
	s.redelive.stop()
}

// close closes the driver subscription once: the last call gossip makes on
// it.
func (s *Subscription) close(ctx context.Context) error {
	if s.ex != nil {
		return s.ex.close(ctx)
	}
	s.closeOnce.Do(func() {
		s.settle.close()
		s.closeErr = s.ds.Close(boundedContext(ctx, s.bus.cfg.DialTimeout))
		if s.drops != nil {
			s.drops.flush() // the driver reports no drop after Close
		}
	})
	return s.closeErr
}

func (s *Subscription) start() {
	if s.ex != nil {
		s.ex.started.Store(true)
		go s.ex.run()
		return
	}
	s.workers.Add(s.cfg.workers)
	for range s.cfg.workers {
		if s.order != nil {
			go s.workByKey()
		} else {
			go s.work()
		}
	}
	if s.keeper != nil {
		go s.settle.keepAlive()
	}
	go func() {
		s.workers.Wait()
		s.cancel()
		close(s.done)
	}()
}

func (s *Subscription) work() {
	defer s.workers.Done()
	var held *heldDelivery // what this worker handles, kept alive
	if s.keeper != nil {
		held = new(heldDelivery)
	}
	deliveries := s.ds.Deliveries()
	for {
		// A busy subscription takes its next delivery without a select
		// over both channels: one channel operation, not two locks.
		select {
		case d, ok := <-deliveries:
			if ok {
				s.dispatch(d, held)
				continue
			}
		default:
		}
		select {
		case d, ok := <-deliveries:
			if !ok {
				deliveries = nil
				s.redelive.deliveriesClosed()
				continue
			}
			s.dispatch(d, held)
		case d, ok := <-s.redelive.ch:
			if !ok {
				return
			}
			s.dispatch(d, held)
			s.redelive.done()
		}
	}
}

// dispatch handles a delivery, or, once the subscription stops, hands an
// unstarted one back to its group (or drops it when Shutdown gave up). It
// reports whether d waits for an in-process retry.
func (s *Subscription) dispatch(d driver.Delivery, held *heldDelivery) (retrying bool) {
	switch {
	case s.settle.abandoned():
		s.notHandled(d)
	case s.releaser != nil && s.redelive.stopped():
		s.settle.release(d)
	default:
		return s.handle(d, held)
	}
	return false
}

// notHandled leaves a delivery unsettled after Shutdown gave up: a durable
// transport keeps it; an in-process one loses it, which is logged.
func (s *Subscription) notHandled(d driver.Delivery) {
	if s.acker != nil {
		return
	}
	s.bus.logger.Warn("gossip: shutdown ended before the event was handled; it is dropped",
		"id", d.ID, "type", d.Type, "group", s.cfg.group, "deliveries", d.Attempt)
}

// handle runs the handler for one delivery and settles it. held is the
// worker's record for keep-alive (nil when the transport needs none). It
// reports whether d waits for an in-process retry.
func (s *Subscription) handle(d driver.Delivery, held *heldDelivery) (retrying bool) {
	if d.Err != nil { // the driver could not read it
		s.deadLetter(d, d.Err)
		return false
	}
	if d.Attempt > s.cfg.maxDeliveries {
		// Delivered more often than allowed without an ack: consumers died
		// or stalled on it. Dead-letter it rather than crash another one.
		s.deadLetter(d, fmt.Errorf("%w: delivered %d times without an ack (MaxDeliveries %d): consumers died or stalled handling it",
			ErrPoison, d.Attempt, s.cfg.maxDeliveries))
		return false
	}
	for {
		if held != nil {
			s.settle.hold(held, d)
		}
		e := s.event(d)
		err := s.handler(&e.ctx, &e.Event)
		s.settle.unhold(held)
		switch {
		case s.settle.abandoned():
			s.notHandled(d)
		case err == nil:
			s.settle.ack(d)
		case IsPermanent(err) || d.Attempt >= s.cfg.maxDeliveries:
			s.deadLetter(d, err)
		default:
			inProcess, scheduled := s.retry(d, s.backoff.Delay(d.Attempt))
			if !scheduled { // the workers are leaving: run it again here
				if !s.backoff.Wait(s.ctx, d.Attempt) { // Shutdown gave up
					s.notHandled(d)
					return false
				}
				d.Attempt++
				continue
			}
			return inProcess
		}
		return false
	}
}

// retry redelivers d after delay: natively where the transport can,
// otherwise in process (kept alive meanwhile), and always in process for
// an event of a key in an OrderedByKey subscription, so that nothing of its
// key overtakes it. It reports whether the retry is in process, and
// false for scheduled when the caller must run d again itself (see after).
func (s *Subscription) retry(d driver.Delivery, delay time.Duration) (inProcess, scheduled bool) {
	if s.nacker != nil && (s.order == nil || keyOf(d) == "") {
		s.settle.nack(d, delay)
		return false, true
	}
	return true, s.redelive.after(d, delay)
}

// event makes the event a handler sees, with the context it runs with.
func (s *Subscription) event(d driver.Delivery) *deliveredEvent {
	m := d.Message
	de := &deliveredEvent{Event: Event{
		ID: m.ID, Type: EventType(m.Type), Source: m.Source, Timestamp: m.Time,
		Metadata: m.Metadata, sharedMeta: true,
		attempt: d.Attempt, maxAttempts: s.cfg.maxDeliveries, group: s.cfg.group, codecs: s.bus.codecs,
		contentType: m.ContentType,
	}}
	de.ctx = handlerContext{Context: s.ctx, e: &de.Event}
	e := &de.Event
	switch {
	case m.Data != nil:
		e.raw = m.Data
		if driver.MediaType(m.ContentType) == "application/json" || m.ContentType == "" {
			e.Data = json.RawMessage(m.Data)
		} else {
			e.Data = m.Data
		}
	case s.bus.inProcess:
		e.Data = m.Value
	default:
		e.raw = []byte{}
	}
	return de
}
