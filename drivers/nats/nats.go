package nats

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gossipbus/gossip/gossip/driver"
)

func init() {
	driver.Register("nats", Driver{}, "nats")
}

// DefaultURL is the server "nats" alone connects to.
const DefaultURL = "nats://127.0.0.1:4222"

// DefaultPrefix is the subject prefix (and JetStream stream name) used when
// none is given.
const DefaultPrefix = "gossip"

// Mode says how events travel.
type Mode string

const (
	// ModeJetStream stores events in a JetStream stream and consumes them
	// with pull consumers: at-least-once, durable groups. The default.
	ModeJetStream Mode = "jetstream"
	// ModeCore uses plain NATS subjects and queue groups: at-most-once,
	// nothing stored.
	ModeCore Mode = "core"
)

// ErrBadURL is wrapped by Open's errors about the URL's form or parameters.
var ErrBadURL = errors.New("nats: bad URL")

// Driver opens NATS connections for gossip. It is registered as "nats" and
// for the nats:// scheme.
type Driver struct{}

// config is what the URL and Options set.
type config struct {
	mode              Mode
	prefix            string
	stream            string // stream name; derived from prefix when empty
	createStreams     bool
	replicas          int
	storage           jetstream.StorageType
	maxAge            time.Duration
	maxBytes          int64
	maxMsgs           int64
	duplicates        time.Duration
	maxAckPending     int
	inactiveThreshold time.Duration
	syncAck           bool // DoubleAck each delivery (ack=sync)
	asyncFlush        bool // core mode: no flush per Publish (flush=async)
	natsOptions       []natsgo.Option
	logger            *slog.Logger
}

func defaultConfig() config {
	return config{
		mode:              ModeJetStream,
		prefix:            DefaultPrefix,
		createStreams:     true,
		replicas:          1,
		storage:           jetstream.FileStorage,
		maxAge:            7 * 24 * time.Hour,
		maxBytes:          -1,
		maxMsgs:           -1,
		duplicates:        2 * time.Minute,
		inactiveThreshold: 10 * time.Minute,
	}
}

// Option configures a connection made by New or Open.
type Option func(*config)

// WithMode picks JetStream (the default) or core NATS.
func WithMode(m Mode) Option { return func(c *config) { c.mode = m } }

// StreamPrefix sets the namespace of the connection (default "gossip"):
// event type "a.b" travels on subject "<prefix>.a.b", stored in the stream
// named after the prefix. Buses with different prefixes never see each
// other's events. The URL parameter is "prefix".
func StreamPrefix(p string) Option { return func(c *config) { c.prefix = p } }

// StreamName overrides the JetStream stream name (default: the prefix with
// '.' replaced by '_'), for a stream an operator created. URL: "stream".
func StreamName(name string) Option { return func(c *config) { c.stream = name } }

// CreateStreams says whether the driver creates the stream when it is
// missing (default true). With false a missing stream is an error: the
// operator creates it. URL: "create_stream=false".
func CreateStreams(create bool) Option { return func(c *config) { c.createStreams = create } }

// Replicas is the replica count of a stream the driver creates (default 1;
// 3 in a cluster). URL: "replicas".
func Replicas(n int) Option { return func(c *config) { c.replicas = n } }

// MemoryStorage keeps a stream the driver creates in memory instead of on
// disk. URL: "storage=memory".
func MemoryStorage() Option { return func(c *config) { c.storage = jetstream.MemoryStorage } }

// MaxAge is how long a stream the driver creates keeps events (default 7
// days; 0 means forever). URL: "max_age" (a Go duration).
func MaxAge(d time.Duration) Option { return func(c *config) { c.maxAge = d } }

// MaxBytes bounds the size of a stream the driver creates (default
// unlimited); the oldest events go first. URL: "max_bytes".
func MaxBytes(n int64) Option { return func(c *config) { c.maxBytes = n } }

// MaxMsgs bounds the event count of a stream the driver creates (default
// unlimited); the oldest events go first. URL: "max_msgs".
func MaxMsgs(n int64) Option { return func(c *config) { c.maxMsgs = n } }

// DuplicateWindow is how long JetStream remembers published event IDs to
// drop a retried publish (default 2 minutes). URL: "duplicates".
func DuplicateWindow(d time.Duration) Option { return func(c *config) { c.duplicates = d } }

// MaxAckPending bounds the unacknowledged deliveries of a group consumer the
// driver creates, across all members (default: the server's, 1000).
// URL: "max_ack_pending".
func MaxAckPending(n int) Option { return func(c *config) { c.maxAckPending = n } }

// InactiveThreshold is how long the server keeps the consumer of a
// broadcast subscription whose process went away (default 10 minutes).
// URL: "inactive_threshold".
func InactiveThreshold(d time.Duration) Option { return func(c *config) { c.inactiveThreshold = d } }

// SyncAck makes Ack wait for the server to confirm each acknowledgement
// (JetStream's double ack: a round trip per event). By default an ack is
// sent without waiting for a reply, as nats.go's Ack does, and the pending
// acks are flushed to the server before Close returns: an ack lost on the
// way (a broken connection, a crash) means a redelivery, which
// at-least-once allows. URL: "ack=sync".
func SyncAck() Option { return func(c *config) { c.syncAck = true } }

// AsyncAck sends acks without waiting for the server's confirmation: the
// default. It undoes SyncAck. URL: "ack=async".
func AsyncAck() Option { return func(c *config) { c.syncAck = false } }

// AsyncFlush makes a core-mode Publish return once nats.go has taken the
// events, without waiting for the server to read them (a PING/PONG round
// trip per call, the default). nats.go writes them out at once and Close
// flushes what is left, but an event can still be in the client when
// Publish returns: a subscription made right after, from another
// connection, may see it, and a process that dies loses it. Core mode is
// at-most-once either way; this trades the "the server has it" point for
// the raw client's speed. JetStream mode always waits for the PubAck.
// URL: "flush=async".
func AsyncFlush() Option { return func(c *config) { c.asyncFlush = true } }

// NATSOptions are passed to nats.Connect when the driver opens the
// connection itself (Open). Use them for NKeys, credentials, TLS and
// callbacks.
func NATSOptions(opts ...natsgo.Option) Option {
	return func(c *config) { c.natsOptions = append(c.natsOptions, opts...) }
}

// Open connects to the servers dsn names: "nats" alone (DefaultURL) or
// "nats://[user:pass@|token@]host:port[,host:port...][?param=value&...]".
// Parameters: mode (jetstream|core), prefix (alias stream_prefix), stream,
// create_stream, replicas, storage (file|memory), max_age, max_bytes,
// max_msgs, duplicates, max_ack_pending, inactive_threshold, ack
// (async|sync), flush (sync|async, core mode), name (the client name), creds
// (a credentials file), nkey (an NKey seed file), tls_ca, tls_cert, tls_key
// (PEM files). It honours ctx's deadline.
func (Driver) Open(ctx context.Context, dsn string, opts driver.Options) (driver.Conn, error) {
	return open(ctx, dsn, opts)
}

// Connect is Open with typed options, which override the URL's parameters.
func Connect(ctx context.Context, dsn string, opts ...Option) (driver.Conn, error) {
	return open(ctx, dsn, driver.Options{}, opts...)
}

func open(ctx context.Context, dsn string, dopts driver.Options, opts ...Option) (driver.Conn, error) {
	cfg := defaultConfig()
	servers, name, err := parseURL(dsn, &cfg)
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(&cfg)
	}
	if name == "" {
		name = dopts.Source
	}
	cfg.logger = dopts.Logger
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	nopts := []natsgo.Option{natsgo.MaxReconnects(-1)}
	if name != "" {
		nopts = append(nopts, natsgo.Name(name))
	}
	nopts = append(nopts, cfg.natsOptions...)
	nc, err := dial(ctx, servers, nopts)
	if err != nil {
		return nil, err
	}
	c, err := newConn(nc, cfg, true)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// dial connects, retrying a few times within ctx's deadline.
func dial(ctx context.Context, servers string, opts []natsgo.Option) (*natsgo.Conn, error) {
	var lastErr error
	for attempt := 1; ; attempt++ {
		timeout := 5 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(dl))
		}
		if timeout <= 0 || ctx.Err() != nil {
			break
		}
		nc, err := natsgo.Connect(servers, append(opts, natsgo.Timeout(timeout))...)
		if err == nil {
			return nc, nil
		}
		lastErr = err
		if attempt == 3 || errors.Is(err, natsgo.ErrAuthorization) || errors.Is(err, natsgo.ErrAuthExpired) {
			break
		}
		t := time.NewTimer(time.Duration(attempt) * 100 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	if lastErr == nil {
		lastErr = ctx.Err()
	}
	return nil, fmt.Errorf("nats: connect to %s: %w", redactServers(servers), lastErr)
}

// redactServers hides the passwords and tokens of a comma-separated server
// list.
func redactServers(servers string) string {
	parts := strings.Split(servers, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "://") && strings.Contains(p, "@") {
			p = driver.Redact("nats://" + p)[len("nats://"):]
		} else {
			p = driver.Redact(p)
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

// parseURL splits dsn into the server list nats.Connect takes and the
// settings of its query, which it applies to cfg.
func parseURL(dsn string, cfg *config) (servers, name string, err error) {
	if dsn == "nats" || dsn == "" {
		return DefaultURL, "", nil
	}
	servers, query, _ := strings.Cut(dsn, "?")
	servers = strings.TrimSuffix(servers, "/")
	if servers == "" || strings.HasSuffix(servers, "://") {
		servers = DefaultURL
	}
	for _, s := range strings.Split(servers, ",") {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		if _, err := url.Parse(s); err != nil {
			return "", "", fmt.Errorf("%w %q: %v", ErrBadURL, driver.Redact(s), errors.Unwrap(err))
		}
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", "", fmt.Errorf("%w %q: query: %v", ErrBadURL, redactServers(servers), err)
	}
	bad := func(k string, err error) error {
		return fmt.Errorf("%w %q: parameter %s=%q: %v", ErrBadURL, redactServers(servers), k, q.Get(k), err)
	}
	var tlsCA, tlsCert, tlsKey string
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch k {
		case "mode":
			switch Mode(strings.ToLower(v)) {
			case ModeJetStream, "js", "":
				cfg.mode = ModeJetStream
			case ModeCore:
				cfg.mode = ModeCore
			default:
				return "", "", bad(k, errors.New("want jetstream or core"))
			}
		case "prefix", "stream_prefix":
			cfg.prefix = v
		case "stream":
			cfg.stream = v
		case "create_stream":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return "", "", bad(k, err)
			}
			cfg.createStreams = b
		case "replicas":
			n, err := strconv.Atoi(v)
			if err != nil {
				return "", "", bad(k, err)
			}
			cfg.replicas = n
		case "storage":
			switch strings.ToLower(v) {
			case "file":
				cfg.storage = jetstream.FileStorage
			case "memory":
				cfg.storage = jetstream.MemoryStorage
			default:
				return "", "", bad(k, errors.New("want file or memory"))
			}
		case "max_age", "duplicates", "inactive_threshold":
			d, err := time.ParseDuration(v)
			if err != nil {
				return "", "", bad(k, err)
			}
			switch k {
			case "max_age":
				cfg.maxAge = d
			case "duplicates":
				cfg.duplicates = d
			default:
				cfg.inactiveThreshold = d
			}
		case "max_bytes", "max_msgs":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return "", "", bad(k, err)
			}
			if k == "max_bytes" {
				cfg.maxBytes = n
			} else {
				cfg.maxMsgs = n
			}
		case "max_ack_pending":
			n, err := strconv.Atoi(v)
			if err != nil {
				return "", "", bad(k, err)
			}
			cfg.maxAckPending = n
		case "ack", "flush":
			var isSync bool
			switch v {
			case "sync":
				isSync = true
			case "async":
			default:
				return "", "", bad(k, errors.New("want sync or async"))
			}
			if k == "ack" {
				cfg.syncAck = isSync
			} else {
				cfg.asyncFlush = !isSync
			}
		case "name":
			name = v
		case "creds":
			cfg.natsOptions = append(cfg.natsOptions, natsgo.UserCredentials(v))
		case "nkey":
			o, err := natsgo.NkeyOptionFromSeed(v)
			if err != nil {
				return "", "", bad(k, err)
			}
			cfg.natsOptions = append(cfg.natsOptions, o)
		case "tls_ca":
			tlsCA = v
		case "tls_cert":
			tlsCert = v
		case "tls_key":
			tlsKey = v
		default:
			return "", "", fmt.Errorf("%w %q: unknown parameter %q (known: mode, prefix, stream, create_stream, replicas, storage, max_age, max_bytes, max_msgs, duplicates, max_ack_pending, inactive_threshold, ack, flush, name, creds, nkey, tls_ca, tls_cert, tls_key)",
				ErrBadURL, redactServers(servers), k)
		}
	}
	if tlsCA != "" {
		cfg.natsOptions = append(cfg.natsOptions, natsgo.RootCAs(tlsCA))
	}
	if tlsCert != "" || tlsKey != "" {
		cfg.natsOptions = append(cfg.natsOptions, natsgo.ClientCert(tlsCert, tlsKey))
	}
	return servers, name, nil
}

func (c *config) validate() error {
	if c.mode != ModeJetStream && c.mode != ModeCore {
		return fmt.Errorf("nats: unknown mode %q (want %q or %q)", c.mode, ModeJetStream, ModeCore)
	}
	if c.prefix == "" && c.mode == ModeJetStream {
		return errors.New("nats: JetStream mode needs a subject prefix (its stream captures \"<prefix>.>\")")
	}
	if c.prefix != "" {
		if err := driver.ValidateType(c.prefix); err != nil {
			return fmt.Errorf("nats: bad prefix: %w", err)
		}
	}
	if c.stream == "" {
		c.stream = strings.ReplaceAll(c.prefix, ".", "_")
	}
	if strings.ContainsAny(c.stream, ". *>/\\\t\r\n") {
		return fmt.Errorf("nats: bad stream name %q: it may not hold '.', '*', '>', path separators or spaces", c.stream)
	}
	if c.replicas <= 0 {
		c.replicas = 1
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return nil
}

// New returns a gossip connection over nc, a connection the application
// made. Closing the gossip connection (EventBus.Shutdown) does not close nc.
func New(nc *natsgo.Conn, opts ...Option) (driver.Conn, error) {
	if nc == nil {
		return nil, errors.New("nats: New with a nil *nats.Conn")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return newConn(nc, cfg, false)
}

// Conn is a gossip connection over NATS. It implements driver.Conn.
type Conn struct {
	nc     *natsgo.Conn
	js     jetstream.JetStream // nil in core mode
	cfg    config
	ownsNC bool

	streamMu    sync.Mutex
	streamReady bool

	mu     sync.Mutex
	subs   map[closer]struct{}
	closed bool
}

type closer interface{ shutdown(ctx context.Context) }

func newConn(nc *natsgo.Conn, cfg config, owns bool) (*Conn, error) {
	c := &Conn{nc: nc, cfg: cfg, ownsNC: owns, subs: map[closer]struct{}{}}
	if cfg.mode == ModeJetStream {
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(publishTimeout))
		if err != nil {
			return nil, fmt.Errorf("nats: jetstream: %w", err)
		}
		c.js = js
	}
	return c, nil
}

// Name is "nats", the transport name gossip reports as messaging.system.
func (c *Conn) Name() string { return "nats" }

// NATS returns the underlying connection.
func (c *Conn) NATS() *natsgo.Conn { return c.nc }

// Mode is the connection's mode.
func (c *Conn) Mode() Mode { return c.cfg.mode }

// Prefix is the connection's subject prefix ("" in core mode without one).
func (c *Conn) Prefix() string { return c.cfg.prefix }

// Stream is the JetStream stream name the connection uses.
func (c *Conn) Stream() string { return c.cfg.stream }

// Subject returns the NATS subject of an event type or pattern.
func (c *Conn) Subject(eventType string) string {
	if c.cfg.prefix == "" {
		return eventType
	}
	return c.cfg.prefix + "." + eventType
}

// eventType is the event type a subject carries.
func (c *Conn) eventType(subject string) string {
	if c.cfg.prefix == "" {
		return subject
	}
	return strings.TrimPrefix(subject, c.cfg.prefix+".")
}

// Publish sends msgs and returns once the server holds them: a JetStream
// PubAck for each in JetStream mode, a flush in core mode (with AsyncFlush,
// once nats.go has taken them).
func (c *Conn) Publish(ctx context.Context, msgs []*driver.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.isClosed() {
		return driver.ErrSubscriptionClosed
	}
	if c.cfg.mode == ModeCore {
		return c.publishCore(ctx, msgs)
	}
	return c.publishJS(ctx, msgs)
}

// Subscribe starts a subscription; it is live on the server when Subscribe
// returns.
func (c *Conn) Subscribe(ctx context.Context, spec driver.SubscribeSpec) (driver.Subscription, error) {
	if spec.BufferSize <= 0 {
		spec.BufferSize = 1
	}
	if spec.Workers <= 0 {
		spec.Workers = 1
	}
	if spec.AckWait <= 0 {
		spec.AckWait = 30 * time.Second
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, driver.ErrSubscriptionClosed
	}
	var (
		s   driver.Subscription
		err error
	)
	if c.cfg.mode == ModeCore {
		s, err = c.subscribeCore(ctx, spec)
	} else {
		s, err = c.subscribeJS(ctx, spec)
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		s.(closer).shutdown(ctx)
		return nil, driver.ErrSubscriptionClosed
	}
	c.subs[s.(closer)] = struct{}{}
	return s, nil
}

func (c *Conn) forget(s closer) {
	c.mu.Lock()
	delete(c.subs, s)
	c.mu.Unlock()
}

func (c *Conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Close ends every subscription, flushes what is pending (acks) and closes
// the NATS connection if the driver opened it.
func (c *Conn) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	subs := c.subs
	c.subs = map[closer]struct{}{}
	c.mu.Unlock()
	for s := range subs {
		s.shutdown(ctx)
	}
	var err error
	if !c.nc.IsClosed() {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if ferr := c.nc.FlushWithContext(fctx); ferr != nil && !errors.Is(ferr, natsgo.ErrConnectionClosed) && c.nc.IsConnected() {
			err = fmt.Errorf("nats: flush on close: %w", ferr)
		}
		cancel()
	}
	if c.ownsNC {
		c.nc.Close()
	}
	return err
}

// consumerName names the consumer (or queue group) of group for pattern:
// the group, then a hash of the pattern, since patterns hold characters
// consumer names cannot ('.', '*', '>').
func consumerName(group, pattern string) string {
	sum := sha256.Sum256([]byte(pattern))
	return group + "_" + hex.EncodeToString(sum[:6])
}
