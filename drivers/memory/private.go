package memory

import (
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"weak"
)

// privateRegistry holds the process's private brokers (those of buses
// opened with "memory"), weakly: a bus never shut down does not stay alive
// for it.
type privateRegistry struct {
	mu      sync.Mutex
	brokers map[weak.Pointer[Broker]]struct{}
	gen     atomic.Uint64 // bumped by every Subscribe on a private broker
}

var privateBrokers = privateRegistry{brokers: map[weak.Pointer[Broker]]struct{}{}}

// privateState is what a private broker keeps to tell a newcomer, once, that
// its buses are not connected.
type privateState struct {
	logger  *slog.Logger
	self    weak.Pointer[Broker]
	warned  atomic.Bool
	checked sync.Map // event type → privateBrokers.gen when last looked up
}

func newPrivateBroker(logger *slog.Logger) *Broker {
	if logger == nil {
		logger = slog.Default()
	}
	b := NewBroker()
	wp := weak.Make(b)
	b.private = &privateState{logger: logger, self: wp}
	privateBrokers.mu.Lock()
	privateBrokers.brokers[wp] = struct{}{}
	privateBrokers.mu.Unlock()
	runtime.AddCleanup(b, privateBrokers.forget, wp)
	return b
}

func (r *privateRegistry) forget(wp weak.Pointer[Broker]) {
	r.mu.Lock()
	delete(r.brokers, wp)
	r.mu.Unlock()
}

// subscribers counts the private brokers other than b with a live
// subscription to t.
func (r *privateRegistry) subscribers(b *Broker, t string) int {
	r.mu.Lock()
	others := make([]*Broker, 0, len(r.brokers))
	for wp := range r.brokers {
		if o := wp.Value(); o != nil && o != b {
			others = append(others, o)
		}
	}
	r.mu.Unlock()
	n := 0
	for _, o := range others {
		if o.routes.Load().live(t) {
			n++
		}
	}
	return n
}

// unheard is called when an event of type t published on private broker b
// reached no subscription. If another private broker subscribes to t, the
// buses were meant to share a broker: say so, once per broker. The lookup
// runs once per type until a private broker somewhere subscribes again.
func (p *privateState) unheard(b *Broker, t string) {
	if p.warned.Load() {
		return
	}
	gen := privateBrokers.gen.Load()
	if v, ok := p.checked.Load(t); ok && v.(uint64) == gen {
		return
	}
	p.checked.Store(t, gen)
	n := privateBrokers.subscribers(b, t)
	if n == 0 || !p.warned.CompareAndSwap(false, true) {
		return
	}
	p.logger.Warn(`memory: an event reached no subscription on this bus, but other buses of this process subscribe to its type: each bus opened with Driver "memory" has a private broker; give every bus the same named broker, Driver "memory://<name>" (e.g. "memory://app"), to connect them`,
		slog.String("type", t), slog.Int("buses", n))
}
