package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// pipeliner coalesces concurrent Publish calls into pipelines, so that many
// goroutines publishing one event each cost few round trips, while each
// caller still learns the result of its own commands.
//
// It is a leader/follower batcher, with no goroutine or timer of its own: a
// caller that finds no pipeline under way becomes the leader and sends its
// commands at once (a lone publisher pays nothing extra). Callers that
// arrive while the leader waits for its reply queue their commands and
// wait. Once the reply is in, the leader wakes the callers it sent for, and
// makes the first caller queued meanwhile the next leader, which sends
// everything queued by then in one pipeline; and so on.
type pipeliner struct {
	client goredis.UniversalClient

	mu    sync.Mutex
	busy  bool       // a leader is sending
	queue []*pubCall // waiting for the next pipeline
}

// pubCall is one Publish call's commands. Its fields other than ctx and
// cmds change under pipeliner.mu.
type pubCall struct {
	ctx  context.Context
	cmds []goredis.Cmder
	// done is closed once the commands were answered (each cmd holds its
	// result), or once the call was made the leader (lead is then true).
	done  chan struct{}
	lead  bool
	taken bool // in a pipeline, or made the leader: no longer withdrawable
}

// do sends cmds, in one pipeline with other callers' commands if a
// pipeline is under way, and returns once they are answered (each cmd
// holds its result) or ctx ended (ctx.Err(): the commands may still be
// sent, unless they were still queued).
func (p *pipeliner) do(ctx context.Context, cmds []goredis.Cmder) error {
	call := &pubCall{ctx: ctx, cmds: cmds, done: make(chan struct{})}
	p.mu.Lock()
	p.queue = append(p.queue, call)
	if !p.busy {
		p.busy = true
		p.promote(call)
	}
	p.mu.Unlock()
	select {
	case <-call.done:
		p.mu.Lock()
	case <-ctx.Done():
		p.mu.Lock()
		if !call.taken { // still queued: withdraw it, nothing was sent
			p.queue = slices.DeleteFunc(p.queue, func(c *pubCall) bool { return c == call })
		}
	}
	if !call.lead {
		// Answered, withdrawn, or in a pipeline under way (its commands
		// may still be stored).
		p.mu.Unlock()
		return ctx.Err()
	}
	// The leader, even when ctx ended (or the queue would stall): it sends
	// the queue, this call first.
	batch := p.queue
	p.queue = nil
	for _, c := range batch {
		c.taken = true
	}
	p.mu.Unlock()
	p.lead(batch)
	return ctx.Err()
}

// promote makes c, the first call queued, the leader. p.mu is held.
func (p *pipeliner) promote(c *pubCall) {
	c.lead, c.taken = true, true
	close(c.done)
}

// lead sends batch in one round trip, wakes its followers, and makes the
// first caller queued meanwhile the next leader (or marks the pipeliner
// idle).
func (p *pipeliner) lead(batch []*pubCall) {
	ctx, cancel := execContext(batch)
	if len(batch) == 1 && len(batch[0].cmds) == 1 {
		_ = p.client.Process(ctx, batch[0].cmds[0])
	} else {
		pipe := p.client.Pipeline()
		for _, c := range batch {
			_ = pipe.BatchProcess(ctx, c.cmds...)
		}
		_, _ = pipe.Exec(ctx)
	}
	cancel()
	p.mu.Lock()
	if len(p.queue) > 0 {
		p.promote(p.queue[0])
	} else {
		p.busy = false
	}
	p.mu.Unlock()
	for _, c := range batch[1:] {
		close(c.done)
	}
}

// execContext is the context a pipeline is sent with: the leader's values,
// without the callers' cancellation (one caller giving up must not fail the
// others' commands), and the latest of their deadlines (none if one of them
// has none: the client's own timeouts bound the round trip).
func execContext(batch []*pubCall) (context.Context, context.CancelFunc) {
	ctx := context.WithoutCancel(batch[0].ctx)
	var latest time.Time
	for _, c := range batch {
		d, ok := c.ctx.Deadline()
		if !ok {
			return ctx, func() {}
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(ctx, latest)
}

// cmdsErr is the first error among cmds (goredis.Nil excepted).
func cmdsErr(cmds []goredis.Cmder) error {
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil && !errors.Is(err, goredis.Nil) {
			return fmt.Errorf("%s: %w", cmd.Name(), err)
		}
	}
	return nil
}
