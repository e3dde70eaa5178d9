package nats

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gossipbus/gossip/gossip/driver"
)

func init() {
	driver.Register("nats", Driver{}, "nats")
}

// Driver opens NATS connections for gossip. It is registered as "nats" and
// for the nats:// scheme.
type Driver struct{}

// Open connects to the servers dsn names: "nats" alone (DefaultURL) or
// "nats://[user:pass@|token@]host:port[,host:port...][?param=value&...]".
// Parameters: mode (jetstream|core), prefix (alias stream_prefix), stream,
// create_stream, replicas, storage (file|memory), max_age, max_bytes,
// max_msgs, duplicates, max_ack_pending, inactive_threshold, ack
// (async|sync), flush (async|sync, core mode), pending_msgs and
// pending_bytes (core mode), name (the client name), creds (a credentials
// file), nkey (an NKey seed file), tls_ca, tls_cert, tls_key (PEM files). A numeric setting out of its
// range is an error wrapping ErrBadOption; in JetStream mode the stream is
// checked (and made) before Open returns. ctx's deadline bounds all of it:
// every server of the list, the handshake and the stream check.
func (Driver) Open(ctx context.Context, dsn string, opts driver.Options) (driver.Conn, error) {
	return open(ctx, dsn, opts)
}

// Connect is Open with typed options, which override the URL's parameters.
func Connect(ctx context.Context, dsn string, opts ...Option) (driver.Conn, error) {
	return open(ctx, dsn, driver.Options{}, opts...)
}

func open(ctx context.Context, dsn string, dopts driver.Options, opts ...Option) (driver.Conn, error) {
	cfg := defaultConfig()
	servers, err := parseURL(dsn, &cfg)
	if err != nil {
		return nil, err
	}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.logger = dopts.Logger
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	nopts := []natsgo.Option{natsgo.MaxReconnects(-1), natsgo.ErrorHandler(logAsyncError(cfg.logger))}
	if name := cmp.Or(cfg.name, dopts.Source); name != "" {
		nopts = append(nopts, natsgo.Name(name))
	}
	nc, err := dial(ctx, servers, append(nopts, cfg.natsOptions...))
	if err != nil {
		return nil, err
	}
	c, err := newConn(nc, cfg, true)
	if err == nil && cfg.mode == ModeJetStream {
		// What only the server can check (the stream's replicas on this
		// server, its limits, the account's JetStream) fails here, not at
		// the first Publish.
		err = c.ensureStream(ctx)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// logAsyncError logs nats.go's asynchronous errors through the bus's
// logger instead of nats.go's default, standard error. A slow consumer's
// drops are not logged here: the subscription reports them to gossip, which
// counts and logs them.
func logAsyncError(log *slog.Logger) natsgo.ErrHandler {
	return func(_ *natsgo.Conn, sub *natsgo.Subscription, err error) {
		if errors.Is(err, natsgo.ErrSlowConsumer) {
			return
		}
		subject := ""
		if sub != nil {
			subject = sub.Subject
		}
		log.Warn("nats: asynchronous error", "subject", subject, "error", err)
	}
}

// dialAttempts is how many times dial tries within ctx's deadline, waiting
// dialBackoff between tries.
const dialAttempts = 3

var dialBackoff = driver.Backoff{Initial: 100 * time.Millisecond, Max: time.Second}

// dial connects, retrying a few times within ctx's deadline; a refused
// authorization is not retried. ctx's deadline bounds the whole of it: each
// attempt shares what is left among the servers of the list, since nats.go
// tries them one after the other, each with its own timeout for the dial
// and the handshake.
func dial(ctx context.Context, servers string, opts []natsgo.Option) (*natsgo.Conn, error) {
	n := time.Duration(strings.Count(servers, ",") + 1)
	var err error
	for attempt := 1; ; attempt++ {
		left := 5 * time.Second * n
		if dl, ok := ctx.Deadline(); ok {
			left = min(left, time.Until(dl))
		}
		if left <= 0 || ctx.Err() != nil {
			err = cmp.Or(err, ctx.Err(), context.DeadlineExceeded)
			break
		}
		nc, cerr := natsgo.Connect(servers, append(opts, natsgo.Timeout(max(left/n, time.Millisecond)))...)
		if cerr == nil {
			return nc, nil
		}
		err = cerr
		if attempt == dialAttempts || errors.Is(err, natsgo.ErrAuthorization) || errors.Is(err, natsgo.ErrAuthExpired) ||
			!dialBackoff.Wait(ctx, attempt) {
			break
		}
	}
	return nil, fmt.Errorf("nats: connect to %s: %w", driver.Redact(servers), err)
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

	streamMu    sync.Mutex  // one stream lookup at a time
	streamReady atomic.Bool // the stream was found or made

	subjects atomic.Pointer[map[string]string] // publishSubject's cache, copied on write

	closed atomic.Bool
}

func newConn(nc *natsgo.Conn, cfg config, owns bool) (*Conn, error) {
	c := &Conn{nc: nc, cfg: cfg, ownsNC: owns}
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

// maxCachedSubjects bounds publishSubject's cache: a service publishes a
// few event types, and one that makes types up as it goes gets the
// concatenation per event beyond this many.
const maxCachedSubjects = 256

// publishSubject is Subject(eventType) for Publish, from a cache: with a
// prefix, the concatenation would cost an allocation per event. The cache
// is copied on write; of two publishers adding a type at once one copy
// wins, and the other type is added again on its next publish.
func (c *Conn) publishSubject(eventType string) string {
	if c.cfg.prefix == "" {
		return eventType
	}
	var have map[string]string
	if p := c.subjects.Load(); p != nil {
		have = *p
		if s, ok := have[eventType]; ok {
			return s
		}
	}
	s := c.Subject(eventType)
	if len(have) < maxCachedSubjects {
		next := make(map[string]string, len(have)+1)
		maps.Copy(next, have)
		next[eventType] = s
		c.subjects.Store(&next)
	}
	return s
}

// eventType is the event type a subject carries.
func (c *Conn) eventType(subject string) string {
	if c.cfg.prefix == "" {
		return subject
	}
	return strings.TrimPrefix(subject, c.cfg.prefix+".")
}

// Publish sends msgs and returns once the transport holds them: a
// JetStream PubAck for each in JetStream mode; in core mode, which holds
// nothing, once nats.go has taken them (with SyncFlush, once the server has
// read them).
func (c *Conn) Publish(ctx context.Context, msgs []*driver.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.closed.Load() {
		return driver.ErrSubscriptionClosed
	}
	if c.cfg.mode == ModeCore {
		return c.publishCore(ctx, msgs)
	}
	return c.publishJS(ctx, msgs)
}

// CopiesData tells gossip that a Publish that returned nil holds no
// message's Data: nats.go copied it into its write buffer (core NATS), or
// the stream stored it and acknowledged it (JetStream).
func (c *Conn) CopiesData() bool { return true }

func (c *Conn) publishError(ctx context.Context, m *driver.Message, err error) error {
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, natsgo.ErrNoResponders) {
		// No stream answered: look it up (and create it) again next time.
		c.streamReady.Store(false)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("nats: publish %s (%s): %w", m.ID, m.Type, err)
}

// Subscribe starts a subscription; it is live on the server when Subscribe
// returns. After Close it returns driver.ErrSubscriptionClosed. A
// subscription it returns, even while racing Close, is the caller's to Stop
// and Close, as gossip does before it closes the connection.
func (c *Conn) Subscribe(ctx context.Context, spec driver.SubscribeSpec) (driver.Subscription, error) {
	spec.BufferSize = max(spec.BufferSize, 1)
	if c.closed.Load() {
		return nil, driver.ErrSubscriptionClosed
	}
	subscribe := c.subscribeJS
	if c.cfg.mode == ModeCore {
		subscribe = c.subscribeCore
	}
	s, err := subscribe(ctx, spec)
	if err != nil && c.closed.Load() {
		return nil, driver.ErrSubscriptionClosed // the connection closed under it
	}
	return s, err
}

// Close flushes what is pending (acks, core publishes) and closes the NATS
// connection if the driver opened it. gossip has stopped and closed every
// subscription before.
func (c *Conn) Close(ctx context.Context) error {
	if c.closed.Swap(true) {
		return nil
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

// withDeadline gives ctx a deadline of ackTimeout if it has none: a flush
// or a double ack needs one.
func withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, ackTimeout)
}

// consumerName names the consumer (or queue group) of group for pattern:
// the group, then a hash of the pattern, since patterns hold characters
// consumer names cannot ('.', '*', '>').
func consumerName(group, pattern string) string {
	sum := sha256.Sum256([]byte(pattern))
	return group + "_" + hex.EncodeToString(sum[:6])
}
