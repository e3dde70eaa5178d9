package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gossipbus/gossip/gossip/driver"
)

// maintain claims entries handed back by members that left or left behind
// by members that died (groups), sweeps dead consumers, and re-reads the
// type registry (patterns), until Stop.
func (s *streamSub) maintain() {
	defer s.running.Done()
	var claimC, refreshC <-chan time.Time
	if s.group != "" {
		t := time.NewTicker(s.claimInterval())
		defer t.Stop()
		claimC = t.C
	}
	if s.wildcard {
		t := time.NewTicker(s.c.opts.refreshInterval)
		defer t.Stop()
		refreshC = t.C
	}
	lastSweep := time.Now()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-claimC:
			if !s.claim() {
				return
			}
			if time.Since(lastSweep) > s.staleAfter()/2 {
				lastSweep = time.Now()
				s.sweep()
			}
		case <-refreshC:
			s.refresh()
		}
	}
}

// claimInterval is ClaimInterval, by default AckWait/2 within [100ms, 1s]:
// entries a leaving member handed back (Release) wait at most that long for
// another member.
func (s *streamSub) claimInterval() time.Duration {
	if iv := s.c.opts.claimInterval; iv > 0 {
		return iv
	}
	return min(max(s.spec.AckWait/2, 100*time.Millisecond), time.Second)
}

// claim takes over entries of this group idle for at least AckWait (their
// consumer died or stalled, or handed them back) and sends them with their
// delivery count. false when the subscription stopped.
func (s *streamSub) claim() bool { return s.claimFrom(s.snapshot()) }

// claimFrom claims the idle entries of streams.
func (s *streamSub) claimFrom(streams []*stream) bool {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	for _, st := range streams {
		for start := "0-0"; ; {
			free := int64(cap(s.ch) - len(s.ch))
			if free <= 0 || s.ctx.Err() != nil {
				return s.ctx.Err() == nil
			}
			msgs, next, err := s.c.client.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
				Stream: st.key, Group: s.group, Consumer: s.consumer,
				MinIdle: s.spec.AckWait, Start: start, Count: free,
			}).Result()
			if err != nil {
				if isNoGroup(err) {
					_, _ = s.position(ctx, []*stream{st}, s.startID)
				} else if !errors.Is(err, goredis.Nil) && s.ctx.Err() == nil {
					s.warn("cannot claim idle entries", err)
				}
				break
			}
			if len(msgs) > 0 && !s.sendClaimed(ctx, st, msgs) {
				return false
			}
			if next == "0-0" || next == "" || len(msgs) == 0 {
				break
			}
			start = next
		}
	}
	return true
}

// sendClaimed sends claimed entries with their delivery counts, as the
// claim incremented them.
func (s *streamSub) sendClaimed(ctx context.Context, st *stream, msgs []goredis.XMessage) bool {
	pipe := s.c.client.Pipeline()
	counts := make([]*goredis.XPendingExtCmd, len(msgs))
	for i, m := range msgs {
		counts[i] = pipe.XPendingExt(ctx, &goredis.XPendingExtArgs{
			Stream: st.key, Group: s.group, Start: m.ID, End: m.ID, Count: 1,
		})
	}
	_, _ = pipe.Exec(ctx)
	ds := make([]driver.Delivery, 0, len(msgs))
	tokens := make([]entry, len(msgs))
	for i, m := range msgs {
		if m.Values == nil {
			continue // deleted meanwhile (Redis 6.2 reports these)
		}
		attempt := 2
		if p, err := counts[i].Result(); err == nil && len(p) == 1 {
			attempt = int(p[0].RetryCount)
		}
		msg, err := decodeEntry(st.typ, m.Values)
		ds = append(ds, s.delivery(st, m.ID, msg, err, attempt, &tokens[i]))
	}
	return s.sendAll(ds)
}

// staleAfter is how long a consumer of the group may be idle with nothing
// pending before a member deletes it.
func (s *streamSub) staleAfter() time.Duration {
	return max(10*s.spec.AckWait, 10*s.c.opts.block, time.Minute)
}

// sweep deletes consumers of the group that have nothing pending and have
// not read for a long time: members that died and whose entries were taken
// over.
func (s *streamSub) sweep() {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	for _, st := range s.snapshot() {
		consumers, err := s.c.client.XInfoConsumers(ctx, st.key, s.group).Result()
		if err != nil {
			continue
		}
		for _, cs := range consumers {
			if cs.Pending == 0 && cs.Idle > s.staleAfter() && cs.Name != s.consumer {
				_ = s.c.client.XGroupDelConsumer(ctx, st.key, s.group, cs.Name).Err()
			}
		}
	}
}

// KeepAlive resets the entries' idle time without counting a delivery
// (XCLAIM ... JUSTID to this member), so that no other member takes them
// over for another AckWait.
func (g groupSub) KeepAlive(ctx context.Context, ds []driver.Delivery) error {
	return g.perStream(ctx, "XCLAIM JUSTID", ds, false, func(p goredis.Pipeliner, key string, _ int, ids []string) {
		p.XClaimJustID(ctx, &goredis.XClaimArgs{Stream: key, Group: g.group, Consumer: g.consumer, Messages: ids})
	})
}

// Release hands entries that were never started back to the group at once.
func (g groupSub) Release(ctx context.Context, ds []driver.Delivery) error { return g.release(ctx, ds) }

// release hands entries back to the group: XCLAIM to this member with an
// idle time of AckWait, so that the next claim of any member (every claim
// interval) takes them, with the delivery count set to Attempt-1: the
// claim counts Attempt again, so a delivery that never started does not
// count (gossip counts an in-process retry in Attempt before it runs).
func (s *streamSub) release(ctx context.Context, ds []driver.Delivery) error {
	idle := max(s.spec.AckWait, time.Millisecond).Milliseconds()
	return s.perStream(ctx, "XCLAIM IDLE", ds, true, func(p goredis.Pipeliner, key string, attempt int, ids []string) {
		args := idArgs([]any{"XCLAIM", key, s.group, s.consumer, 0}, ids)
		p.Do(ctx, append(args, "IDLE", idle, "RETRYCOUNT", max(attempt-1, 0), "JUSTID")...)
	})
}

// perStream adds one command per stream (per stream and delivery count with
// byAttempt) for the entries of ds to a pipeline, and sends it.
func (s *streamSub) perStream(ctx context.Context, what string, ds []driver.Delivery, byAttempt bool,
	add func(p goredis.Pipeliner, key string, attempt int, ids []string),
) error {
	type batch struct {
		st      *stream
		attempt int
	}
	ids := map[batch][]string{}
	var order []batch
	for _, d := range ds {
		e, ok := d.Token.(*entry)
		if !ok {
			return fmt.Errorf("redis: %s: delivery %s has no stream entry token", what, d.ID)
		}
		b := batch{st: e.st}
		if byAttempt {
			b.attempt = d.Attempt
		}
		if ids[b] == nil {
			order = append(order, b)
		}
		ids[b] = append(ids[b], e.id)
	}
	if len(order) == 0 {
		return nil
	}
	pipe := s.c.client.Pipeline()
	for _, b := range order {
		add(pipe, b.st.key, b.attempt, ids[b])
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		if cerr := cmdsErr(cmds); cerr != nil {
			err = cerr
		}
		return fmt.Errorf("redis: %s (%d entries): %w", what, len(ds), err)
	}
	return nil
}

// idArgs appends ids to a command's args as pointers, which go-redis
// writes as the strings: an any holding a string is an allocation each, a
// pointer is none.
func idArgs(args []any, ids []string) []any {
	args = slices.Grow(args, len(ids))
	for i := range ids {
		args = append(args, &ids[i])
	}
	return args
}
