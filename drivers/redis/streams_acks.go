package redis

import (
	"context"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gossipbus/gossip/gossip/driver"
)

// ackDelay is how long an acknowledgement waits for others to join it in
// one XACK per stream. One event at a time, an XACK each costs a round trip
// per event, the client's and the server's CPU both.
const ackDelay = time.Millisecond

// ackBatch is how many queued entries the Ack call that reaches it sends
// itself, at once: a bound on the queue and on one XACK's size.
const ackBatch = 1024

// ackTimeout bounds each XACK round trip of a flush.
const ackTimeout = 5 * time.Second

// ackQueue holds the entries acknowledged but not sent yet (SyncAck off),
// per stream, until the flush ackDelay after the first of them, or until
// ackBatch of them wait, or until Close. One flush runs at a time: it sends
// what was queued meanwhile before it ends, so a slow Redis holds one
// connection for acks, not one per millisecond.
type ackQueue struct {
	mu        sync.Mutex
	streams   []streamAcks
	n         int
	timer     *time.Timer    // starts a flush; made once
	scheduled bool           // timer set and not fired yet
	flushing  bool           // a flush is sending
	flushes   sync.WaitGroup // timer flushes scheduled or under way
	closed    bool
	// ctx is the timer flushes' context, cancelled when Close gives up
	// waiting for them.
	ctx    context.Context
	cancel context.CancelFunc
}

// streamAcks are the IDs of entries of one stream to acknowledge.
type streamAcks struct {
	st  *stream
	ids []string
}

// Ack acknowledges the entries. By default (SyncAck off) it queues them and
// returns: they go out, one XACK per stream, within ackDelay together with
// those acknowledged meanwhile, and before Close returns. An entry whose
// XACK fails or is lost (a broken connection, a crash) stays pending and
// is delivered again after AckWait, which at-least-once allows. With
// SyncAck, it returns once Redis answered.
func (g groupSub) Ack(ctx context.Context, ds []driver.Delivery) error {
	if g.c.opts.syncAck {
		return g.ackNow(ctx, ds)
	}
	for _, d := range ds {
		if _, ok := d.Token.(*entry); !ok {
			return fmt.Errorf("redis: XACK: delivery %s has no stream entry token", d.ID)
		}
	}
	q := &g.acks
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return g.ackNow(ctx, ds)
	}
	for _, d := range ds {
		e := d.Token.(*entry)
		i := 0
		for i < len(q.streams) && q.streams[i].st != e.st {
			i++
		}
		if i == len(q.streams) {
			q.streams = append(q.streams, streamAcks{st: e.st})
		}
		q.streams[i].ids = append(q.streams[i].ids, e.id)
	}
	q.n += len(ds)
	switch {
	case q.flushing: // the flush under way sends them next
	case q.n >= ackBatch:
		q.flushing = true
		q.mu.Unlock()
		return g.flush(ctx)
	case !q.scheduled:
		q.scheduled = true
		q.flushes.Add(1)
		if q.timer == nil {
			q.ctx, q.cancel = context.WithCancel(context.Background())
			q.timer = time.AfterFunc(ackDelay, g.flushAcks)
		} else {
			q.timer.Reset(ackDelay)
		}
	}
	q.mu.Unlock()
	return nil
}

// take empties the queue and returns what it held. q.mu is held.
func (q *ackQueue) take() []streamAcks {
	batch := q.streams
	q.streams, q.n = nil, 0
	return batch
}

// flush sends the queue, and what is queued while it sends, until it is
// empty; the caller set q.flushing, which flush clears. It returns the
// first error.
func (g groupSub) flush(ctx context.Context) error {
	q := &g.acks
	var first error
	for {
		q.mu.Lock()
		batch := q.take()
		if len(batch) == 0 {
			q.flushing = false
			q.mu.Unlock()
			return first
		}
		q.mu.Unlock()
		if err := g.sendAcks(ctx, batch); err != nil && first == nil {
			first = err
		}
	}
}

// flushAcks sends the queue when the timer fires, unless a flush is under
// way (it sends what the timer would).
func (g groupSub) flushAcks() {
	q := &g.acks
	defer q.flushes.Done()
	q.mu.Lock()
	q.scheduled = false
	if q.flushing {
		q.mu.Unlock()
		return
	}
	q.flushing = true
	q.mu.Unlock()
	if err := g.flush(q.ctx); err != nil {
		g.warn("acknowledgements failed; the entries are delivered again after AckWait", err)
	}
}

// closeAcks waits for a timer flush under way, then sends what the queue
// still holds; later acks are sent at once. When ctx ends first it stops
// waiting and cancels the flush: what it had not sent stays pending and is
// delivered again after AckWait.
func (g groupSub) closeAcks(ctx context.Context) error {
	q := &g.acks
	q.mu.Lock()
	q.closed = true
	if q.scheduled && q.timer.Stop() {
		q.scheduled = false
		q.flushes.Done()
	}
	cancel := q.cancel // set with the timer, before Close
	q.mu.Unlock()
	if cancel != nil {
		defer cancel()
		flushed := make(chan struct{})
		go func() { q.flushes.Wait(); close(flushed) }()
		select {
		case <-flushed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	q.mu.Lock()
	batch := q.take()
	q.mu.Unlock()
	return g.sendAcks(ctx, batch)
}

// sendAcks sends one XACK per stream of batch, in one round trip of at
// most ackTimeout.
func (g groupSub) sendAcks(ctx context.Context, batch []streamAcks) error {
	n := 0
	for _, b := range batch {
		n += len(b.ids)
	}
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, ackTimeout)
	defer cancel()
	cmds := make([]goredis.Cmder, len(batch))
	for i, b := range batch {
		cmds[i] = goredis.NewIntCmd(ctx, idArgs([]any{"xack", b.st.key, g.group}, b.ids)...)
	}
	var err error
	if len(cmds) == 1 {
		err = g.c.client.Process(ctx, cmds[0])
	} else {
		_, err = g.c.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, cmd := range cmds {
				_ = p.Process(ctx, cmd)
			}
			return nil
		})
	}
	if err != nil {
		if cerr := cmdsErr(cmds); cerr != nil {
			err = cerr
		}
		return fmt.Errorf("redis: XACK (%d entries): %w", n, err)
	}
	return nil
}

// ackNow acknowledges the entries in one round trip and returns once Redis
// answered.
func (g groupSub) ackNow(ctx context.Context, ds []driver.Delivery) error {
	return g.perStream(ctx, "XACK", ds, false, func(p goredis.Pipeliner, key string, _ int, ids []string) {
		_ = p.Process(ctx, goredis.NewIntCmd(ctx, idArgs([]any{"xack", key, g.group}, ids)...))
	})
}
