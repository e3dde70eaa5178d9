package gossip

import (
	"context"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
)

// handlerKey marks the contexts handlers run with, by the bus running them:
// a handler may publish (chain an event) while its bus shuts down.
type handlerKey struct{}

// Subscription is a live subscription made by EventBus.Subscribe.
type Subscription struct {
	bus     *EventBus
	pattern EventType
	cfg     subscribeConfig
	handler Handler
	ds      driver.Subscription
	acker   driver.Acknowledger // nil: redeliver in process

	ctx    context.Context // handlers' base context; cancelled when Shutdown gives up
	cancel context.CancelFunc

	workers sync.WaitGroup
	done    chan struct{}

	stopOnce sync.Once

	// In-process redelivery, for transports without an Acknowledger.
	retry          chan driver.Delivery
	rmu            sync.Mutex
	pending        int // redeliveries scheduled or being handled
	deliveriesDone bool
	retryClosed    bool
	stopping       bool
	timers         map[*time.Timer]driver.Delivery
}

func newSubscription(b *EventBus, pattern EventType, sc subscribeConfig, h Handler, ds driver.Subscription) *Subscription {
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), handlerKey{}, b))
	s := &Subscription{
		bus: b, pattern: pattern, cfg: sc, handler: h, ds: ds,
		ctx: ctx, cancel: cancel,
		done: make(chan struct{}),
	}
	if a, ok := ds.(driver.Acknowledger); ok {
		s.acker = a
	} else {
		s.retry = make(chan driver.Delivery, sc.workers)
		s.timers = map[*time.Timer]driver.Delivery{}
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
// already running finish (events already buffered in memory are handled
// first); on a durable transport what is left unacknowledged goes to the
// group's other members or waits for the next one. It does not wait for the
// handlers (so a handler may unsubscribe itself); Done says when they are
// over. Unsubscribe is idempotent.
func (s *Subscription) Unsubscribe() error {
	err := s.stop()
	s.bus.forget(s)
	return err
}

func (s *Subscription) stop() error {
	var err error
	s.stopOnce.Do(func() {
		if s.retry != nil {
			s.rmu.Lock()
			s.stopping = true
			for t, d := range s.timers {
				if t.Stop() {
					delete(s.timers, t)
					go s.redeliver(d) // run pending retries at once
				}
			}
			s.rmu.Unlock()
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.bus.cfg.DialTimeout)
		defer cancel()
		err = s.ds.Close(ctx)
	})
	return err
}

// wait waits until every worker returned or ctx ended; then it cancels the
// handlers' context.
func (s *Subscription) wait(ctx context.Context) error {
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cancel()
		return ctx.Err()
	}
}

func (s *Subscription) start() {
	s.workers.Add(s.cfg.workers)
	for range s.cfg.workers {
		go s.work()
	}
	go func() {
		s.workers.Wait()
		s.cancel()
		close(s.done)
	}()
}

func (s *Subscription) work() {
	defer s.workers.Done()
	deliveries := s.ds.Deliveries()
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				if s.retry == nil {
					return
				}
				deliveries = nil
				s.rmu.Lock()
				s.deliveriesDone = true
				s.closeRetryLocked()
				s.rmu.Unlock()
				continue
			}
			s.handle(d)
		case d, ok := <-s.retry: // nil channel when the transport acks
			if !ok {
				return
			}
			s.handle(d)
			s.rmu.Lock()
			s.pending--
			s.closeRetryLocked()
			s.rmu.Unlock()
		}
	}
}

func (s *Subscription) closeRetryLocked() {
	if s.deliveriesDone && s.pending == 0 && !s.retryClosed {
		s.retryClosed = true
		close(s.retry)
	}
}

// handle runs the handler for one delivery and settles it.
func (s *Subscription) handle(d driver.Delivery) {
	if d.Err != nil { // the driver could not read it, or gave up on it
		s.deadLetter(d, d.Err)
		return
	}
	e := s.event(d)
	err := s.handler(s.ctx, e)
	switch {
	case err == nil:
		s.ack(d)
	case IsPermanent(err) || d.Attempt >= s.cfg.maxDeliveries:
		s.deadLetter(d, err)
	default:
		s.nack(d, s.backoff(d.Attempt))
	}
}

func (s *Subscription) event(d driver.Delivery) *Event {
	m := d.Message
	e := &Event{
		ID: m.ID, Type: EventType(m.Type), Source: m.Source, Timestamp: m.Time,
		Metadata: m.Metadata, sharedMeta: true,
		attempt: d.Attempt, maxAttempts: s.cfg.maxDeliveries, group: s.cfg.group, codecs: s.bus.codecs,
		contentType: m.ContentType,
	}
	switch {
	case m.Data != nil:
		e.raw = m.Data
		if mediaType(m.ContentType) == "application/json" || m.ContentType == "" {
			e.Data = json.RawMessage(m.Data)
		} else {
			e.Data = m.Data
		}
	case s.bus.inProcess:
		e.Data = m.Value
	default:
		e.raw = []byte{}
	}
	return e
}

func (s *Subscription) ack(d driver.Delivery) {
	if s.acker == nil {
		return
	}
	if err := s.acker.Ack(context.Background(), d); err != nil {
		s.bus.logger.Warn("gossip: ack failed; the transport will redeliver the event",
			"id", d.ID, "type", d.Type, "group", s.cfg.group, "error", err)
	}
}

func (s *Subscription) nack(d driver.Delivery, delay time.Duration) {
	if s.acker != nil {
		if err := s.acker.Nack(context.Background(), d, delay); err != nil {
			s.bus.logger.Warn("gossip: nack failed; the transport will redeliver the event after its ack wait",
				"id", d.ID, "type", d.Type, "group", s.cfg.group, "error", err)
		}
		return
	}
	d.Attempt++
	s.rmu.Lock()
	s.pending++
	if s.stopping {
		s.rmu.Unlock()
		go s.redeliver(d)
		return
	}
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		s.rmu.Lock()
		delete(s.timers, t)
		s.rmu.Unlock()
		s.redeliver(d)
	})
	s.timers[t] = d
	s.rmu.Unlock()
}

func (s *Subscription) redeliver(d driver.Delivery) { s.retry <- d }

// backoff is the delay before redelivering after attempt failed:
// exponential, capped, with ±20% jitter.
func (s *Subscription) backoff(attempt int) time.Duration {
	d := s.cfg.backoff
	for i := 1; i < attempt && d < s.cfg.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.maxBackoff)
	jitter := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	return d + jitter
}

// deadLetter publishes the delivery under DeadLetterType(group, type) with
// the reason and attempt count, then acks it. If the dead letter cannot be
// published the delivery is nacked instead, so nothing is lost.
func (s *Subscription) deadLetter(d driver.Delivery, reason error) {
	m := d.Message
	if strings.HasPrefix(m.Type, DeadLetterPrefix+".") {
		// A dead letter a handler (of a wildcard, say) gave up on is not
		// dead-lettered again: that would nest dead_letter.dead_letter...
		// without end. It is stored already; say so and let it go.
		s.bus.logger.Error("gossip: handler failed on a dead letter; it stays where it was published",
			"id", m.ID, "type", m.Type, "group", s.cfg.group, "deliveries", d.Attempt, "error", reason)
		s.ack(d)
		return
	}
	orig := m.Type
	if driver.ValidateType(orig) != nil {
		orig = "unknown"
	}
	meta := make(map[string]string, len(m.Metadata)+5)
	maps.Copy(meta, m.Metadata)
	meta[MetaDeadLetterError] = reason.Error()
	meta[MetaDeadLetterDeliveries] = strconv.Itoa(d.Attempt)
	meta[MetaDeadLetterType] = m.Type
	meta[MetaDeadLetterGroup] = s.cfg.group
	meta[MetaDeadLetterSubscription] = string(s.pattern)
	dl := &Event{
		ID: m.ID, Type: DeadLetterType(s.cfg.group, EventType(orig)), Source: m.Source,
		Timestamp: m.Time, Metadata: meta, contentType: m.ContentType,
	}
	if m.Data != nil {
		dl.raw = m.Data
	} else {
		dl.Data = m.Value
	}
	if m.ID == "" {
		dl.ID = NewID()
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.bus.cfg.DialTimeout)
	defer cancel()
	if err := s.bus.publishInternal(ctx, dl); err != nil {
		s.bus.logger.Error("gossip: cannot publish dead letter; redelivering the event instead",
			"id", m.ID, "type", m.Type, "group", s.cfg.group, "error", err, "reason", reason)
		s.nack(d, s.backoff(d.Attempt))
		return
	}
	s.bus.logger.Warn("gossip: event dead-lettered",
		"id", m.ID, "type", m.Type, "group", s.cfg.group, "deliveries", d.Attempt,
		"dead_letter_type", string(dl.Type), "error", reason)
	s.ack(d)
}
