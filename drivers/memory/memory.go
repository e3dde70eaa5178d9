// Package memory is gossip's in-process transport, registered as "memory"
// and for the "memory://" scheme. Package gossip imports it, so it needs no
// import of its own.
//
// Each bus opened with "memory" (or an empty Config.Driver) gets a private
// broker. Buses opened with the same named URL, "memory://orders", share one
// broker for the life of the process, so several services can talk in one
// process as they would across Redis or NATS.
//
// Two buses opened with "memory" never see each other's events. When events
// published on a private broker reach no subscription there but another
// private broker of the process subscribes to their type, the publishing
// bus logs a warning once (Config.Logger) naming the fix: a named broker,
// "memory://<name>", on every bus.
//
// Events are handed over as the publisher's values, without encoding. Each
// broadcast subscription has a bounded queue of gossip.Config.BufferSize
// events (allocated at Subscribe; at most 1,000,000), and so has each group,
// shared by its members; when the queues an event must enter are full,
// Publish waits until there is room or its context ends. Nothing is dropped
// and nothing survives the process.
//
// A group outlives its members, as a durable transport's group does: while
// it has none, events for it wait in its queue (BufferSize, set by the
// group's first member) until a member joins. When that queue is full and
// no member is there to empty it, Publish returns ErrGroupFull at once
// rather than wait for a member that may never come. A member that leaves
// hands the event it took but never started back to the group; the last
// member to leave handles what the group holds first (on a private broker
// nothing else could).
package memory

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gossipbus/gossip/gossip/driver"
)

func init() {
	driver.Register("memory", Driver{}, "memory", "mem")
}

// Driver opens memory connections.
type Driver struct{}

// ErrGroupFull is returned by Publish for an event a group with no member
// cannot hold: its queue is full.
var ErrGroupFull = errors.New("memory: group has no member and its queue is full")

var named sync.Map // broker name → *Broker

// Open returns a connection to a private broker for "memory", or to the
// process-wide broker named by the host (or path) of "memory://name".
func (Driver) Open(_ context.Context, dsn string, opts driver.Options) (driver.Conn, error) {
	if !strings.Contains(dsn, "://") {
		return newPrivateBroker(opts.Logger).Conn(), nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("memory: bad URL %q: %s", driver.Redact(dsn), driver.RedactError(dsn, err))
	}
	name := u.Host + strings.TrimSuffix(u.Path, "/")
	if name == "" {
		return newPrivateBroker(opts.Logger).Conn(), nil
	}
	b, _ := named.LoadOrStore(name, NewBroker())
	return b.(*Broker).Conn(), nil
}

// Broker routes events between the connections made from it.
type Broker struct {
	mu     sync.Mutex
	routes atomic.Pointer[routeTable]

	private *privateState // set for the broker of a "memory" bus
	claims  sync.Map      // claim store name → *claimTable (claims.go)
}

// NewBroker returns an empty broker. Handing Conn() of one broker to several
// buses' Config.Conn connects them, as a named URL does.
func NewBroker() *Broker {
	b := &Broker{}
	b.routes.Store(&routeTable{})
	return b
}

// Conn returns a new connection to the broker.
func (b *Broker) Conn() driver.Conn { return &conn{broker: b} }

// routeTable is immutable once stored; the cache of type → targets fills
// lazily.
type routeTable struct {
	broadcast []*queue
	groups    []*group
	cache     sync.Map // event type → []target
}

type target struct {
	q *queue // a broadcast subscription, or
	g *group // a group: one member gets the event
}

func (rt *routeTable) targets(t string) []target {
	if v, ok := rt.cache.Load(t); ok {
		return v.([]target)
	}
	var ts []target
	for _, q := range rt.broadcast {
		if driver.Match(q.pattern, t) {
			ts = append(ts, target{q: q})
		}
	}
	for _, g := range rt.groups {
		if driver.Match(g.pattern, t) {
			ts = append(ts, target{g: g})
		}
	}
	rt.cache.Store(t, ts)
	return ts
}

// group is a consumer group: one queue its members take events from.
type group struct {
	key     string // name + "\x00" + pattern
	name    string
	pattern string
	ch      chan driver.Delivery
	members atomic.Int32

	backMu sync.Mutex
	back   []driver.Delivery // handed back while ch was full: taken first
	backN  atomic.Int32
}

// queue is a broadcast subscription: its bounded buffer.
type queue struct {
	broker  *Broker
	pattern string
	ch      chan driver.Delivery
	done    chan struct{} // closed when the subscription stops
	mu      sync.RWMutex  // senders hold it shared; close takes it to close ch
	closed  bool
}

// put waits for room in q, unless q stops first (the subscription is gone)
// or ctx ends (its error).
func (q *queue) put(ctx context.Context, d driver.Delivery) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return nil
	}
	select {
	case q.ch <- d:
		return nil
	default:
	}
	select {
	case q.ch <- d:
	case <-q.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// close stops q: blocked senders give up, and once none is left the channel
// closes so that the workers drain what is buffered and stop.
func (q *queue) close() {
	select {
	case <-q.done:
		return
	default:
	}
	close(q.done)
	q.mu.Lock()
	q.closed = true
	close(q.ch)
	q.mu.Unlock()
}

// publish enters one delivery into every target.
func (b *Broker) publish(ctx context.Context, m *driver.Message) error {
	d := driver.Delivery{Message: m, Attempt: 1}
	ts := b.routes.Load().targets(m.Type)
	if len(ts) == 0 && b.private != nil {
		b.private.unheard(b, m.Type)
	}
	for _, t := range ts {
		var err error
		if t.q != nil {
			err = t.q.put(ctx, d)
		} else {
			err = t.g.put(ctx, d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// live reports whether rt has a subscription to t that is still there: a
// broadcast queue not stopped, or a group with a member. It does not fill
// the cache.
func (rt *routeTable) live(t string) bool {
	for _, q := range rt.broadcast {
		if driver.Match(q.pattern, t) {
			return true
		}
	}
	for _, g := range rt.groups {
		if g.members.Load() > 0 && driver.Match(g.pattern, t) {
			return true
		}
	}
	return false
}

// put enters d into g's queue, waiting for room while g has members.
func (g *group) put(ctx context.Context, d driver.Delivery) error {
	select {
	case g.ch <- d:
		return nil
	default:
	}
	if g.members.Load() == 0 {
		return fmt.Errorf("%w (group %q on %q, %d events)", ErrGroupFull, g.name, g.pattern, cap(g.ch))
	}
	select {
	case g.ch <- d:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// giveBack returns a delivery a member took but never started.
func (g *group) giveBack(d driver.Delivery) {
	select {
	case g.ch <- d:
		return
	default:
	}
	g.backMu.Lock()
	g.back = append(g.back, d)
	g.backN.Add(1)
	g.backMu.Unlock()
}

// take waits for the group's next delivery: a handed-back one first.
func (g *group) take(stop <-chan struct{}) (driver.Delivery, bool) {
	if g.backN.Load() > 0 {
		g.backMu.Lock()
		if len(g.back) > 0 {
			d := g.back[0]
			g.back = g.back[1:]
			g.backN.Add(-1)
			g.backMu.Unlock()
			return d, true
		}
		g.backMu.Unlock()
	}
	select {
	case d := <-g.ch:
		return d, true
	default:
	}
	select {
	case d := <-g.ch:
		return d, true
	case <-stop:
		return driver.Delivery{}, false
	}
}

func (b *Broker) subscribe(spec driver.SubscribeSpec) driver.Subscription {
	if b.private != nil {
		privateBrokers.gen.Add(1)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.routes.Load()
	rt := &routeTable{broadcast: old.broadcast, groups: old.groups}
	defer b.routes.Store(rt)
	if spec.Group == "" {
		q := &queue{broker: b, pattern: spec.Pattern, ch: make(chan driver.Delivery, spec.BufferSize), done: make(chan struct{})}
		rt.broadcast = append(append([]*queue(nil), old.broadcast...), q)
		return q
	}
	key := spec.Group + "\x00" + spec.Pattern
	var g *group
	for _, og := range old.groups {
		if og.key == key {
			g = og
		}
	}
	if g == nil {
		g = &group{key: key, name: spec.Group, pattern: spec.Pattern, ch: make(chan driver.Delivery, spec.BufferSize)}
		rt.groups = append(append([]*group(nil), old.groups...), g)
	}
	g.members.Add(1)
	m := &member{g: g, out: make(chan driver.Delivery), stop: make(chan struct{}), done: make(chan struct{})}
	go m.forward()
	return m
}

func (b *Broker) unsubscribe(q *queue) {
	b.mu.Lock()
	old := b.routes.Load()
	rt := &routeTable{groups: old.groups}
	for _, o := range old.broadcast {
		if o != q {
			rt.broadcast = append(rt.broadcast, o)
		}
	}
	b.routes.Store(rt)
	b.mu.Unlock()
	q.close()
}

func (q *queue) Deliveries() <-chan driver.Delivery { return q.ch }

// Stop takes the subscription off the routes and closes its queue; what it
// buffered is still read (gossip handles it before it stops).
func (q *queue) Stop(context.Context) error {
	q.broker.unsubscribe(q)
	return nil
}

func (q *queue) Close(ctx context.Context) error { return q.Stop(ctx) }

// member is a group member: it forwards the group's deliveries to its
// workers.
type member struct {
	g        *group
	out      chan driver.Delivery
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func (m *member) forward() {
	defer close(m.done)
	defer close(m.out)
	for {
		d, ok := m.g.take(m.stop)
		if !ok {
			break
		}
		select {
		case m.out <- d:
			continue
		case <-m.stop:
		}
		if m.g.members.Load() > 0 {
			m.g.giveBack(d) // for the others
			return
		}
		m.out <- d
		break
	}
	if m.g.members.Load() > 0 {
		return // the others take what the group holds
	}
	// The last member handles what the group holds now before it stops,
	// as a broadcast listener does: on a private broker nobody else could.
	for n := len(m.g.ch) + int(m.g.backN.Load()); n > 0; n-- {
		d, ok := m.g.take(closedChan)
		if !ok {
			return
		}
		m.out <- d
	}
}

// closedChan makes take return at once when the group is empty.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (m *member) Deliveries() <-chan driver.Delivery { return m.out }

// Stop leaves the group: the delivery in hand goes back to it, or, for the
// last member, what the group holds is delivered first.
func (m *member) Stop(ctx context.Context) error {
	m.stopOnce.Do(func() {
		m.g.members.Add(-1)
		close(m.stop)
	})
	select {
	case <-m.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *member) Close(ctx context.Context) error { return m.Stop(ctx) }

// maxBufferSize is the largest queue a subscription gets: the bound of
// gossip.Config.BufferSize, which the queue allocates at Subscribe.
const maxBufferSize = 1_000_000

type conn struct {
	broker *Broker
	closed atomic.Bool
}

func (c *conn) Name() string        { return "memory" }
func (c *conn) CarriesValues() bool { return true }

func (c *conn) Publish(ctx context.Context, msgs []*driver.Message) error {
	for _, m := range msgs {
		if err := c.broker.publish(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (c *conn) Subscribe(_ context.Context, spec driver.SubscribeSpec) (driver.Subscription, error) {
	if c.closed.Load() {
		return nil, driver.ErrSubscriptionClosed
	}
	if spec.BufferSize > maxBufferSize {
		// gossip.Config allows no more; a buffer is allocated whole here.
		return nil, fmt.Errorf("memory: BufferSize %d is over %d", spec.BufferSize, maxBufferSize)
	}
	spec.BufferSize = max(spec.BufferSize, 1)
	return c.broker.subscribe(spec), nil
}

// Close ends the connection. gossip has closed its subscriptions before.
func (c *conn) Close(context.Context) error {
	if !c.closed.Swap(true) && c.broker.private != nil {
		privateBrokers.forget(c.broker.private.self)
	}
	return nil
}
