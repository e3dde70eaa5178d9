package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gossipbus/gossip/gossip/driver"
	"github.com/gossipbus/gossip/gossip/driver/cloudevents"
)

func init() {
	driver.Register("redis", Driver{}, "redis", "rediss")
}

// Driver opens Redis connections; it is registered as "redis" and for the
// redis:// and rediss:// schemes.
type Driver struct{}

// Open connects to the Redis named by dsn: "redis" alone is
// redis://127.0.0.1:6379/0; otherwise a redis:// or rediss:// URL as go-redis
// parses it, with gossip's own query parameters (mode, prefix, maxlen,
// maxage, dedup_window, claim_interval, block, refresh_interval, cluster, tls_ca,
// tls_cert, tls_key) taken out first. Numeric parameters out of their
// range (docs/drivers/redis.md) are an error naming the parameter.
//
//	redis://user:pass@host:6379/0                       one server
//	redis://host:7000?addr=host:7001&addr=host:7002     Cluster (seed nodes)
//	redis://host:7000,host:7001,host:7002               Cluster, the same
//	redis://host:7000?cluster=true                      Cluster, one seed
//	redis://:pass@sentinel:26379/0?master_name=mymaster Sentinel
//
// The whole open (dial, handshake, PING, the version check) ends by ctx's
// deadline (gossip.Config.DialTimeout), or the URL's dial_timeout when that
// is shorter. Clients Open makes honour their commands' ctx deadlines
// (go-redis's ContextTimeoutEnabled) unless the URL says
// context_timeout_enabled.
func (Driver) Open(ctx context.Context, dsn string, opts driver.Options) (driver.Conn, error) {
	if !strings.Contains(dsn, "://") {
		dsn = DefaultURL
	}
	o := defaultOptions()
	o.logger = opts.Logger // validate defaults a nil one
	if opts.Source != "" {
		o.source = opts.Source
	}
	client, addr, err := parseURL(dsn, &o)
	if err != nil {
		return nil, err
	}
	if o.dialTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.dialTimeout)
		defer cancel()
	}
	var c *conn
	if err = o.validate(); err == nil {
		if err = ping(ctx, client, addr); err == nil {
			c, err = newConn(ctx, client, o, true)
		}
	}
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	return c, nil
}

// New returns a connection on a ready go-redis client (a *redis.Client,
// *redis.ClusterClient, failover client, ...), for gossip.Config.Conn. The
// connection does not close the client: its owner does, after the bus shut
// down. Blocking reads do not use the client's pool: each reader has a
// connection of its own, made with the client's options.
func New(client goredis.UniversalClient, opts ...Option) (driver.Conn, error) {
	if client == nil {
		return nil, errors.New("redis: New with a nil client")
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return newConn(ctx, client, o, false)
}

// ping checks the server answers within ctx, with a one-line error naming
// the address and how to start a Redis when it does not.
func ping(ctx context.Context, client goredis.UniversalClient, addr string) error {
	err := client.Ping(ctx).Err()
	if err == nil {
		return nil
	}
	hint := ""
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "connection refused") {
		port := "6379"
		if _, p, perr := net.SplitHostPort(strings.TrimPrefix(addr, "cluster ")); perr == nil && !strings.Contains(p, ",") {
			port = p
		}
		hint = fmt.Sprintf(" (is Redis running? start one with `redis-server --port %s` or `docker run -p %s:6379 redis:7`)", port, port)
	}
	return fmt.Errorf("redis: connect to %s: %v%s", addr, err, hint)
}

// conn is an open connection in either mode.
type conn struct {
	client     goredis.UniversalClient
	ownClient  bool
	opts       options
	perStream  bool // Cluster (or another sharded client): one reader per stream
	consumerID string
	known      sync.Map     // event type → time registered
	pipe       pipeliner    // sends Publish's commands
	seq        atomic.Int64 // numbers the consumers of Streams subscriptions
	closed     atomic.Bool
}

func newConn(ctx context.Context, client goredis.UniversalClient, o options, own bool) (*conn, error) {
	_, single := client.(*goredis.Client)
	c := &conn{client: client, ownClient: own, opts: o, perStream: !single}
	c.pipe.client = client
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	c.consumerID = fmt.Sprintf("%s@%s:%d:%s", o.source, host, os.Getpid(), hex.EncodeToString(b))
	if o.mode == Streams {
		if err := checkVersion(ctx, client); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// checkVersion makes sure the server has XAUTOCLAIM (Redis 6.2).
func checkVersion(ctx context.Context, client goredis.UniversalClient) error {
	info, err := client.Info(ctx, "server").Result()
	if err != nil {
		return nil // a server that hides INFO: find out at the first command
	}
	_, v, _ := strings.Cut(info, "redis_version:")
	v, _, _ = strings.Cut(v, "\n")
	v = strings.TrimSpace(v)
	var major, minor int
	if n, _ := fmt.Sscanf(v, "%d.%d", &major, &minor); n == 2 && (major < 6 || major == 6 && minor < 2) {
		return fmt.Errorf("redis: server version %s has no XAUTOCLAIM; Streams mode needs Redis 6.2 or later (or use mode=pubsub)", v)
	}
	return nil
}

// Name is the transport's name, reported as messaging.system.
func (c *conn) Name() string { return "redis" }

func (c *conn) streamKey(typ string) string   { return c.opts.prefix + ":{" + typ + "}:stream" }
func (c *conn) typesKey() string              { return c.opts.prefix + ":types" }
func (c *conn) typesChannel() string          { return c.opts.prefix + ":types-added" }
func (c *conn) groupsKey() string             { return c.opts.prefix + ":groups" }
func (c *conn) pubsubChannel(t string) string { return c.opts.prefix + ":" + t }

// key is the stream (Streams) or the channel (Pub/Sub) of event type t.
func (c *conn) key(t string) string {
	if c.opts.mode == PubSub {
		return c.pubsubChannel(t)
	}
	return c.streamKey(t)
}

// registerScript adds a type to the registry and tells wildcard
// subscriptions when it is new, in one command.
var registerScript = goredis.NewScript(`
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[2], ARGV[1])
  return 1
end
return 0`)

// registerEvery is how often a publisher re-registers a type it already
// registered (the registry may have been lost with a server without
// persistence).
const registerEvery = time.Minute

// Publish sends msgs in one round trip: one XADD each (Streams; plus, for
// each type, XTRIM with MaxAge and the type's registration now and then) or
// one PUBLISH each (Pub/Sub). Concurrent calls share pipelines (see
// pipeliner); each returns once its own commands were answered.
func (c *conn) Publish(ctx context.Context, msgs []*driver.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.closed.Load() {
		return errors.New("redis: publish on a closed connection")
	}
	cmds := make([]goredis.Cmder, 0, len(msgs)+2)
	var key any // msgs[i].Type's stream or channel, made once for a run of one type
	var newTypes []string
	now := time.Now()
	for i, m := range msgs {
		if i == 0 || m.Type != msgs[i-1].Type {
			key = c.key(m.Type)
		}
		if c.opts.mode == PubSub {
			payload, err := cloudevents.EncodeStructured(m)
			if err != nil {
				return fmt.Errorf("redis: encode %s: %w", m.ID, err)
			}
			cmds = append(cmds, goredis.NewIntCmd(ctx, "publish", key, payload))
			continue
		}
		if c.opts.dedupWindow > 0 {
			cmds = append(cmds, c.xaddOnce(ctx, key.(string), m))
		} else {
			cmds = append(cmds, xadd(ctx, key, &c.opts.maxLen, m))
		}
		if slices.ContainsFunc(msgs[:i], func(p *driver.Message) bool { return p.Type == m.Type }) {
			continue // trimmed and registered for an earlier message
		}
		if c.opts.maxAge > 0 {
			minID := strconv.FormatInt(now.Add(-c.opts.maxAge).UnixMilli(), 10)
			cmds = append(cmds, goredis.NewIntCmd(ctx, "xtrim", key, "minid", "~", minID))
		}
		if at, ok := c.known.Load(m.Type); !ok || now.Sub(at.(time.Time)) > registerEvery {
			newTypes = append(newTypes, m.Type)
			// Queued on a pipeline of its own only to build it.
			cmds = append(cmds, registerScript.Eval(ctx, c.client.Pipeline(), []string{c.typesKey()}, m.Type, c.typesChannel()))
		}
	}
	if err := c.pipe.do(ctx, cmds); err != nil {
		return err
	}
	if err := cmdsErr(cmds); err != nil {
		return fmt.Errorf("redis: publish: %w", err)
	}
	for _, t := range newTypes {
		c.known.Store(t, now)
	}
	return nil
}

// CopiesData tells gossip that a Publish that returned nil holds no
// message's Data: its commands were written out and answered.
func (c *conn) CopiesData() bool { return true }

// Subscribe starts a Pub/Sub or Streams subscription.
func (c *conn) Subscribe(ctx context.Context, spec driver.SubscribeSpec) (driver.Subscription, error) {
	spec.BufferSize = max(spec.BufferSize, 1)
	switch {
	case c.closed.Load():
		return nil, driver.ErrSubscriptionClosed
	case c.opts.mode == Streams:
		return c.subscribeStreams(ctx, spec, fmt.Sprintf("%s#%d", c.consumerID, c.seq.Add(1)))
	case spec.Group != "":
		return nil, fmt.Errorf("redis: Group %q in Pub/Sub mode (use Streams mode for groups): %w", spec.Group, driver.ErrGroupsUnsupported)
	}
	return c.subscribePubSub(ctx, spec)
}

// Close closes the client if Open made it. gossip has closed every
// subscription before.
func (c *conn) Close(ctx context.Context) error {
	if c.closed.Swap(true) || !c.ownClient {
		return nil
	}
	if err := c.client.Close(); err != nil && !errors.Is(err, goredis.ErrClosed) {
		return err
	}
	return nil
}
