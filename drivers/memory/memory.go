// Package memory is gossip's in-process transport, registered as "memory"
// and for the "memory://" scheme. Package gossip imports it, so it needs no
// import of its own.
//
// Each bus opened with "memory" (or an empty Config.Driver) gets a private
// broker. Buses opened with the same named URL, "memory://orders", share one
// broker for the life of the process, so several services can talk in one
// process as they would across Redis or NATS.
//
// Events are handed over as the publisher's values, without encoding. Each
// subscription (each member of a group) has a bounded queue of
// gossip.Config.BufferSize events; when the queues an event must enter are
// full, Publish waits until there is room or its context ends. Nothing is
// dropped and nothing survives the process.
package memory

import (
	"context"
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

var named sync.Map // broker name → *Broker

// Open returns a connection to a private broker for "memory", or to the
// process-wide broker named by the host (or path) of "memory://name".
func (Driver) Open(_ context.Context, dsn string, _ driver.Options) (driver.Conn, error) {
	if !strings.Contains(dsn, "://") {
		return NewBroker().Conn(), nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("memory: bad URL %q: %w", dsn, err)
	}
	name := u.Host + strings.TrimSuffix(u.Path, "/")
	if name == "" {
		return NewBroker().Conn(), nil
	}
	b, _ := named.LoadOrStore(name, NewBroker())
	return b.(*Broker).Conn(), nil
}

// Broker routes events between the connections made from it.
type Broker struct {
	mu     sync.Mutex
	routes atomic.Pointer[routeTable]
}

// NewBroker returns an empty broker. Handing Conn() of one broker to several
// buses' Config.Conn connects them, as a named URL does.
func NewBroker() *Broker {
	b := &Broker{}
	b.routes.Store(&routeTable{})
	return b
}

// Conn returns a new connection to the broker.
func (b *Broker) Conn() driver.Conn { return &conn{broker: b, subs: map[*member]struct{}{}} }

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

type group struct {
	key     string // name + "\x00" + pattern
	pattern string
	members atomic.Pointer[[]*queue]
	next    atomic.Uint64
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

// queue is one subscription's (or group member's) bounded buffer.
type queue struct {
	pattern string
	ch      chan driver.Delivery
	done    chan struct{} // closed when the subscription stops
	mu      sync.RWMutex  // senders hold it shared; close takes it to close ch
	closed  bool
}

// put waits for room in q. It reports false if q stopped first (the event
// then goes elsewhere or nowhere: the subscription is gone), and returns
// ctx's error if ctx ended first.
func (q *queue) put(ctx context.Context, d driver.Delivery) (bool, error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return false, nil
	}
	select {
	case q.ch <- d:
		return true, nil
	default:
	}
	select {
	case q.ch <- d:
		return true, nil
	case <-q.done:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

func (q *queue) tryPut(d driver.Delivery) bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return false
	}
	select {
	case q.ch <- d:
		return true
	default:
		return false
	}
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
	for _, t := range b.routes.Load().targets(m.Type) {
		if t.q != nil {
			if _, err := t.q.put(ctx, d); err != nil {
				return err
			}
			continue
		}
		if err := t.g.put(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// put gives d to one member of g: the first with room, starting at a
// rotating position, else waits on one of them.
func (g *group) put(ctx context.Context, d driver.Delivery) error {
	for {
		ms := *g.members.Load()
		if len(ms) == 0 {
			return nil // every member left: a memory group does not outlive them
		}
		start := int(g.next.Add(1) % uint64(len(ms)))
		for i := range ms {
			if ms[(start+i)%len(ms)].tryPut(d) {
				return nil
			}
		}
		ok, err := ms[start].put(ctx, d)
		if ok || err != nil {
			return err
		}
		// That member left while we waited: try the others.
	}
}

func (b *Broker) subscribe(spec driver.SubscribeSpec) *member {
	q := &queue{
		pattern: spec.Pattern,
		ch:      make(chan driver.Delivery, spec.BufferSize),
		done:    make(chan struct{}),
	}
	m := &member{broker: b, q: q}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.routes.Load()
	rt := &routeTable{broadcast: old.broadcast, groups: old.groups}
	if spec.Group == "" {
		rt.broadcast = append(append([]*queue(nil), old.broadcast...), q)
	} else {
		key := spec.Group + "\x00" + spec.Pattern
		for _, g := range old.groups {
			if g.key == key {
				m.g = g
			}
		}
		if m.g == nil {
			m.g = &group{key: key, pattern: spec.Pattern}
			m.g.members.Store(&[]*queue{})
			rt.groups = append(append([]*group(nil), old.groups...), m.g)
		}
		ms := append(append([]*queue(nil), *m.g.members.Load()...), q)
		m.g.members.Store(&ms)
	}
	b.routes.Store(rt)
	return m
}

func (b *Broker) unsubscribe(m *member) {
	b.mu.Lock()
	old := b.routes.Load()
	rt := &routeTable{}
	for _, q := range old.broadcast {
		if q != m.q {
			rt.broadcast = append(rt.broadcast, q)
		}
	}
	for _, g := range old.groups {
		if g != m.g {
			rt.groups = append(rt.groups, g)
			continue
		}
		var ms []*queue
		for _, q := range *g.members.Load() {
			if q != m.q {
				ms = append(ms, q)
			}
		}
		g.members.Store(&ms)
		if len(ms) > 0 {
			rt.groups = append(rt.groups, g)
		}
	}
	b.routes.Store(rt)
	b.mu.Unlock()
	m.q.close()
}

// member is one subscription: a broadcast listener, or a group member.
type member struct {
	broker *Broker
	conn   *conn
	q      *queue
	g      *group
	once   sync.Once
}

func (m *member) Deliveries() <-chan driver.Delivery { return m.q.ch }

func (m *member) Close(context.Context) error {
	m.once.Do(func() {
		m.broker.unsubscribe(m)
		m.conn.forget(m)
	})
	return nil
}

type conn struct {
	broker *Broker
	mu     sync.Mutex
	subs   map[*member]struct{}
	closed bool
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
	if spec.BufferSize <= 0 {
		spec.BufferSize = 1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, driver.ErrSubscriptionClosed
	}
	m := c.broker.subscribe(spec)
	m.conn = c
	c.subs[m] = struct{}{}
	return m, nil
}

func (c *conn) forget(m *member) {
	c.mu.Lock()
	delete(c.subs, m)
	c.mu.Unlock()
}

func (c *conn) Close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	subs := c.subs
	c.subs = nil
	c.mu.Unlock()
	for m := range subs {
		_ = m.Close(ctx)
	}
	return nil
}
