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

// reader reads a set of streams in one blocking command (one server), or
// one stream (Cluster, where keys of different types live in different
// slots).
type reader struct {
	streams []*stream
	// node is the shared client of the server the streams live on, which
	// sends CLIENT UNBLOCK for the reader; nil when unknown.
	node *goredis.Client
	// clientID is the server's id of the reader's own connection; 0 when
	// unknown.
	clientID int64
}

// nodeFor returns the client of the server r's streams live on, or nil.
func (s *streamSub) nodeFor(r *reader, reload bool) *goredis.Client {
	switch c := s.c.client.(type) {
	case *goredis.Client:
		return c
	case *goredis.ClusterClient: // perStream: r reads one stream, for good
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if reload {
			// The slots may have moved (MOVED replies to the reader's own
			// connection do not update the cluster client's slot map).
			c.ReloadState(ctx)
		}
		node, _ := c.MasterForKey(ctx, r.streams[0].key)
		return node
	}
	return nil
}

// readerClient makes a client of one connection to node's server, made
// with node's options but outside its pool: a blocking read holds its
// connection for up to Block, and hundreds of subscriptions would leave the
// pool none for XACK, XAUTOCLAIM and XCLAIM. It records the server's id of
// each connection it makes in r, for CLIENT UNBLOCK.
func (s *streamSub) readerClient(r *reader, node *goredis.Client) *goredis.Client {
	o := *node.Options()
	o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns = 1, 0, 1, 1
	onConnect := o.OnConnect
	o.OnConnect = func(ctx context.Context, cn *goredis.Conn) error {
		if onConnect != nil {
			if err := onConnect(ctx, cn); err != nil {
				return err
			}
		}
		if id, err := cn.ClientID(ctx).Result(); err == nil {
			s.mu.Lock()
			r.clientID = id
			s.mu.Unlock()
		}
		return nil
	}
	return goredis.NewClient(&o)
}

// unblock interrupts r's blocking read under way, if any (CLIENT UNBLOCK:
// the read returns nothing, and no entry it would have fetched is lost).
func (s *streamSub) unblock(ctx context.Context, r *reader) {
	s.mu.Lock()
	node, id := r.node, r.clientID
	s.mu.Unlock()
	if node != nil && id != 0 {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = node.ClientUnblock(ctx, id).Err()
	}
}

// read is a reader's loop: it reads on a connection of its own (through
// the shared client where it cannot have one) until Stop.
func (s *streamSub) read(r *reader) {
	defer s.running.Done()
	var own *goredis.Client              // nil when the node is unknown
	var cmd goredis.Cmdable = s.c.client // own, or else the shared client
	connect := func(reload bool) {
		if own != nil {
			_ = own.Close()
		}
		node := s.nodeFor(r, reload)
		s.mu.Lock()
		r.node, r.clientID = node, 0
		s.mu.Unlock()
		own, cmd = nil, s.c.client
		if node != nil {
			own = s.readerClient(r, node)
			cmd = own
		}
	}
	connect(false)
	defer func() {
		if own != nil {
			_ = own.Close()
		}
	}()
	failures := 0
	for s.ctx.Err() == nil {
		s.mu.Lock()
		streams := slices.Clone(r.streams)
		s.mu.Unlock()
		if len(streams) == 0 {
			// Every stream was dropped (no stream keys): wait as a read
			// would for one to be added.
			t := time.NewTimer(s.c.opts.block)
			select {
			case <-s.ctx.Done():
			case <-t.C:
			}
			t.Stop()
			continue
		}
		res, err := s.fetch(cmd, streams)
		switch {
		case errors.Is(err, goredis.Nil):
			failures = 0
		case err != nil:
			if s.ctx.Err() != nil {
				return
			}
			failures++
			if isWrongType(err) && s.wildcard {
				// A key became something else than a stream: read the
				// others.
				ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
				ok, terr := s.streamsOnly(ctx, streams)
				cancel()
				if terr == nil && len(ok) < len(streams) {
					s.dropStreams(r, slices.DeleteFunc(streams, func(st *stream) bool { return slices.Contains(ok, st) }))
					continue
				}
			}
			connect(true)
			if isNoGroup(err) {
				// The stream or the group went away (deleted, or a server
				// restarted without persistence): recreate them.
				ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
				_, err = s.position(ctx, streams, s.startID)
				cancel()
				if err == nil {
					continue
				}
			}
			s.warn("read failed; retrying", err)
			if !reconnectBackoff.Wait(s.ctx, failures) {
				return
			}
		default:
			failures = 0
			if !s.sendRead(res, streams) {
				return
			}
		}
	}
}

// fetch reads what the streams hold for the subscription, at most as many
// entries as Deliveries has room for, waiting up to Block. The read is not
// cancelled by Stop (a reply cut off would leave its entries pending to
// this member): Stop interrupts it with CLIENT UNBLOCK.
func (s *streamSub) fetch(cmd goredis.Cmdable, streams []*stream) ([]goredis.XStream, error) {
	count := max(int64(cap(s.ch)-len(s.ch)), 1)
	args := make([]string, 2*len(streams)) // the keys, then the IDs to read after
	for i, st := range streams {
		args[i], args[len(streams)+i] = st.key, st.lastID
		if s.group != "" {
			args[len(streams)+i] = ">" // what no member has read yet
		}
	}
	if s.group == "" {
		return cmd.XRead(context.Background(), &goredis.XReadArgs{
			Streams: args, Count: count, Block: s.c.opts.block,
		}).Result()
	}
	return cmd.XReadGroup(context.Background(), &goredis.XReadGroupArgs{
		Group: s.group, Consumer: s.consumer, Streams: args, Count: count, Block: s.c.opts.block,
	}).Result()
}

// sendRead sends what one read returned; false when the subscription
// stopped first.
func (s *streamSub) sendRead(res []goredis.XStream, streams []*stream) bool {
	n := 0
	for _, xs := range res {
		n += len(xs.Messages)
	}
	ds := make([]driver.Delivery, 0, n)
	var tokens []entry // a group member's Tokens
	if s.group != "" {
		tokens = make([]entry, n)
	}
	for _, xs := range res {
		i := slices.IndexFunc(streams, func(st *stream) bool { return st.key == xs.Stream })
		if i < 0 {
			continue
		}
		for _, msg := range xs.Messages {
			streams[i].lastID = msg.ID
			var tok *entry
			if tokens != nil {
				tok = &tokens[len(ds)]
			}
			ds = append(ds, s.delivery(streams[i], msg, 1, tok))
		}
	}
	return s.sendAll(ds)
}

// delivery turns an entry into a Delivery; a corrupt entry gets Err. A
// group member's Token is tok, set to the entry: the caller has the tokens
// of one read in one array, one allocation rather than one per entry.
func (s *streamSub) delivery(st *stream, msg goredis.XMessage, attempt int, tok *entry) driver.Delivery {
	m, err := decodeEntry(st.typ, msg.Values)
	d := driver.Delivery{Message: m, Attempt: attempt}
	if s.group != "" {
		*tok = entry{st: st, id: msg.ID}
		d.Token = tok
	}
	if err != nil {
		d.Err = fmt.Errorf("entry %s of stream %s: %w", msg.ID, st.key, err)
	}
	return d
}

// sendAll sends ds in order. When the subscription stops first, a group
// member hands the rest back to the group at once (a listener's are
// dropped: nothing else holds them), and sendAll reports false.
func (s *streamSub) sendAll(ds []driver.Delivery) bool {
	for i, d := range ds {
		if s.ctx.Err() == nil {
			select {
			case s.ch <- d:
				continue
			case <-s.ctx.Done():
			}
		}
		if s.group != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.release(ctx, ds[i:]); err != nil {
				s.warn("cannot hand back unsent entries; other members take them over after AckWait", err)
			}
		}
		return false
	}
	return true
}
