package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

// reader reads a set of streams in one blocking command (one server), or
// one stream (Cluster, where keys of different types live in different
// slots).
type reader struct {
	streams []*stream
	// clientID is the server's id of the reader's dedicated connection
	// (single server), for CLIENT UNBLOCK on Close; 0 when unknown.
	clientID int64
	node     *goredis.Client // the server the dedicated connection is to
}

// nodeFor returns the client of the server r's streams live on, or nil.
func (s *streamSub) nodeFor(r *reader, reload bool) *goredis.Client {
	switch c := s.c.client.(type) {
	case *goredis.Client:
		return c
	case *goredis.ClusterClient:
		s.mu.Lock()
		key := ""
		if len(r.streams) == 1 {
			key = r.streams[0].key
		}
		s.mu.Unlock()
		if key == "" {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if reload {
			// The slots may have moved (MOVED replies to the dedicated
			// connection do not update the cluster client's slot map).
			c.ReloadState(ctx)
		}
		node, err := c.MasterForKey(ctx, key)
		if err != nil {
			return nil
		}
		return node
	}
	return nil
}

// flight is a delivery a group subscription read and has not settled yet:
// the Delivery's Token.
type flight struct {
	st      *stream
	id      string
	attempt int
}

// flightKey identifies an entry in flight (without allocating).
type flightKey struct {
	st *stream
	id string
}

func (f *flight) key() flightKey { return flightKey{f.st, f.id} }

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

	ch          chan driver.Delivery
	stop        chan struct{}
	stopOnce    sync.Once
	senders     sync.WaitGroup // goroutines that send on ch
	sendersDone chan struct{}
	bg          sync.WaitGroup // every goroutine of the subscription
	idle        chan struct{}  // nudges the keeper when flights end
	ps          *goredis.PubSub
	discoverMu  sync.Mutex

	mu       sync.Mutex
	stopped  bool
	streams  map[string]*stream // by event type
	readers  []*reader
	inflight map[flightKey]*flight
	timers   map[*time.Timer]*flight
	lastWarn time.Time

	// Acks waiting for their XACK (see groupSub.Ack).
	ackMu  sync.Mutex
	acking bool      // a worker is sending XACKs
	acks   []*flight // acked, XACK not sent yet
}

// groupSub is a group member: it acknowledges.
type groupSub struct{ *streamSub }

// listenerSub is a broadcast listener: gossip redelivers in process.
type listenerSub struct{ *streamSub }

func (c *conn) subscribeStreams(ctx context.Context, spec driver.SubscribeSpec, consumer string) (subscription, error) {
	s := &streamSub{
		c: c, spec: spec, consumer: consumer,
		wildcard:    driver.IsPattern(spec.Pattern),
		ch:          make(chan driver.Delivery, spec.BufferSize),
		stop:        make(chan struct{}),
		sendersDone: make(chan struct{}),
		idle:        make(chan struct{}, 1),
		streams:     map[string]*stream{},
		inflight:    map[flightKey]*flight{},
		timers:      map[*time.Timer]*flight{},
	}
	if spec.Group != "" {
		s.group = spec.Group
		if s.wildcard {
			s.group = spec.Group + ":" + spec.Pattern
		}
	}
	streams, err := s.prepare(ctx)
	if err != nil {
		if s.ps != nil {
			_ = s.ps.Close()
		}
		return nil, fmt.Errorf("redis: subscribe %s: %w", spec.Pattern, err)
	}
	// The maintenance goroutine sends (claims), so it is a sender from the
	// start: readers added later never find the count at zero.
	s.senders.Add(1)
	s.bg.Add(1)
	go s.maintain()
	for _, st := range streams {
		s.addStream(st)
	}
	if s.ps != nil {
		s.bg.Add(1)
		go s.discover()
	}
	if s.group != "" {
		s.bg.Add(1)
		go s.keep()
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		s.senders.Wait()
		close(s.ch)
		close(s.sendersDone)
		s.nudge()
		s.bg.Wait()
		c.forget(s.self())
	}()
	return s.self(), nil
}

func (s *streamSub) self() subscription {
	if s.group != "" {
		return groupSub{s}
	}
	return listenerSub{s}
}

// prepare does everything Subscribe must finish before it returns: the
// groups exist, the positions are recorded, the type notifications are
// subscribed to.
func (s *streamSub) prepare(ctx context.Context) ([]*stream, error) {
	c := s.c
	var types []string
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
		after := fmt.Sprintf("%d-%d", now.UnixMilli()-1, uint64(math.MaxUint64))
		s.startID = after
		if s.group != "" {
			start := after
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
		for _, t := range all {
			if driver.ValidateType(t) == nil && driver.Match(s.spec.Pattern, t) {
				types = append(types, t)
			}
		}
	} else {
		// Register the type, so that wildcard subscriptions find it.
		if err := registerScript.Run(ctx, c.client, []string{c.typesKey()}, s.spec.Pattern, c.typesChannel()).Err(); err != nil && !errors.Is(err, goredis.Nil) {
			return nil, fmt.Errorf("register type in %s: %w", c.typesKey(), err)
		}
		types = []string{s.spec.Pattern}
		s.startID = "0"
	}
	streams := make([]*stream, len(types))
	for i, t := range types {
		streams[i] = &stream{typ: t, key: c.streamKey(t)}
	}
	if len(streams) == 0 {
		return nil, nil
	}
	start := s.startID
	if !s.wildcard && s.spec.Start == driver.StartNew {
		start = "$"
	}
	return streams, s.position(ctx, streams, start)
}

// position creates the group on each stream at start (a group that exists
// keeps its position), or records a listener's position: the last entry
// now in the stream. start "" means the listener's recorded position.
func (s *streamSub) position(ctx context.Context, streams []*stream, start string) error {
	pipe := s.c.client.Pipeline()
	if s.group != "" {
		cmds := make([]*goredis.StatusCmd, len(streams))
		for i, st := range streams {
			cmds[i] = pipe.XGroupCreateMkStream(ctx, st.key, s.group, start)
		}
		_, _ = pipe.Exec(ctx)
		for i, cmd := range cmds {
			if err := cmd.Err(); err != nil && !isBusyGroup(err) {
				return fmt.Errorf("XGROUP CREATE %s %s: %w", streams[i].key, s.group, err)
			}
		}
		return nil
	}
	cmds := make([]*goredis.XMessageSliceCmd, len(streams))
	for i, st := range streams {
		cmds[i] = pipe.XRevRangeN(ctx, st.key, "+", "-", 1)
	}
	_, _ = pipe.Exec(ctx)
	for i, cmd := range cmds {
		msgs, err := cmd.Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return fmt.Errorf("XREVRANGE %s: %w", streams[i].key, err)
		}
		streams[i].lastID = "0-0"
		if len(msgs) > 0 {
			streams[i].lastID = msgs[0].ID
		}
	}
	return nil
}

func isBusyGroup(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "BUSYGROUP") }
func isNoGroup(err error) bool   { return err != nil && strings.HasPrefix(err.Error(), "NOGROUP") }

func (s *streamSub) isStopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// addStream starts reading st.
func (s *streamSub) addStream(st *stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.streams[st.typ] != nil {
		return
	}
	s.streams[st.typ] = st
	if !s.c.perStream && len(s.readers) > 0 {
		r := s.readers[0]
		r.streams = append(r.streams, st)
		if r.clientID != 0 {
			// Interrupt the read under way so the next one includes st.
			s.unblock(r.node, r.clientID, nil)
		}
		return
	}
	r := &reader{streams: []*stream{st}}
	s.readers = append(s.readers, r)
	s.senders.Add(1)
	s.bg.Add(1)
	go s.read(r)
}

// found handles an event type the subscription learnt of after Subscribe.
func (s *streamSub) found(ctx context.Context, types []string) {
	s.discoverMu.Lock()
	defer s.discoverMu.Unlock()
	var streams []*stream
	s.mu.Lock()
	for _, t := range types {
		if s.streams[t] == nil && driver.ValidateType(t) == nil && driver.Match(s.spec.Pattern, t) {
			streams = append(streams, &stream{typ: t, key: s.c.streamKey(t)})
		}
	}
	s.mu.Unlock()
	if len(streams) == 0 {
		return
	}
	if s.group != "" {
		if err := s.position(ctx, streams, s.startID); err != nil {
			s.warn("cannot join streams of new event types; will retry", err)
			return
		}
	} else {
		for _, st := range streams {
			st.lastID = s.startID
		}
	}
	for _, st := range streams {
		s.addStream(st)
	}
}

// discover receives the notifications of new event types.
func (s *streamSub) discover() {
	defer s.bg.Done()
	failures := 0
	for {
		msg, err := s.ps.ReceiveMessage(context.Background())
		if err != nil {
			if s.isStopped() {
				return
			}
			failures++
			s.warn("type notifications interrupted; reconnecting", err)
			if !s.pause(failures) {
				return
			}
			s.refresh()
			continue
		}
		failures = 0
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s.found(ctx, []string{msg.Payload})
		cancel()
	}
}

// refresh re-reads the type registry.
func (s *streamSub) refresh() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	all, err := s.c.client.SMembers(ctx, s.c.typesKey()).Result()
	if err != nil {
		s.warn("cannot read the type registry", err)
		return
	}
	s.found(ctx, all)
}

// pause waits before retrying after failures; false if the subscription
// stopped meanwhile.
func (s *streamSub) pause(failures int) bool { return pause(s.stop, failures) }

// pause waits 50ms, doubling with each failure up to 1s, unless stop is
// closed first (false).
func pause(stop <-chan struct{}, failures int) bool {
	d := 50 * time.Millisecond
	for i := 1; i < failures && d < time.Second; i++ {
		d *= 2
	}
	d = min(d, time.Second)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
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

// read is a reader's loop.
func (s *streamSub) read(r *reader) {
	defer s.bg.Done()
	defer s.senders.Done()
	// The reader has a connection of its own to the server holding its
	// streams, so that Close can interrupt its blocking read (CLIENT
	// UNBLOCK on that server) instead of waiting up to Block. Where no such
	// connection can be had, reads go through the client and Close takes
	// up to Block.
	var cmd goredis.Cmdable = s.c.client
	var dedicated *goredis.Conn
	renew := func(reload bool) {
		if dedicated != nil {
			// A dedicated connection that failed once stays failed.
			_ = dedicated.Close()
			dedicated = nil
		}
		cmd = s.c.client
		node := s.nodeFor(r, reload)
		s.mu.Lock()
		r.node = node
		s.mu.Unlock()
		if node != nil {
			dedicated = node.Conn()
			cmd = dedicated
		}
	}
	renew(false)
	defer func() {
		if dedicated != nil {
			_ = dedicated.Close()
		}
	}()
	setID := func(id int64) {
		s.mu.Lock()
		r.clientID = id
		s.mu.Unlock()
	}
	failures := 0
	for !s.isStopped() {
		s.mu.Lock()
		streams := append([]*stream(nil), r.streams...)
		known := r.clientID != 0
		s.mu.Unlock()
		if dedicated != nil && !known {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if id, err := dedicated.ClientID(ctx).Result(); err == nil {
				setID(id)
			}
			cancel()
			if s.isStopped() {
				return
			}
		}
		count := int64(cap(s.ch) - len(s.ch))
		if count < 1 {
			count = 1
		}
		args := make([]string, 0, 2*len(streams))
		for _, st := range streams {
			args = append(args, st.key)
		}
		var (
			res []goredis.XStream
			err error
		)
		if s.group != "" {
			for range streams {
				args = append(args, ">")
			}
			res, err = cmd.XReadGroup(context.Background(), &goredis.XReadGroupArgs{
				Group: s.group, Consumer: s.consumer, Streams: args, Count: count, Block: s.c.opts.block,
			}).Result()
		} else {
			for _, st := range streams {
				args = append(args, st.lastID)
			}
			res, err = cmd.XRead(context.Background(), &goredis.XReadArgs{
				Streams: args, Count: count, Block: s.c.opts.block,
			}).Result()
		}
		if errors.Is(err, goredis.Nil) {
			failures = 0
			continue
		}
		if err != nil {
			if s.isStopped() {
				return
			}
			failures++
			setID(0)
			renew(true)
			if isNoGroup(err) {
				// The stream or the group went away (deleted, or a server
				// restarted without persistence): recreate them.
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				perr := s.position(ctx, streams, s.startID)
				cancel()
				if perr == nil {
					continue
				}
				err = perr
			}
			s.warn("read failed; retrying", err)
			if !s.pause(failures) {
				return
			}
			continue
		}
		failures = 0
		byKey := make(map[string]*stream, len(streams))
		for _, st := range streams {
			byKey[st.key] = st
		}
		if !s.deliverRead(res, byKey) {
			return
		}
	}
}

// deliverRead sends what one read returned; false when the subscription
// stopped first.
func (s *streamSub) deliverRead(res []goredis.XStream, byKey map[string]*stream) bool {
	if s.group == "" {
		for _, xs := range res {
			st := byKey[xs.Stream]
			if st == nil {
				continue
			}
			for _, msg := range xs.Messages {
				st.lastID = msg.ID
				if !s.send(s.delivery(st, msg, 1, nil)) {
					return false
				}
			}
		}
		return true
	}
	// Every entry read is in flight (kept alive) from now on, also while it
	// waits for room in the channel.
	var flights []*flight
	var msgs []goredis.XMessage
	s.mu.Lock()
	for _, xs := range res {
		st := byKey[xs.Stream]
		if st == nil {
			continue
		}
		for _, msg := range xs.Messages {
			f := &flight{st: st, id: msg.ID, attempt: 1}
			s.inflight[f.key()] = f
			flights = append(flights, f)
			msgs = append(msgs, msg)
		}
	}
	s.mu.Unlock()
	for i, f := range flights {
		if !s.send(s.delivery(f.st, msgs[i], f.attempt, f)) {
			// Not handed over: leave them pending for the group's other
			// members, which take them over after AckWait.
			s.land(flights[i:]...)
			return false
		}
	}
	return true
}

// land removes flights: they are settled, or no longer ours to keep alive.
func (s *streamSub) land(fs ...*flight) {
	s.mu.Lock()
	for _, f := range fs {
		if cur, ok := s.inflight[f.key()]; ok && cur == f {
			delete(s.inflight, f.key())
		}
	}
	empty := len(s.inflight) == 0
	s.mu.Unlock()
	if empty {
		s.nudge()
	}
}

func (s *streamSub) nudge() {
	select {
	case s.idle <- struct{}{}:
	default:
	}
}

func (s *streamSub) send(d driver.Delivery) bool {
	select {
	case s.ch <- d:
		return true
	case <-s.stop:
		return false
	}
}

// delivery turns an entry into a Delivery; a corrupt entry gets Err.
func (s *streamSub) delivery(st *stream, msg goredis.XMessage, attempt int, f *flight) driver.Delivery {
	m, err := decodeEntry(st.typ, msg.Values)
	d := driver.Delivery{Message: m, Attempt: attempt}
	if f != nil {
		d.Token = f
	}
	if err != nil {
		d.Err = fmt.Errorf("entry %s of stream %s: %w", msg.ID, st.key, err)
	}
	return d
}

// maintain claims entries other members left behind (groups) and re-reads
// the type registry (patterns) until the subscription stops.
func (s *streamSub) maintain() {
	defer s.bg.Done()
	defer s.senders.Done()
	var claimC, refreshC <-chan time.Time
	if s.group != "" {
		iv := s.c.opts.claimInterval
		if iv <= 0 {
			iv = max(s.spec.AckWait/2, 100*time.Millisecond)
		}
		t := time.NewTicker(iv)
		defer t.Stop()
		claimC = t.C
	}
	if s.wildcard {
		t := time.NewTicker(s.c.opts.refreshInterval)
		defer t.Stop()
		refreshC = t.C
	}
	if claimC == nil && refreshC == nil {
		<-s.stop
		return
	}
	lastSweep := time.Now()
	for {
		select {
		case <-s.stop:
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

// claim takes over entries of this group idle for longer than AckWait
// (their consumer died or stalled) and delivers them with their delivery
// count. false when the subscription stopped.
// snapshot returns the streams the subscription reads now.
func (s *streamSub) snapshot() []*stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Values(s.streams))
}

func (s *streamSub) claim() bool {
	streams := s.snapshot()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, st := range streams {
		start := "0-0"
		for {
			free := int64(cap(s.ch) - len(s.ch))
			if free <= 0 || s.isStopped() {
				return !s.isStopped()
			}
			msgs, next, err := s.c.client.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
				Stream: st.key, Group: s.group, Consumer: s.consumer,
				MinIdle: s.spec.AckWait, Start: start, Count: free,
			}).Result()
			if err != nil {
				if isNoGroup(err) {
					_ = s.position(ctx, []*stream{st}, s.startID)
				} else if !errors.Is(err, goredis.Nil) {
					s.warn("cannot claim idle entries", err)
				}
				break
			}
			if len(msgs) > 0 && !s.deliverClaimed(ctx, st, msgs) {
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

func (s *streamSub) deliverClaimed(ctx context.Context, st *stream, msgs []goredis.XMessage) bool {
	// The delivery counts, after the claim incremented them.
	pipe := s.c.client.Pipeline()
	counts := make([]*goredis.XPendingExtCmd, len(msgs))
	for i, m := range msgs {
		counts[i] = pipe.XPendingExt(ctx, &goredis.XPendingExtArgs{
			Stream: st.key, Group: s.group, Start: m.ID, End: m.ID, Count: 1,
		})
	}
	_, _ = pipe.Exec(ctx)
	var flights []*flight
	var claimed []goredis.XMessage
	s.mu.Lock()
	for i, m := range msgs {
		if m.Values == nil {
			continue // deleted meanwhile (Redis 6.2 reports these)
		}
		f := &flight{st: st, id: m.ID, attempt: 2}
		if p, err := counts[i].Result(); err == nil && len(p) == 1 {
			f.attempt = int(p[0].RetryCount)
		}
		if _, ours := s.inflight[f.key()]; ours {
			continue // our own, still being handled: already delivered
		}
		s.inflight[f.key()] = f
		flights = append(flights, f)
		claimed = append(claimed, m)
	}
	s.mu.Unlock()
	for i, f := range flights {
		d := s.delivery(st, claimed[i], f.attempt, f)
		if d.Err == nil && s.spec.MaxDeliveries > 0 && f.attempt > s.spec.MaxDeliveries {
			// Delivered more often than allowed without an ack: members
			// died or stalled on it (a poison event). Dead-letter it
			// rather than crash another member.
			d.Err = fmt.Errorf("entry %s of stream %s was delivered %d times without an ack (MaxDeliveries %d): consumers died or stalled handling it",
				f.id, st.key, f.attempt, s.spec.MaxDeliveries)
		}
		if !s.send(d) {
			s.land(flights[i:]...)
			return false
		}
	}
	return true
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
	streams := s.snapshot()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, st := range streams {
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

// keep keeps the group's in-flight entries alive (XCLAIM JUSTID resets their
// idle time without counting a delivery) so that no other member takes them
// over while a handler works, until the subscription stopped and its last
// delivery settled, or the connection closes. Then it deletes the consumer
// if nothing is pending for it.
func (s *streamSub) keep() {
	defer s.bg.Done()
	iv := max(s.spec.AckWait/3, 10*time.Millisecond)
	t := time.NewTicker(iv)
	defer t.Stop()
	sendersDone := s.sendersDone
	for {
		select {
		case <-t.C:
			s.keepAlive()
		case <-s.idle:
		case <-sendersDone:
			sendersDone = nil
		case <-s.c.closing:
			s.cleanup()
			return
		}
		s.mu.Lock()
		done := sendersDone == nil && len(s.inflight) == 0 && len(s.timers) == 0
		s.mu.Unlock()
		if done {
			s.cleanup()
			return
		}
	}
}

func (s *streamSub) keepAlive() {
	s.mu.Lock()
	byStream := map[*stream][]string{}
	for _, f := range s.inflight {
		byStream[f.st] = append(byStream[f.st], f.id)
	}
	s.mu.Unlock()
	if len(byStream) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(s.spec.AckWait/3, time.Second))
	defer cancel()
	pipe := s.c.client.Pipeline()
	for st, ids := range byStream {
		pipe.XClaimJustID(ctx, &goredis.XClaimArgs{
			Stream: st.key, Group: s.group, Consumer: s.consumer, MinIdle: 0, Messages: ids,
		})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		s.warn("cannot keep in-flight entries alive; other members may take them over after AckWait", err)
	}
}

// cleanup deletes the subscription's consumer from each stream's group when
// nothing is pending for it.
func (s *streamSub) cleanup() {
	streams := s.snapshot()
	if len(streams) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
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
	n := 0
	for i, st := range streams {
		if p, err := pending[i].Result(); err == nil && len(p) == 0 {
			pipe.XGroupDelConsumer(ctx, st.key, s.group, s.consumer)
			n++
		}
	}
	if n > 0 {
		_, _ = pipe.Exec(ctx)
	}
}

func (s *streamSub) Deliveries() <-chan driver.Delivery { return s.ch }

// Close stops reading. Deliveries already sent can still be acked and
// nacked; what is left unacknowledged stays pending for the group's other
// members.
func (s *streamSub) Close(context.Context) error {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopped = true
		for t, f := range s.timers {
			if t.Stop() {
				delete(s.timers, t)
				if cur := s.inflight[f.key()]; cur == f {
					delete(s.inflight, f.key())
				}
				s.senders.Done()
				s.bg.Done()
			}
		}
		// Interrupt blocking reads, once stop is closed. bg is added to
		// here, while the readers still count in it.
		for _, r := range s.readers {
			if r.clientID != 0 {
				s.unblock(r.node, r.clientID, s.stop)
			}
		}
		s.mu.Unlock()
		close(s.stop)
		if s.ps != nil {
			_ = s.ps.Close()
		}
		s.nudge()
	})
	return nil
}

// unblock interrupts the blocking read of a reader's connection, once the
// channel after is closed (nil: at once). The caller holds s.mu, and the
// subscription has not stopped or is stopping now, so bg is above zero.
func (s *streamSub) unblock(node *goredis.Client, clientID int64, after <-chan struct{}) {
	if node == nil {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		if after != nil {
			<-after
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = node.ClientUnblock(ctx, clientID).Err()
	}()
}

func (s *streamSub) closeNow() { _ = s.Close(context.Background()) }

func (s *streamSub) token(d driver.Delivery) (*flight, error) {
	f, ok := d.Token.(*flight)
	if !ok || f == nil {
		return nil, fmt.Errorf("redis: delivery %s has no stream entry token", d.ID)
	}
	s.c.mu.Lock()
	closed := s.c.closed && s.c.isClosing()
	s.c.mu.Unlock()
	if closed {
		return nil, driver.ErrSubscriptionClosed
	}
	return f, nil
}

// Ack acknowledges the entry. Acks are coalesced: the entry joins the
// queue of acked entries and, if no XACK is under way, the caller sends the
// queue (one XACK per stream with every queued ID, pipelined across
// streams) and keeps sending what other workers queued meanwhile until the
// queue is empty. So a worker that finds an XACK under way returns at once,
// and a busy subscription sends one XACK per round trip rather than one per
// event. Whoever sends an entry's XACK waits for its reply, so when the
// subscription's workers have returned (gossip's Shutdown waits for them
// before it closes the connection) every ack was sent. The entry is kept
// alive (in flight) until its XACK is answered. Ack's error is that of
// the XACKs its caller sent; later failures are logged: an XACK that fails
// leaves the entry pending, and it is delivered again after AckWait.
func (g groupSub) Ack(ctx context.Context, d driver.Delivery) error {
	f, err := g.token(d)
	if err != nil {
		return err
	}
	s := g.streamSub
	s.ackMu.Lock()
	s.acks = append(s.acks, f)
	if s.acking {
		s.ackMu.Unlock()
		return nil
	}
	s.acking = true
	s.ackMu.Unlock()
	ctx = context.WithoutCancel(ctx) // others' acks ride along
	var first error
	for {
		s.ackMu.Lock()
		batch := s.acks
		s.acks = nil
		if len(batch) == 0 {
			s.acking = false
			s.ackMu.Unlock()
			return first
		}
		s.ackMu.Unlock()
		if err := s.xack(ctx, batch); err != nil {
			if first == nil {
				first = err
			} else {
				s.warn("XACK failed; the entries are delivered again after AckWait", err)
			}
		}
	}
}

// xack acknowledges fs: one XACK per stream, in one round trip. Whatever
// happens, the entries are no longer kept alive by us: if XACK failed, they
// are taken over (by this member too) after AckWait.
func (s *streamSub) xack(ctx context.Context, fs []*flight) error {
	defer s.land(fs...)
	st := fs[0].st
	one := true
	for _, f := range fs[1:] {
		if f.st != st {
			one = false
			break
		}
	}
	if one {
		if err := s.c.client.XAck(ctx, st.key, s.group, flightIDs(fs)...).Err(); err != nil {
			return fmt.Errorf("redis: XACK %s (%d entries): %w", st.key, len(fs), err)
		}
		return nil
	}
	byStream := map[*stream][]*flight{}
	var order []*stream
	for _, f := range fs {
		if byStream[f.st] == nil {
			order = append(order, f.st)
		}
		byStream[f.st] = append(byStream[f.st], f)
	}
	pipe := s.c.client.Pipeline()
	for _, st := range order {
		pipe.XAck(ctx, st.key, s.group, flightIDs(byStream[st])...)
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		if cerr := cmdsErr(cmds); cerr != nil {
			err = cerr
		}
		return fmt.Errorf("redis: XACK (%d entries): %w", len(fs), err)
	}
	return nil
}

func flightIDs(fs []*flight) []string {
	ids := make([]string, len(fs))
	for i, f := range fs {
		ids[i] = f.id
	}
	return ids
}

// Nack redelivers the entry to this subscription after delay: it stays
// pending (kept alive) meanwhile, then XCLAIM counts the delivery and
// returns the entry. After Close it is left pending for the group's other
// members.
func (g groupSub) Nack(ctx context.Context, d driver.Delivery, delay time.Duration) error {
	f, err := g.token(d)
	if err != nil {
		return err
	}
	s := g.streamSub
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		s.land(f)
		return nil
	}
	s.senders.Add(1)
	s.bg.Add(1)
	var t *time.Timer
	t = time.AfterFunc(delay, func() {
		s.mu.Lock()
		delete(s.timers, t)
		s.mu.Unlock()
		s.redeliver(f)
	})
	s.timers[t] = f
	s.mu.Unlock()
	return nil
}

func (s *streamSub) redeliver(f *flight) {
	defer s.bg.Done()
	defer s.senders.Done()
	if s.isStopped() {
		s.land(f)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := s.c.client.XClaim(ctx, &goredis.XClaimArgs{
		Stream: f.st.key, Group: s.group, Consumer: s.consumer, MinIdle: 0, Messages: []string{f.id},
	}).Result()
	if err != nil || len(msgs) == 0 || msgs[0].Values == nil {
		if err == nil {
			err = errors.New("the entry is gone (trimmed by MAXLEN/MINID or deleted)")
			s.c.opts.logger.Warn("redis: cannot redeliver a nacked entry", "stream", f.st.key, "id", f.id, "group", s.group, "error", err)
		} else {
			s.warn("cannot redeliver a nacked entry; it is taken over after AckWait", err)
		}
		s.land(f)
		return
	}
	next := &flight{st: f.st, id: f.id, attempt: f.attempt + 1}
	s.mu.Lock()
	s.inflight[next.key()] = next
	s.mu.Unlock()
	if !s.send(s.delivery(f.st, msgs[0], next.attempt, next)) {
		s.land(next)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *streamSub) finished() <-chan struct{} { return s.sendersDone }
