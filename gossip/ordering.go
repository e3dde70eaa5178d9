package gossip

import (
	"sync"

	"github.com/gossipbus/gossip/gossip/driver"
)

// OrderedByKey makes the subscription handle the events of one ordering key
// (Event.WithKey) one at a time, in the order they are delivered, while
// events of different keys run in parallel on all its Workers; an event
// without a key runs as soon as a worker is free.
//
// A failed event of a key is retried in process, with the subscription's
// backoff, before any later event of its key runs: only its key waits
// (head-of-line blocking per key); the transport keeps the delivery alive
// meanwhile and never sees a nack that would let a later event overtake it.
// A dead letter (MaxDeliveries reached, Permanent, poison) releases the key.
//
// Events waiting behind their key count against Config.BufferSize: when
// BufferSize of them wait, the subscription fetches nothing more until one
// runs. Order holds within one subscription: the members of a group each
// keep the order of what they receive, but a transport may hand the events
// of one key to different members (docs/semantics.md).
func OrderedByKey() SubscribeOption {
	return func(c *subscribeConfig) { c.byKey = true }
}

// keyOf is the ordering key of a delivery, "" for none.
func keyOf(d driver.Delivery) string {
	if d.Message == nil {
		return ""
	}
	return d.Metadata[MetaPartitionKey]
}

// keyOrder dispatches deliveries by key. One worker at a time receives a
// delivery and claims its key (so claims follow delivery order); a delivery
// whose key is busy waits in the key's line, and the worker that finishes
// an event of a key runs the next one of its line. The lines hold at most
// BufferSize deliveries in all (room): a worker that would go past waits,
// handling in-process retries meanwhile, and nobody receives until it is
// through.
type keyOrder struct {
	s          *Subscription
	recv       sync.Mutex // held while receiving and claiming
	deliveries <-chan driver.Delivery
	room       chan struct{} // one token per waiting delivery

	mu    sync.Mutex
	lines map[string]*keyLine // the busy keys
	spare []*keyLine
}

// keyLine is a busy key: one of its events runs or waits for a retry, and
// these wait behind it, oldest first.
type keyLine struct {
	waiting []waitingDelivery
}

type waitingDelivery struct {
	d    driver.Delivery
	held *heldDelivery // kept alive while it waits
}

func newKeyOrder(s *Subscription) *keyOrder {
	return &keyOrder{
		s:          s,
		deliveries: s.ds.Deliveries(),
		room:       make(chan struct{}, s.bus.cfg.BufferSize),
		lines:      map[string]*keyLine{},
	}
}

// workByKey is a worker of an OrderedByKey subscription.
func (s *Subscription) workByKey() {
	defer s.workers.Done()
	var held *heldDelivery
	if s.keeper != nil {
		held = new(heldDelivery)
	}
	for {
		d, retry, ok := s.order.take(held)
		if !ok {
			return
		}
		s.runKey(d, held)
		if retry {
			s.redelive.done()
		}
	}
}

// take returns the next delivery to run: a new one whose key it claimed
// (or that has none), or an in-process retry (retry true), whose key is
// its own already. ok is false when the subscription is over.
func (o *keyOrder) take(held *heldDelivery) (d driver.Delivery, retry, ok bool) {
	o.recv.Lock()
	defer o.recv.Unlock()
	for {
		// A busy subscription takes its next delivery with one channel
		// operation, as work does.
		var got bool
		select {
		case d, ok = <-o.deliveries:
			got = true
		default:
		}
		if !got {
			select {
			case d, ok = <-o.deliveries:
			case d, ok = <-o.s.redelive.ch:
				return d, ok, ok
			}
		}
		if !ok {
			o.deliveries = nil
			o.s.redelive.deliveriesClosed()
			continue
		}
		if o.claim(d, held) {
			return d, false, true
		}
	}
}

// claim makes d's key busy and reports true when d may run now; otherwise
// d waits in its key's line, once there is room.
func (o *keyOrder) claim(d driver.Delivery, held *heldDelivery) bool {
	key := keyOf(d)
	if key == "" {
		return true
	}
	o.mu.Lock()
	if _, busy := o.lines[key]; !busy {
		o.lines[key] = o.line()
		o.mu.Unlock()
		return true
	}
	o.mu.Unlock()
	w := waitingDelivery{d: d}
	if o.s.keeper != nil {
		w.held = o.s.settle.hold(nil, d)
	}
	o.waitForRoom(held)
	o.mu.Lock()
	line, busy := o.lines[key]
	if !busy { // its key finished meanwhile
		o.lines[key] = o.line()
		o.mu.Unlock()
		<-o.room
		if w.held != nil {
			o.s.settle.unhold(w.held)
		}
		return true
	}
	line.waiting = append(line.waiting, w)
	o.mu.Unlock()
	return false
}

// waitForRoom takes a token of room, running in-process retries while
// there is none: they are what frees their keys.
func (o *keyOrder) waitForRoom(held *heldDelivery) {
	retries := o.s.redelive.ch
	for {
		select {
		case o.room <- struct{}{}:
			return
		case d, ok := <-retries:
			if !ok {
				retries = nil
				continue
			}
			o.s.runKey(d, held)
			o.s.redelive.done()
		}
	}
}

func (o *keyOrder) line() *keyLine {
	if n := len(o.spare); n > 0 {
		l := o.spare[n-1]
		o.spare = o.spare[:n-1]
		return l
	}
	return new(keyLine)
}

// next takes the next delivery of key's line, or frees the key when none
// waits.
func (o *keyOrder) next(key string) (driver.Delivery, bool) {
	o.mu.Lock()
	line := o.lines[key]
	if line == nil {
		o.mu.Unlock()
		return driver.Delivery{}, false
	}
	if len(line.waiting) == 0 {
		delete(o.lines, key)
		line.waiting = line.waiting[:0]
		o.spare = append(o.spare, line)
		o.mu.Unlock()
		return driver.Delivery{}, false
	}
	w := line.waiting[0]
	line.waiting[0] = waitingDelivery{}
	line.waiting = line.waiting[1:]
	if len(line.waiting) == 0 {
		line.waiting = nil // let the array go: lines are short-lived
	}
	o.mu.Unlock()
	if w.held != nil {
		o.s.settle.unhold(w.held)
	}
	<-o.room
	return w.d, true
}

// runKey runs d, then the deliveries waiting behind it in its key's line,
// until the line is empty or one of them waits for an in-process retry
// (which keeps the key busy).
func (s *Subscription) runKey(d driver.Delivery, held *heldDelivery) {
	for {
		if s.dispatch(d, held) {
			return // a retry keeps the key
		}
		key := keyOf(d)
		if key == "" {
			return
		}
		var ok bool
		if d, ok = s.order.next(key); !ok {
			return
		}
	}
}

// dropKeys disposes of the lines behind keyed retries the subscription
// stopped waiting for (handed back, or dropped when Shutdown gave up): the
// events behind them go the same way, in order, and their keys are freed.
func (o *keyOrder) dropKeys(ds []driver.Delivery) {
	for _, d := range ds {
		key := keyOf(d)
		if key == "" {
			continue
		}
		for {
			w, ok := o.next(key)
			if !ok {
				break
			}
			o.s.dispatch(w, nil) // stopped: handed back or dropped, never run
		}
	}
}
