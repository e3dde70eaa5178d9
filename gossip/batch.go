package gossip

import (
	"context"
	"errors"
	"sync"
	"time"
)

// BatchHandler handles events in batches. Returning nil acknowledges every
// event of the batch; an error fails every one of them, and each is
// redelivered (and dead-lettered) on its own terms.
type BatchHandler func(ctx context.Context, events []*Event) error

// SubscribeBatch is Subscribe for a BatchHandler: events are gathered until
// size of them are waiting or flush has passed since the first, then h runs
// once for all of them, and they are acknowledged together only when h
// succeeds. The subscription runs at least size workers (each holds one
// event of the batch being gathered).
func (b *EventBus) SubscribeBatch(pattern EventType, size int, flush time.Duration, h BatchHandler, opts ...SubscribeOption) (*Subscription, error) {
	if h == nil {
		return nil, errors.New("gossip: SubscribeBatch with a nil handler")
	}
	if size < 1 {
		size = 1
	}
	if flush <= 0 {
		flush = time.Second
	}
	bt := &batcher{size: size, wait: flush, h: h}
	// The batch needs a worker per event it holds: at least size.
	opts = append([]SubscribeOption{Workers(size)}, opts...)
	opts = append(opts, func(c *subscribeConfig) { c.workers = max(c.workers, size) })
	return b.Subscribe(pattern, bt.handle, opts...)
}

type batcher struct {
	size int
	wait time.Duration
	h    BatchHandler

	mu  sync.Mutex
	cur *batch
}

type batch struct {
	ctx    context.Context
	events []*Event
	timer  *time.Timer
	done   chan struct{}
	err    error
}

func (bt *batcher) handle(ctx context.Context, e *Event) error {
	bt.mu.Lock()
	p := bt.cur
	if p == nil {
		p = &batch{ctx: ctx, done: make(chan struct{}), events: make([]*Event, 0, bt.size)}
		bt.cur = p
		p.timer = time.AfterFunc(bt.wait, func() { bt.flush(p) })
	}
	p.events = append(p.events, e)
	full := len(p.events) >= bt.size
	if full {
		bt.cur = nil
	}
	bt.mu.Unlock()
	if full {
		p.timer.Stop()
		bt.run(p)
	}
	<-p.done
	return p.err
}

// flush runs the batch p when its time is up, unless it ran already.
func (bt *batcher) flush(p *batch) {
	bt.mu.Lock()
	if bt.cur != p {
		bt.mu.Unlock()
		return
	}
	bt.cur = nil
	bt.mu.Unlock()
	bt.run(p)
}

func (bt *batcher) run(p *batch) {
	defer close(p.done)
	defer func() {
		if r := recover(); r != nil {
			p.err = newPanicError(r)
		}
	}()
	p.err = bt.h(p.ctx, p.events)
}

// SubscribeMany subscribes h to each of patterns with the same options, and
// returns the subscriptions. If one fails, those already made are
// unsubscribed and the error returned.
func (b *EventBus) SubscribeMany(patterns []EventType, h Handler, opts ...SubscribeOption) ([]*Subscription, error) {
	subs := make([]*Subscription, 0, len(patterns))
	for _, p := range patterns {
		s, err := b.Subscribe(p, h, opts...)
		if err != nil {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
			return nil, err
		}
		subs = append(subs, s)
	}
	return subs, nil
}
