package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

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

// readState is what a reader keeps from one read to the next, so that a
// read allocates neither its reply's buffer nor its arguments (go-redis
// writes pointers as the values they point to; a string or an int64 in an
// any is an allocation each).
type readState struct {
	buf          bytes.Buffer // the reply
	args         []any
	count, block int64
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
	// Not node's maintenance-notification settings, which go-redis
	// changes under a lock of node's own when a connection's handshake
	// finds the server without them (NewClient copying them raced with
	// that): a reader's one blocking connection takes no such push
	// messages, and reconnects when its server goes.
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	// o holds node's settings as go-redis normalized them; NewClient
	// normalizes again, so "none" goes back as the value that says it.
	switch {
	case o.ReadTimeout == 0: // no timeout
		o.ReadTimeout = -1
	case o.ReadTimeout < 0: // no deadline set
		o.ReadTimeout = -2
	case o.ReadTimeout < s.c.opts.block+readMargin: // reads wait out Block (rawReads)
		o.ReadTimeout = s.c.opts.block + readMargin
	}
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
	var rs readState
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
		res, err := s.fetch(cmd, streams, &rs)
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
			if !s.sendRead(res) {
				return
			}
		}
	}
}

// fetch reads what the streams hold for the subscription, at most as many
// entries as Deliveries has room for, waiting up to Block. The read is not
// cancelled by Stop (a reply cut off would leave its entries pending to
// this member): Stop interrupts it with CLIENT UNBLOCK.
//
// On a reader's own client (see rawReads) the reply is read as RESP bytes
// into rs.buf (nothing returned refers to it), and parsed by parseRead; on
// any other client go-redis parses it.
func (s *streamSub) fetch(cmd goredis.Cmdable, streams []*stream, rs *readState) ([]readEntries, error) {
	count := max(int64(cap(s.ch)-len(s.ch)), 1)
	if c, ok := cmd.(*goredis.Client); ok && s.rawReads(c) {
		rs.count, rs.block = count, s.c.opts.block.Milliseconds()
		args := rs.args[:0]
		if s.group == "" {
			args = append(args, "xread")
		} else {
			args = append(args, "xreadgroup", "group", &s.group, &s.consumer)
		}
		args = append(args, "count", &rs.count, "block", &rs.block, "streams")
		for _, st := range streams {
			args = append(args, &st.key)
		}
		for _, st := range streams {
			if s.group != "" {
				args = append(args, ">") // what no member has read yet
			} else {
				args = append(args, &st.lastID)
			}
		}
		rs.args = args
		buf := &rs.buf
		buf.Reset()
		if buf.Cap() > maxReadBuffer {
			*buf = bytes.Buffer{} // not kept after a large reply
		}
		if err := c.Process(context.Background(), goredis.NewRawWriteToCmd(context.Background(), buf, args...)); err != nil {
			return nil, err
		}
		res, err := parseReply(buf.Bytes(), streams)
		if s.group != "" || !errors.Is(err, errBadReply) {
			return res, err
		}
		// gossip's parser rejected a reply go-redis may read: a listener
		// reads again from the same position through go-redis, rather than
		// failing on it forever. (A group member's read has made the
		// entries pending to it: they are claimed after AckWait, through
		// go-redis.)
		s.warn("a read's reply did not parse; read again through go-redis", err)
	}
	args := make([]string, 2*len(streams)) // the keys, then the IDs to read after
	for i, st := range streams {
		args[i], args[len(streams)+i] = st.key, st.lastID
		if s.group != "" {
			args[len(streams)+i] = ">" // what no member has read yet
		}
	}
	var res []goredis.XStream
	var err error
	if s.group == "" {
		res, err = cmd.XRead(context.Background(), &goredis.XReadArgs{
			Streams: args, Count: count, Block: s.c.opts.block,
		}).Result()
	} else {
		res, err = cmd.XReadGroup(context.Background(), &goredis.XReadGroupArgs{
			Group: s.group, Consumer: s.consumer, Streams: args, Count: count, Block: s.c.opts.block,
		}).Result()
	}
	if err != nil {
		return nil, err
	}
	out := make([]readEntries, 0, len(res))
	for _, xs := range res {
		i := slices.IndexFunc(streams, func(st *stream) bool { return st.key == xs.Stream })
		if i < 0 {
			continue
		}
		re := readEntries{st: streams[i], entries: make([]readEntry, len(xs.Messages))}
		for j, msg := range xs.Messages {
			re.entries[j] = readEntryOf(msg)
		}
		out = append(out, re)
	}
	return out, nil
}

// parseReply parses a raw read's reply: parseRead, but for tests.
var parseReply = parseRead

// rawReads reports whether a read on c can be sent as a raw command: c
// must not time out before the read's Block is over, as go-redis's own
// XREAD would not (it waits Block and 10 s more). A reader's own client
// is made so (readerClient).
func (s *streamSub) rawReads(c *goredis.Client) bool {
	t := c.Options().ReadTimeout
	return t <= 0 || t >= s.c.opts.block+readMargin
}

// maxReadBuffer is the largest reply buffer a reader keeps for the next
// read.
const maxReadBuffer = 1 << 20

// readMargin is how much longer than Block a reader waits for a read's
// reply, as go-redis does for a blocking command.
const readMargin = 10 * time.Second

// readEntryOf is a go-redis entry as a readEntry.
func readEntryOf(msg goredis.XMessage) readEntry {
	e := readEntry{id: msg.ID, fields: make([]string, 0, 2*len(msg.Values))}
	for k, v := range msg.Values {
		if s, ok := v.(string); ok {
			if k == fieldData {
				e.data = []byte(s)
			} else {
				e.fields = append(e.fields, k, s)
			}
		}
	}
	return e
}

// sendRead sends what one read returned; false when the subscription
// stopped first.
func (s *streamSub) sendRead(res []readEntries) bool {
	n := 0
	for _, re := range res {
		n += len(re.entries)
	}
	ds := make([]driver.Delivery, 0, n)
	var tokens []entry // a group member's Tokens
	if s.group != "" {
		tokens = make([]entry, n)
	}
	for _, re := range res {
		for _, e := range re.entries {
			re.st.lastID = e.id
			var tok *entry
			if tokens != nil {
				tok = &tokens[len(ds)]
			}
			m, err := decodeFields(re.st.typ, e.fields, e.data)
			ds = append(ds, s.delivery(re.st, e.id, m, err, 1, tok))
		}
	}
	return s.sendAll(ds)
}

// delivery makes the Delivery of entry id decoded as m; a corrupt entry
// (err) gets Err. A group member's Token is tok, set to the entry: the
// caller has the tokens of one read in one array, one allocation rather
// than one per entry.
func (s *streamSub) delivery(st *stream, id string, m *driver.Message, err error, attempt int, tok *entry) driver.Delivery {
	d := driver.Delivery{Message: m, Attempt: attempt}
	if s.group != "" {
		*tok = entry{st: st, id: id}
		d.Token = tok
	}
	if err != nil {
		d.Err = fmt.Errorf("entry %s of stream %s: %w", id, st.key, err)
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
