package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
)

// EventBus publishes events and runs handlers for the events it subscribes
// to, over one transport. Its methods are safe for concurrent use.
type EventBus struct {
	cfg       Config
	conn      driver.Conn
	codecs    *codecSet
	inProcess bool
	// copiesData: the Conn is a driver.DataCopier, so event data is
	// encoded into reused buffers.
	copiesData bool
	logger     *slog.Logger

	mu         sync.Mutex
	middleware []Middleware
	pubMW      []PublishMiddleware
	subs       map[*Subscription]struct{}

	dropObservers dropObservers

	publishFn    atomic.Pointer[PublishFunc]
	plainPublish atomic.Bool               // no publish middleware: publishFn is send
	lastType     atomic.Pointer[EventType] // the last valid type published

	closed       atomic.Bool
	drained      atomic.Bool // Shutdown has seen every handler return
	publishing   atomic.Int64
	publishDone  chan struct{} // signalled when publishing drops to 0 after close
	shutdownOnce sync.Once
	shutdownErr  error
	shutdownDone chan struct{}
}

// NewEventBus opens the transport cfg names and returns a bus on it. A nil
// cfg is the zero Config: the in-process memory transport.
func NewEventBus(cfg *Config) (*EventBus, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	if c.Source == "" {
		c.Source = filepath.Base(os.Args[0])
	}
	b := &EventBus{
		cfg:          c,
		codecs:       newCodecSet(c.Codec, c.ExtraCodecs),
		logger:       c.Logger,
		middleware:   append([]Middleware(nil), c.Middleware...),
		pubMW:        append([]PublishMiddleware(nil), c.PublishMiddleware...),
		subs:         map[*Subscription]struct{}{},
		publishDone:  make(chan struct{}, 1),
		shutdownDone: make(chan struct{}),
	}
	b.conn = c.Conn
	if b.conn == nil {
		d, err := driver.Lookup(c.Driver)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.DialTimeout)
		defer cancel()
		conn, err := d.Open(ctx, c.Driver, driver.Options{Source: c.Source, Logger: c.Logger})
		if err != nil {
			return nil, &opError{op: "open " + driver.Redact(c.Driver), err: err}
		}
		b.conn = conn
	}
	if vc, ok := b.conn.(driver.ValueCarrier); ok && vc.CarriesValues() {
		b.inProcess = true
	}
	if dc, ok := b.conn.(driver.DataCopier); ok && dc.CopiesData() {
		b.copiesData = true
	}
	b.rebuildPublish()
	return b, nil
}

// Use adds middleware around the handlers of subscriptions made after it;
// the first runs outermost. Call it before Subscribe.
func (b *EventBus) Use(m ...Middleware) {
	b.mu.Lock()
	b.middleware = append(b.middleware, m...)
	b.mu.Unlock()
}

// UsePublish adds publish-side middleware (tracing, metrics) around every
// later Publish; the first runs outermost.
func (b *EventBus) UsePublish(m ...PublishMiddleware) {
	b.mu.Lock()
	b.pubMW = append(b.pubMW, m...)
	b.mu.Unlock()
	b.rebuildPublish()
}

func (b *EventBus) rebuildPublish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	fn := PublishFunc(b.send)
	for i := len(b.pubMW) - 1; i >= 0; i-- {
		fn = b.pubMW[i](fn)
	}
	b.publishFn.Store(&fn)
	b.plainPublish.Store(len(b.pubMW) == 0)
}

// Transport is the name of the transport the bus runs on ("memory",
// "redis", "nats"): the value tracing and metrics report as
// messaging.system.
func (b *EventBus) Transport() string {
	if n, ok := b.conn.(interface{ Name() string }); ok {
		return n.Name()
	}
	return "unknown"
}

// Source is the service name the bus stamps on events it publishes.
func (b *EventBus) Source() string { return b.cfg.Source }

// Publish sends events and returns once the transport holds all of them (a
// JetStream ack, an XADD reply, a place in a memory queue). Several events
// go in one round trip where the transport can. Invalid events are an error
// wrapping ErrInvalidEventType or ErrInvalidEvent before anything is sent:
// an ID or metadata that breaks the rule on Event.ID and Event.Metadata is
// refused here, the same on every transport. When the memory transport's
// buffers are full, Publish waits for room until ctx ends and then returns
// ctx's error; it never drops an event. Publish fills an empty ID,
// Timestamp or Source. Published with a handler's ctx, an event without its
// own gets the handled event's correlation ID and that event's ID as its
// causation ID (see Event.CorrelationID). After Shutdown it returns
// ErrClosed.
func (b *EventBus) Publish(ctx context.Context, events ...*Event) error {
	if len(events) == 0 {
		return nil
	}
	b.publishing.Add(1)
	defer b.publishEnded()
	if b.closed.Load() && (b.drained.Load() || ctx.Value(handlerKey{}) != b) {
		return ErrClosed // handlers still finishing during Shutdown may publish
	}
	correlate(ctx, events)
	if b.plainPublish.Load() {
		return b.send(ctx, events)
	}
	// The copy lets the caller's events stay on its stack when no publish
	// middleware (which may keep them) runs.
	return (*b.publishFn.Load())(ctx, slices.Clone(events))
}

// publishInternal publishes on behalf of the bus itself (dead letters),
// also while it shuts down.
func (b *EventBus) publishInternal(ctx context.Context, events ...*Event) error {
	return (*b.publishFn.Load())(ctx, events)
}

func (b *EventBus) publishEnded() {
	if b.publishing.Add(-1) == 0 && b.closed.Load() {
		select {
		case b.publishDone <- struct{}{}:
		default:
		}
	}
}

// publishScratch is what one send needs besides the events, recycled
// through publishScratches: the []*driver.Message handed to Conn.Publish,
// which must not keep it, and the JSON buffers the messages' data is in
// when the Conn is a driver.DataCopier.
type publishScratch struct {
	msgs []*driver.Message
	bufs []*jsonBuffer
}

var publishScratches = sync.Pool{New: func() any { return &publishScratch{msgs: make([]*driver.Message, 0, 16)} }}

// done recycles ps, and the buffers the messages' data was encoded into
// when reuse says that the transport no longer holds them.
func (ps *publishScratch) done(reuse bool) {
	if len(ps.bufs) > 0 && reuse {
		for _, m := range ps.msgs {
			m.Data = nil // no longer the message's: the next Publish writes there
		}
		for _, jb := range ps.bufs {
			jb.release()
		}
	}
	clear(ps.msgs)
	clear(ps.bufs)
	ps.msgs, ps.bufs = ps.msgs[:0], ps.bufs[:0]
	publishScratches.Put(ps)
}

// send validates, encodes and hands events to the transport: the innermost
// PublishFunc.
func (b *EventBus) send(ctx context.Context, events []*Event) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	ps := publishScratches.Get().(*publishScratch)
	held := false // whether the transport may still hold the data
	defer func() { ps.done(!held) }()
	for _, e := range events {
		if err := b.prepare(e); err != nil {
			return err
		}
		m := e.message()
		m.ID, m.Type, m.Source, m.Time, m.Metadata = e.ID, string(e.Type), e.Source, e.Timestamp, e.Metadata
		ps.msgs = append(ps.msgs, m)
		if b.inProcess {
			if len(e.Metadata) > 0 {
				// Handlers must not see the publisher's later changes,
				// as they do not on a wire.
				m.Metadata = maps.Clone(e.Metadata)
			}
			m.Value = e.Data
			if e.raw != nil {
				// A delivered event forwarded from a wire: keep its bytes.
				m.Data, m.ContentType = e.raw, e.contentType
			}
			continue
		}
		var jb *jsonBuffer
		if b.copiesData {
			m.Data, m.ContentType, jb, err = b.codecs.encodeReused(e.Data)
		} else {
			m.Data, m.ContentType, err = b.codecs.encode(e.Data)
		}
		if err != nil {
			return fmt.Errorf("%w %s (%s): encode data: %v", ErrInvalidEvent, e.ID, e.Type, err)
		}
		if jb != nil {
			ps.bufs = append(ps.bufs, jb)
		}
		if e.raw != nil && e.Data == nil {
			m.Data, m.ContentType = e.raw, e.contentType
		}
		if n := m.Size(); n > b.cfg.MaxEventSize {
			return fmt.Errorf("%w: event %s (%s) is %d bytes, the limit is %d (Config.MaxEventSize)", ErrEventTooLarge, e.ID, e.Type, n, b.cfg.MaxEventSize)
		}
	}
	held = true // until Publish returns nil (not if it panics)
	err = b.conn.Publish(ctx, ps.msgs)
	held = err != nil
	return err
}

func (b *EventBus) prepare(e *Event) error {
	if e == nil {
		return fmt.Errorf("%w: nil event", ErrInvalidEvent)
	}
	if last := b.lastType.Load(); last == nil || *last != e.Type {
		if err := e.Type.Validate(); err != nil {
			return err
		}
		t := e.Type
		b.lastType.Store(&t) // most publishers repeat a type: validate it once
	}
	if e.ID == "" {
		e.ID = NewID()
	} else if !e.madeID() { // NewEvent's own ID keeps the rule
		if err := driver.CheckID(e.ID); err != nil {
			return fmt.Errorf("%w (%s): %v", ErrInvalidEvent, e.Type, err)
		}
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = time.Now()
	} else if y := e.Timestamp.UTC().Year(); y < 0 || y > 9999 {
		return fmt.Errorf("%w %s (%s): Timestamp %v is outside the years 0000 to 9999 in UTC, which RFC 3339 on the wire can hold", ErrInvalidEvent, e.ID, e.Type, e.Timestamp)
	}
	if e.Source == "" {
		e.Source = b.cfg.Source
	} else if err := driver.CheckSource(e.Source); err != nil {
		return fmt.Errorf("%w %s (%s): %v", ErrInvalidEvent, e.ID, e.Type, err)
	}
	for k, v := range e.Metadata {
		if err := driver.CheckMetadata(k, v); err != nil {
			return fmt.Errorf("%w %s (%s): %v", ErrInvalidEvent, e.ID, e.Type, err)
		}
	}
	return nil
}

// Subscribe runs h for every event whose type matches pattern, and returns
// once the subscription is live: an event published after Subscribe returns
// is delivered to it. Without Group the subscription is a broadcast
// listener; with Group it shares the events with the group's other members.
func (b *EventBus) Subscribe(pattern EventType, h Handler, opts ...SubscribeOption) (*Subscription, error) {
	if h == nil {
		return nil, errors.New("gossip: Subscribe with a nil handler")
	}
	if err := driver.ValidatePattern(string(pattern)); err != nil {
		return nil, err
	}
	sc := subscribeConfig{
		workers:       b.cfg.Workers,
		maxDeliveries: b.cfg.MaxDeliveries,
		backoff:       b.cfg.RetryBackoff,
		maxBackoff:    b.cfg.MaxRetryBackoff,
	}
	for _, o := range opts {
		o(&sc)
	}
	if sc.group != "" {
		if err := driver.ValidateType(sc.group); err != nil || driver.IsPattern(sc.group) || strings.Contains(sc.group, ".") {
			return nil, fmt.Errorf("%w: group name %q must be one token of letters, digits, '_' and '-'", ErrInvalidEventType, sc.group)
		}
	}
	if err := sc.validate(); err != nil {
		return nil, err
	}

	b.mu.Lock()
	mw := append(append([]Middleware(nil), b.middleware...), sc.middleware...)
	b.mu.Unlock()
	handler := recoverHandler(Chain(mw...)(h))

	b.publishing.Add(1) // Shutdown waits for Subscribe calls too
	defer b.publishEnded()
	if b.closed.Load() {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.DialTimeout)
	defer cancel()
	drops := &dropCounter{log: b.logger, pattern: pattern, group: sc.group, observers: &b.dropObservers}
	var (
		s   *Subscription
		err error
	)
	if sc.exclusive > 0 {
		s, err = b.subscribeExclusive(ctx, pattern, sc, handler, drops)
	} else {
		s, err = b.subscribeTransport(ctx, pattern, sc, handler, drops)
	}
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	if b.closed.Load() { // Shutdown began while the transport subscribed
		b.mu.Unlock()
		s.stop(ctx)
		s.close(ctx)
		return nil, ErrClosed
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	s.start()
	return s, nil
}

// subscribeTransport subscribes on the transport and returns the
// subscription, not yet started.
func (b *EventBus) subscribeTransport(ctx context.Context, pattern EventType, sc subscribeConfig, handler Handler, drops *dropCounter) (*Subscription, error) {
	ds, err := b.conn.Subscribe(ctx, driver.SubscribeSpec{
		Pattern:       string(pattern),
		Group:         sc.group,
		BufferSize:    b.cfg.BufferSize,
		Workers:       sc.workers,
		MaxDeliveries: sc.maxDeliveries,
		AckWait:       b.cfg.AckWait,
		Start:         sc.start,
		Dropped:       drops.add,
	})
	if err != nil {
		if b.closed.Load() { // Shutdown closed the transport meanwhile
			return nil, fmt.Errorf("%w (subscribe %s: %s)", ErrClosed, pattern, strings.TrimPrefix(err.Error(), "gossip: "))
		}
		return nil, &opError{op: "subscribe " + string(pattern), err: err}
	}
	s := newSubscription(b, pattern, sc, handler, ds)
	s.drops = drops
	return s, nil
}

func (b *EventBus) forget(s *Subscription) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// Shutdown stops the bus gracefully: new publishes and subscriptions fail
// with ErrClosed; subscriptions stop fetching; in-flight handlers finish and
// ack (and may still publish with the ctx they were given, to chain events);
// events already buffered in memory are handled; on a durable transport,
// deliveries fetched but never started go back to their group and what
// remains unacknowledged stays for the next consumer. Then the transport
// connection closes. If ctx ends first, Shutdown stops at once: handler
// contexts are cancelled, no handler starts and nothing is retried or
// acknowledged any more (in-process deliveries are dropped with a log line
// each), and Shutdown returns ctx's error. Shutdown is idempotent: later
// calls wait for the first and return its result.
func (b *EventBus) Shutdown(ctx context.Context) error {
	b.shutdownOnce.Do(func() {
		b.closed.Store(true)
		b.shutdownErr = b.shutdown(ctx)
		close(b.shutdownDone)
	})
	select {
	case <-b.shutdownDone:
		return b.shutdownErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *EventBus) shutdown(ctx context.Context) error {
	b.mu.Lock()
	subs := make([]*Subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()

	var errs []error
	for _, s := range subs {
		s.stop(ctx)
	}
wait:
	for _, s := range subs {
		select {
		case <-s.done:
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
			for _, s := range subs { // give up on all of them
				s.abandon()
			}
			break wait
		}
	}
	b.drained.Store(true)
	var closing sync.WaitGroup
	for _, s := range subs {
		closing.Go(func() { s.close(ctx) })
	}
	closing.Wait()
	// Wait for publishes (and Subscribe calls) already under way.
	for b.publishing.Load() > 0 && len(errs) == 0 {
		select {
		case <-b.publishDone:
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
		}
	}
	if err := b.conn.Close(boundedContext(ctx, b.cfg.DialTimeout)); err != nil {
		errs = append(errs, &opError{op: "close transport", err: err})
	}
	return errors.Join(errs...)
}

// boundedContext is ctx while it lasts, at most limit; once ctx has ended
// (before the call or during it), a second's grace for the transport to let
// go.
func boundedContext(ctx context.Context, limit time.Duration) context.Context {
	if ctx.Err() != nil {
		limit = min(limit, graceAfterCtx)
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(graceAfterCtx, cancel) })
	context.AfterFunc(c, func() { stop(); cancel() })
	return c
}

// graceAfterCtx is how long a closing transport may go on once the ctx of
// Shutdown (or Unsubscribe) ended.
const graceAfterCtx = time.Second
