package redis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gossipbus/gossip/gossip/driver"
)

// stream is one event type's stream as a subscription reads it.
type stream struct {
	typ, key string
	lastID   string // broadcast: the last entry read; owned by its reader
}

// entry, by pointer, is a group delivery's Token: the stream entry to
// settle.
type entry struct {
	st *stream
	id string
}

// streamSub is a Streams-mode subscription: a broadcast listener (XREAD) or
// a group member (XREADGROUP), on one type or on every type a pattern
// matches.
type streamSub struct {
	c        *conn
	spec     driver.SubscribeSpec
	wildcard bool
	group    string // the Redis consumer group; "" for a broadcast listener
	consumer string
	// startID is where streams found after Subscribe begin: the group's
	// start (recorded once per group) or, for a listener, the Subscribe time.
	startID string

	ch       chan driver.Delivery
	ctx      context.Context // ends at Stop: fetching stops
	cancel   context.CancelFunc
	running  sync.WaitGroup // the goroutines that read, claim and discover
	chClosed chan struct{}  // closed with ch, once they all returned
	ps       *goredis.PubSub
	addMu    sync.Mutex // one addTypes at a time
	stopOnce sync.Once

	mu        sync.Mutex
	stopped   bool
	streams   map[string]*stream // by event type
	notStream map[string]bool    // types whose key is no stream: skipped
	readers   []*reader
	lastWarn  time.Time

	acks ackQueue // a group member's acknowledgements not sent yet
}

// groupSub is a group member: unlike a broadcast listener (a bare
// *streamSub, which gossip redelivers to in process) it settles what gossip
// tells it (Acker, KeepAliver, Releaser).
type groupSub struct{ *streamSub }

func (c *conn) subscribeStreams(ctx context.Context, spec driver.SubscribeSpec, consumer string) (driver.Subscription, error) {
	s := &streamSub{
		c: c, spec: spec, consumer: consumer,
		wildcard:  driver.IsPattern(spec.Pattern),
		ch:        make(chan driver.Delivery, spec.BufferSize),
		chClosed:  make(chan struct{}),
		streams:   map[string]*stream{},
		notStream: map[string]bool{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if spec.Group != "" {
		s.group = spec.Group
		if s.wildcard {
			s.group = spec.Group + ":" + spec.Pattern
		}
	}
	streams, err := s.prepare(ctx)
	if err != nil {
		s.cancel()
		if s.ps != nil {
			_ = s.ps.Close()
		}
		return nil, fmt.Errorf("redis: subscribe %s: %w", spec.Pattern, err)
	}
	// The maintenance goroutine runs until Stop, so goroutines added later
	// never find the count at zero.
	s.running.Add(1)
	go s.maintain()
	go func() {
		s.running.Wait()
		close(s.ch)
		close(s.chClosed)
	}()
	if s.group != "" {
		// What members that left handed back, or dead ones left behind, is
		// older than anything new: take it first, before the readers start,
		// so that a member taking over a group (an Exclusive handover)
		// keeps the stream's order.
		s.claimFrom(streams)
	}
	s.addStreams(ctx, streams)
	if s.ps != nil {
		s.running.Add(1)
		go s.discover()
	}
	if s.group != "" {
		return groupSub{s}, nil
	}
	return s, nil
}

// prepare does everything Subscribe must finish before it returns: the
// groups exist, the positions are recorded, the type notifications are
// subscribed to.
func (s *streamSub) prepare(ctx context.Context) ([]*stream, error) {
	c := s.c
	types := []string{s.spec.Pattern}
	s.startID = "0"
	if s.wildcard {
		// Subscribe to notifications first: a type registered after the
		// registry is read below is announced to us.
		s.ps = c.client.Subscribe(ctx, c.typesChannel())
		if _, err := s.ps.Receive(ctx); err != nil {
			return nil, fmt.Errorf("subscribe to %s: %w", c.typesChannel(), err)
		}
		now, err := c.client.Time(ctx).Result()
		if err != nil {
			return nil, fmt.Errorf("TIME: %w", err)
		}
		// Entries from this millisecond on; the previous millisecond's
		// last possible ID excluded.
		s.startID = fmt.Sprintf("%d-%d", now.UnixMilli()-1, uint64(math.MaxUint64))
		if s.group != "" {
			start := s.startID
			if s.spec.Start == driver.StartOldest {
				start = "0"
			}
			pipe := c.client.Pipeline()
			pipe.HSetNX(ctx, c.groupsKey(), s.group, start)
			get := pipe.HGet(ctx, c.groupsKey(), s.group)
			if _, err := pipe.Exec(ctx); err != nil {
				return nil, fmt.Errorf("record the group's start in %s: %w", c.groupsKey(), err)
			}
			s.startID = get.Val()
		}
		all, err := c.client.SMembers(ctx, c.typesKey()).Result()
		if err != nil {
			return nil, fmt.Errorf("read the type registry %s: %w", c.typesKey(), err)
		}
		types = slices.DeleteFunc(all, func(t string) bool { return !s.matches(t) })
	} else if err := registerScript.Run(ctx, c.client, []string{c.typesKey()}, s.spec.Pattern, c.typesChannel()).Err(); err != nil && !errors.Is(err, goredis.Nil) {
		// Registered, so that wildcard subscriptions find the type.
		return nil, fmt.Errorf("register type in %s: %w", c.typesKey(), err)
	}
	streams := make([]*stream, len(types))
	for i, t := range types {
		streams[i] = &stream{typ: t, key: c.streamKey(t)}
	}
	start := s.startID
	if !s.wildcard && s.spec.Start == driver.StartNew {
		start = "$"
	}
	return s.position(ctx, streams, start)
}

func (s *streamSub) matches(t string) bool {
	return driver.ValidateType(t) == nil && driver.Match(s.spec.Pattern, t)
}

// position creates the group on each stream at start (a group that exists
// keeps its position), or records a listener's position: the last entry
// now in the stream. It returns the streams positioned: a pattern
// subscription skips keys that are not streams (see skip).
func (s *streamSub) position(ctx context.Context, streams []*stream, start string) ([]*stream, error) {
	pipe := s.c.client.Pipeline()
	cmds := make([]goredis.Cmder, len(streams))
	for i, st := range streams {
		if s.group != "" {
			cmds[i] = pipe.XGroupCreateMkStream(ctx, st.key, s.group, start)
		} else {
			cmds[i] = pipe.XRevRangeN(ctx, st.key, "+", "-", 1)
		}
	}
	_, _ = pipe.Exec(ctx)
	ok := streams[:0:0]
	for i, cmd := range cmds {
		st, err := streams[i], cmd.Err()
		switch {
		case s.group != "" && err != nil && strings.HasPrefix(err.Error(), "BUSYGROUP"):
		case isWrongType(err) && s.wildcard:
			s.skip(st, err)
			continue
		case err != nil && !errors.Is(err, goredis.Nil) && s.group != "":
			return nil, fmt.Errorf("XGROUP CREATE %s %s: %w", st.key, s.group, err)
		case err != nil && !errors.Is(err, goredis.Nil):
			return nil, fmt.Errorf("XREVRANGE %s: %w", st.key, err)
		case s.group == "":
			st.lastID = "0-0"
			if msgs := cmd.(*goredis.XMessageSliceCmd).Val(); len(msgs) > 0 {
				st.lastID = msgs[0].ID
			}
		}
		s.unskip(st)
		ok = append(ok, st)
	}
	return ok, nil
}

func isWrongType(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE") }

// skip leaves out the stream of a type whose key holds something else (a
// string, a hash, ...: not gossip's), logging it once. One such key must
// not stop a pattern subscription: XREAD of several keys fails as a whole
// when one is no stream. The registry refresh looks at it again.
func (s *streamSub) skip(st *stream, err error) {
	s.mu.Lock()
	first := !s.notStream[st.typ]
	s.notStream[st.typ] = true
	s.mu.Unlock()
	if first {
		s.c.opts.logger.Warn("redis: a key under the prefix is not a stream; skipping its event type (rechecked at every registry refresh)",
			"pattern", s.spec.Pattern, "group", s.spec.Group, "key", st.key, "error", err)
	}
}

// unskip forgets that st's key was no stream.
func (s *streamSub) unskip(st *stream) {
	s.mu.Lock()
	delete(s.notStream, st.typ)
	s.mu.Unlock()
}

// streamsOnly returns the streams whose keys are streams or do not exist
// yet, skipping the others (a listener's check before it reads new keys).
func (s *streamSub) streamsOnly(ctx context.Context, streams []*stream) ([]*stream, error) {
	pipe := s.c.client.Pipeline()
	cmds := make([]*goredis.StatusCmd, len(streams))
	for i, st := range streams {
		cmds[i] = pipe.Type(ctx, st.key)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("TYPE: %w", err)
	}
	ok := streams[:0:0]
	for i, cmd := range cmds {
		if t := cmd.Val(); t != "stream" && t != "none" {
			s.skip(streams[i], fmt.Errorf("WRONGTYPE: the key is a %s", t))
			continue
		}
		s.unskip(streams[i])
		ok = append(ok, streams[i])
	}
	return ok, nil
}

// dropStreams stops reading streams of r (they turned out not to be
// streams), so that a later refresh may add them again.
func (s *streamSub) dropStreams(r *reader, drop []*stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range drop {
		r.streams = slices.DeleteFunc(r.streams, func(x *stream) bool { return x == st })
		delete(s.streams, st.typ)
	}
}

func isNoGroup(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOGROUP") }

// addStreams starts reading streams: on one server, in the one reader
// (whose read under way is interrupted so that the next includes them);
// on a Cluster, one reader each.
func (s *streamSub) addStreams(ctx context.Context, streams []*stream) {
	var interrupt *reader
	s.mu.Lock()
	for _, st := range streams {
		if s.stopped || s.streams[st.typ] != nil {
			continue
		}
		s.streams[st.typ] = st
		if !s.c.perStream && len(s.readers) > 0 {
			s.readers[0].streams = append(s.readers[0].streams, st)
			interrupt = s.readers[0]
			continue
		}
		r := &reader{streams: []*stream{st}}
		s.readers = append(s.readers, r)
		s.running.Add(1)
		go s.read(r)
	}
	s.mu.Unlock()
	if interrupt != nil {
		s.unblock(ctx, interrupt)
	}
}

// addTypes starts reading the streams of the types a wildcard
// subscription learnt of after Subscribe that its pattern matches.
func (s *streamSub) addTypes(ctx context.Context, types []string) {
	s.addMu.Lock()
	defer s.addMu.Unlock()
	var streams []*stream
	s.mu.Lock()
	for _, t := range types {
		if s.streams[t] == nil && s.matches(t) {
			streams = append(streams, &stream{typ: t, key: s.c.streamKey(t), lastID: s.startID})
		}
	}
	s.mu.Unlock()
	if len(streams) == 0 {
		return
	}
	var err error
	if s.group != "" {
		streams, err = s.position(ctx, streams, s.startID)
	} else {
		streams, err = s.streamsOnly(ctx, streams)
	}
	if err != nil {
		s.warn("cannot join streams of new event types; will retry", err)
		return
	}
	s.addStreams(ctx, streams)
}

// discover receives the notifications of new event types.
func (s *streamSub) discover() {
	defer s.running.Done()
	failures := 0
	for {
		msg, err := s.ps.ReceiveMessage(s.ctx)
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			failures++
			s.warn("type notifications interrupted; reconnecting", err)
			if !reconnectBackoff.Wait(s.ctx, failures) {
				return
			}
			s.refresh()
			continue
		}
		failures = 0
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		s.addTypes(ctx, []string{msg.Payload})
		cancel()
	}
}

// refresh re-reads the type registry.
func (s *streamSub) refresh() {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	all, err := s.c.client.SMembers(ctx, s.c.typesKey()).Result()
	if err != nil {
		s.warn("cannot read the type registry", err)
		return
	}
	s.addTypes(ctx, all)
}

// warn logs a problem, at most every 10 seconds per subscription.
func (s *streamSub) warn(msg string, err error) {
	s.mu.Lock()
	if time.Since(s.lastWarn) < 10*time.Second {
		s.mu.Unlock()
		return
	}
	s.lastWarn = time.Now()
	s.mu.Unlock()
	s.c.opts.logger.Warn("redis: "+msg, "pattern", s.spec.Pattern, "group", s.spec.Group, "error", err)
}

// snapshot returns the streams the subscription reads now.
func (s *streamSub) snapshot() []*stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Values(s.streams))
}

func (s *streamSub) Deliveries() <-chan driver.Delivery { return s.ch }

// Stop stops reading and claiming: blocking reads are interrupted (CLIENT
// UNBLOCK), and a group member hands the entries it read but could not
// send back to the group at once (see Release). It returns once the
// subscription's goroutines (which close the readers' connections) have
// returned and Deliveries is closed.
func (s *streamSub) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopped = true
		readers := slices.Clone(s.readers)
		s.mu.Unlock()
		s.cancel()
		if s.ps != nil {
			_ = s.ps.Close()
		}
		for _, r := range readers {
			s.unblock(ctx, r)
		}
	})
	select {
	case <-s.chClosed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close makes sure Stop finished and, for a group member, sends the
// acknowledgements still queued and deletes its consumer from each
// stream's group when nothing is pending for it there.
// Entries still pending to it (handed back, or left unacknowledged) are
// taken over by other members; the consumer is swept once they are.
func (s *streamSub) Close(ctx context.Context) error {
	err := s.Stop(ctx)
	if s.group == "" {
		return err
	}
	if aerr := (groupSub{s}).closeAcks(ctx); aerr != nil {
		s.warn("acknowledgements failed at close; the entries are delivered again after AckWait", aerr)
	}
	if err != nil {
		return err
	}
	s.deleteConsumer(ctx)
	return nil
}

// deleteConsumer deletes the consumer from each group where nothing is
// pending for it.
func (s *streamSub) deleteConsumer(ctx context.Context) {
	streams := s.snapshot()
	if len(streams) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	pipe := s.c.client.Pipeline()
	pending := make([]*goredis.XPendingExtCmd, len(streams))
	for i, st := range streams {
		pending[i] = pipe.XPendingExt(ctx, &goredis.XPendingExtArgs{
			Stream: st.key, Group: s.group, Start: "-", End: "+", Count: 1, Consumer: s.consumer,
		})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return
	}
	pipe = s.c.client.Pipeline()
	for i, st := range streams {
		if p, err := pending[i].Result(); err == nil && len(p) == 0 {
			pipe.XGroupDelConsumer(ctx, st.key, s.group, s.consumer)
		}
	}
	if pipe.Len() > 0 {
		_, _ = pipe.Exec(ctx)
	}
}
