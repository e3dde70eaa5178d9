package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gossipbus/gossip/gossip/driver"
)

func init() {
	driver.Register("redis", Driver{}, "redis", "rediss")
}

// DefaultURL is what the driver name "redis" alone connects to.
const DefaultURL = "redis://127.0.0.1:6379/0"

// Defaults of the options.
const (
	DefaultPrefix          = "gossip"
	DefaultMaxLen          = 100_000
	DefaultBlock           = time.Second
	DefaultRefreshInterval = 10 * time.Second
)

// Mode is how the driver carries events.
type Mode string

const (
	// Streams (the default) keeps events in a Redis Stream per event type,
	// read through consumer groups: durable, acknowledged, shared in groups.
	Streams Mode = "streams"
	// PubSub uses PUBLISH / PSUBSCRIBE: low latency broadcast, nothing
	// kept, no groups.
	PubSub Mode = "pubsub"
)

// Option configures a connection made by New (Open takes the same settings
// from URL query parameters).
type Option func(*options)

type options struct {
	prefix          string
	mode            Mode
	maxLen          int64
	maxAge          time.Duration
	claimInterval   time.Duration
	block           time.Duration
	refreshInterval time.Duration
	logger          *slog.Logger
	source          string
}

func defaultOptions() options {
	return options{
		prefix:          DefaultPrefix,
		mode:            Streams,
		maxLen:          DefaultMaxLen,
		block:           DefaultBlock,
		refreshInterval: DefaultRefreshInterval,
		logger:          slog.Default(),
		source:          filepath.Base(os.Args[0]),
	}
}

// Prefix sets the namespace every key and channel of the connection starts
// with (URL: prefix=...; default "gossip"). Connections with different
// prefixes on one Redis never see each other's events. It must not contain
// '{' or '}', which would break the Cluster hash tags.
func Prefix(p string) Option { return func(o *options) { o.prefix = p } }

// WithMode picks Streams (the default) or PubSub (URL: mode=pubsub).
func WithMode(m Mode) Option { return func(o *options) { o.mode = m } }

// MaxLen is the approximate number of entries each event type's stream
// keeps (XADD MAXLEN ~ n; URL: maxlen=n; default 100000). A negative value
// keeps everything. Trimming is by count only: an entry a group has not read
// yet may be trimmed if the group is far enough behind.
func MaxLen(n int64) Option { return func(o *options) { o.maxLen = n } }

// MaxAge trims entries older than d from a stream on every publish to it
// (XTRIM MINID ~, by the publisher's clock; URL: maxage=24h; default none).
// It applies together with MaxLen.
func MaxAge(d time.Duration) Option { return func(o *options) { o.maxAge = d } }

// ClaimInterval is how often a group member looks for entries other members
// left unacknowledged for longer than gossip.Config.AckWait and takes them
// over (URL: claim_interval=5s; default AckWait/2, at least 100ms).
func ClaimInterval(d time.Duration) Option { return func(o *options) { o.claimInterval = d } }

// Block is how long one XREAD / XREADGROUP waits for entries (URL:
// block=1s; default 1s). Unsubscribe and Shutdown take up to this long; a
// shorter block costs more idle round trips.
func Block(d time.Duration) Option { return func(o *options) { o.block = d } }

// RefreshInterval is how often a wildcard subscription re-reads the
// registry of event types, besides the notifications it receives when a
// type is first published (URL: refresh_interval=10s; default 10s).
func RefreshInterval(d time.Duration) Option { return func(o *options) { o.refreshInterval = d } }

// Logger receives the driver's diagnostics (default slog.Default(); Open
// uses gossip.Config.Logger).
func Logger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Source names the service in consumer names (default the program's name;
// Open uses gossip.Config.Source).
func Source(s string) Option { return func(o *options) { o.source = s } }

func (o *options) validate() error {
	if o.prefix == "" {
		return errors.New("redis: empty key prefix")
	}
	if strings.ContainsAny(o.prefix, "{}") {
		return fmt.Errorf("redis: key prefix %q must not contain '{' or '}' (they are the Cluster hash tags)", o.prefix)
	}
	switch o.mode {
	case "":
		o.mode = Streams
	case Streams, PubSub:
	default:
		return fmt.Errorf("redis: unknown mode %q (streams or pubsub)", o.mode)
	}
	if o.maxLen == 0 {
		o.maxLen = DefaultMaxLen
	}
	if o.block <= 0 {
		o.block = DefaultBlock
	}
	if o.block < time.Millisecond {
		o.block = time.Millisecond
	}
	if o.refreshInterval <= 0 {
		o.refreshInterval = DefaultRefreshInterval
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	return nil
}

// Driver opens Redis connections; it is registered as "redis" and for the
// redis:// and rediss:// schemes.
type Driver struct{}

// ourParams are the query parameters gossip reads; the others go to go-redis.
var ourParams = []string{"mode", "prefix", "maxlen", "maxage", "claim_interval", "block", "refresh_interval", "cluster"}

// Open connects to the Redis named by dsn: "redis" alone is
// redis://127.0.0.1:6379/0; otherwise a redis:// or rediss:// URL as go-redis
// parses it, with gossip's own query parameters (mode, prefix, maxlen,
// maxage, claim_interval, block, refresh_interval, cluster) taken out first.
//
//	redis://user:pass@host:6379/0                       one server
//	redis://host:7000?addr=host:7001&addr=host:7002     Cluster (seed nodes)
//	redis://host:7000,host:7001,host:7002               Cluster, the same
//	redis://host:7000?cluster=true                      Cluster, one seed
//	redis://:pass@sentinel:26379/0?master_name=mymaster Sentinel
//
// Open pings the server within ctx's deadline.
func (Driver) Open(ctx context.Context, dsn string, opts driver.Options) (driver.Conn, error) {
	if !strings.Contains(dsn, "://") {
		dsn = DefaultURL
	}
	o := defaultOptions()
	if opts.Logger != nil {
		o.logger = opts.Logger
	}
	if opts.Source != "" {
		o.source = opts.Source
	}
	client, addr, err := parseURL(dsn, &o)
	if err != nil {
		return nil, err
	}
	if err := o.validate(); err != nil {
		_ = client.Close()
		return nil, err
	}
	if err := ping(ctx, client, addr); err != nil {
		_ = client.Close()
		return nil, err
	}
	c, err := newConn(ctx, client, o, true)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	return c, nil
}

// New returns a connection on a ready go-redis client (a *redis.Client,
// *redis.ClusterClient, failover client, ...), for gossip.Config.Conn. The
// connection does not close the client: its owner does, after the bus shut
// down.
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

// parseURL takes gossip's parameters out of dsn into o and builds the
// go-redis client for the rest. addr names the server(s) for errors.
func parseURL(dsn string, o *options) (goredis.UniversalClient, string, error) {
	redacted := redact(dsn)
	scheme, rest, _ := strings.Cut(dsn, "://")
	// Several hosts separated by commas: the first is the URL's host, the
	// others become addr parameters (Cluster seeds or Sentinels).
	authEnd := strings.IndexAny(rest, "/?#")
	if authEnd < 0 {
		authEnd = len(rest)
	}
	authority, tail := rest[:authEnd], rest[authEnd:]
	userinfo, hosts := "", authority
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo, hosts = authority[:at+1], authority[at+1:]
	}
	hostList := strings.Split(hosts, ",")
	u, err := url.Parse(scheme + "://" + userinfo + hostList[0] + tail)
	if err != nil {
		return nil, "", fmt.Errorf("redis: bad URL %s: %v", redacted, stripSecret(err, dsn))
	}
	q := u.Query()
	for _, h := range hostList[1:] {
		if h != "" {
			q.Add("addr", h)
		}
	}
	get := func(k string) string { return q.Get(k) }
	if v := get("mode"); v != "" {
		o.mode = Mode(strings.ToLower(v))
	}
	if v, ok := q["prefix"]; ok {
		o.prefix = v[len(v)-1]
	}
	if v := get("maxlen"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("redis: bad maxlen=%q in %s", v, redacted)
		}
		o.maxLen = n
	}
	durations := map[string]*time.Duration{
		"maxage": &o.maxAge, "claim_interval": &o.claimInterval, "block": &o.block, "refresh_interval": &o.refreshInterval,
	}
	for k, p := range durations {
		if v := get(k); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, "", fmt.Errorf("redis: bad %s=%q in %s: %v", k, v, redacted, err)
			}
			*p = d
		}
	}
	cluster := false
	if v := get("cluster"); v != "" {
		cluster, err = strconv.ParseBool(v)
		if err != nil {
			return nil, "", fmt.Errorf("redis: bad cluster=%q in %s", v, redacted)
		}
	}
	for _, k := range ourParams {
		q.Del(k)
	}
	sentinel := q.Has("master_name")
	if len(q["addr"]) > 0 && !sentinel {
		cluster = true
	}
	u.RawQuery = q.Encode()
	clean := u.String()

	switch {
	case sentinel:
		fo, err := goredis.ParseFailoverURL(clean)
		if err != nil {
			return nil, "", fmt.Errorf("redis: bad Sentinel URL %s: %v", redacted, stripSecret(err, dsn))
		}
		return goredis.NewFailoverClient(fo), "sentinels " + strings.Join(fo.SentinelAddrs, ",") + " master " + fo.MasterName, nil
	case cluster:
		co, err := goredis.ParseClusterURL(clean)
		if err != nil {
			return nil, "", fmt.Errorf("redis: bad Cluster URL %s: %v", redacted, stripSecret(err, dsn))
		}
		return goredis.NewClusterClient(co), "cluster " + strings.Join(co.Addrs, ","), nil
	default:
		so, err := goredis.ParseURL(clean)
		if err != nil {
			return nil, "", fmt.Errorf("redis: bad URL %s: %v", redacted, stripSecret(err, dsn))
		}
		return goredis.NewClient(so), so.Addr, nil
	}
}

// secretParam matches query parameters that hold passwords (go-redis reads
// a Sentinel master's password from password=).
var secretParam = regexp.MustCompile(`([?&](?:sentinel_)?password=)[^&#]*`)

// redact is driver.Redact that also masks password parameters.
func redact(dsn string) string {
	return secretParam.ReplaceAllString(driver.Redact(dsn), "${1}xxxxx")
}

// stripSecret keeps passwords out of an error that may quote the URL.
func stripSecret(err error, dsn string) string {
	msg := err.Error()
	var secrets []string
	if u, perr := url.Parse(strings.Split(dsn, ",")[0]); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			secrets = append(secrets, p)
		}
	}
	for _, m := range secretParam.FindAllStringSubmatch(dsn, -1) {
		if v := strings.TrimPrefix(m[0], m[1]); v != "" {
			secrets = append(secrets, v)
		}
	}
	for _, sec := range secrets {
		msg = strings.ReplaceAll(msg, sec, "xxxxx")
		if esc := url.QueryEscape(sec); esc != sec {
			msg = strings.ReplaceAll(msg, esc, "xxxxx")
		}
	}
	return msg
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
	if errors.As(err, &opErr) || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "connection refused") {
		port := "6379"
		if _, p, perr := net.SplitHostPort(strings.TrimPrefix(addr, "cluster ")); perr == nil && !strings.Contains(p, ",") {
			port = p
		}
		hint = fmt.Sprintf(" (is Redis running? start one with `redis-server --port %s` or `docker run -p %s:6379 redis:7`)", port, port)
	}
	return fmt.Errorf("redis: cannot reach %s: %v%s", addr, err, hint)
}

// conn is an open connection in either mode.
type conn struct {
	client     goredis.UniversalClient
	ownClient  bool
	opts       options
	perStream  bool // Cluster (or another sharded client): one reader per stream
	consumerID string

	mu      sync.Mutex
	closed  bool
	subs    map[subscription]struct{}
	seq     int
	known   sync.Map // event type → time registered
	closing chan struct{}
	bg      sync.WaitGroup // every goroutine of every subscription
	pipe    pipeliner      // sends Publish's commands
}

type subscription interface {
	driver.Subscription
	closeNow()
	// finished is closed once the subscription sends nothing more.
	finished() <-chan struct{}
}

func newConn(ctx context.Context, client goredis.UniversalClient, o options, own bool) (*conn, error) {
	c := &conn{
		client: client, ownClient: own, opts: o,
		subs:    map[subscription]struct{}{},
		closing: make(chan struct{}),
	}
	c.pipe.client = client
	if _, single := client.(*goredis.Client); !single {
		c.perStream = true
	}
	host, _ := os.Hostname()
	c.consumerID = fmt.Sprintf("%s@%s:%d:%s", o.source, host, os.Getpid(), randomHex(4))
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
	for _, line := range strings.Split(info, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:")
		if !ok {
			continue
		}
		parts := strings.SplitN(v, ".", 3)
		if len(parts) < 2 {
			return nil
		}
		major, _ := strconv.Atoi(parts[0])
		minor, _ := strconv.Atoi(parts[1])
		if major < 6 || major == 6 && minor < 2 {
			return fmt.Errorf("redis: server version %s has no XAUTOCLAIM; Streams mode needs Redis 6.2 or later (or use mode=pubsub)", v)
		}
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
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return errors.New("redis: publish on a closed connection")
	}
	// The commands are queued on a pipeline of their own only to build
	// them; c.pipe sends them.
	build := c.client.Pipeline()
	var newTypes []string
	now := time.Now()
	if c.opts.mode == PubSub {
		for _, m := range msgs {
			payload, err := encodeStructured(m)
			if err != nil {
				return fmt.Errorf("redis: encode %s: %w", m.ID, err)
			}
			build.Publish(ctx, c.pubsubChannel(m.Type), payload)
		}
	} else {
		for i, m := range msgs {
			args := &goredis.XAddArgs{Stream: c.streamKey(m.Type), Values: streamValues(m)}
			if c.opts.maxLen > 0 {
				args.MaxLen, args.Approx = c.opts.maxLen, true
			}
			build.XAdd(ctx, args)
			if seenBefore(msgs[:i], m.Type) {
				continue
			}
			if c.opts.maxAge > 0 {
				minID := strconv.FormatInt(now.Add(-c.opts.maxAge).UnixMilli(), 10)
				build.XTrimMinIDApprox(ctx, c.streamKey(m.Type), minID, 0)
			}
			if at, ok := c.known.Load(m.Type); !ok || now.Sub(at.(time.Time)) > registerEvery {
				newTypes = append(newTypes, m.Type)
				registerScript.Eval(ctx, build, []string{c.typesKey()}, m.Type, c.typesChannel())
			}
		}
	}
	cmds := build.Cmds()
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

// seenBefore reports whether one of msgs has type t (a linear scan: batches
// are short and mostly of one type).
func seenBefore(msgs []*driver.Message, t string) bool {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Type == t {
			return true
		}
	}
	return false
}

func (c *conn) Subscribe(ctx context.Context, spec driver.SubscribeSpec) (driver.Subscription, error) {
	if spec.BufferSize <= 0 {
		spec.BufferSize = 1
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, driver.ErrSubscriptionClosed
	}
	c.seq++
	seq := c.seq
	c.mu.Unlock()

	var (
		s   subscription
		err error
	)
	if c.opts.mode == PubSub {
		if spec.Group != "" {
			return nil, fmt.Errorf("redis: Group %q in Pub/Sub mode (use Streams mode for groups): %w", spec.Group, driver.ErrGroupsUnsupported)
		}
		s, err = c.subscribePubSub(ctx, spec)
	} else {
		s, err = c.subscribeStreams(ctx, spec, fmt.Sprintf("%s#%d", c.consumerID, seq))
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		s.closeNow()
		return nil, driver.ErrSubscriptionClosed
	}
	c.subs[s] = struct{}{}
	c.mu.Unlock()
	return s, nil
}

func (c *conn) forget(s subscription) {
	c.mu.Lock()
	delete(c.subs, s)
	c.mu.Unlock()
}

// isClosing reports whether Close began.
func (c *conn) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// Close stops every subscription, waits (within ctx) for their goroutines,
// which clean up the consumers they leave, and closes the client if Open
// made it.
func (c *conn) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	subs := make([]subscription, 0, len(c.subs))
	for s := range c.subs {
		subs = append(subs, s)
	}
	c.mu.Unlock()
	var err error
	for _, s := range subs {
		_ = s.Close(ctx)
	}
	// Wait until nothing more is read; then the subscriptions' keepers
	// clean up their consumers and stop.
wait:
	for _, s := range subs {
		select {
		case <-s.finished():
		case <-ctx.Done():
			err = ctx.Err()
			break wait
		}
	}
	close(c.closing)
	done := make(chan struct{})
	go func() {
		c.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	if c.ownClient {
		if cerr := c.client.Close(); cerr != nil && err == nil && !errors.Is(cerr, goredis.ErrClosed) {
			err = cerr
		}
	}
	return err
}
