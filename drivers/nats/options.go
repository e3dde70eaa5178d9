package nats

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/gossipbus/gossip/gossip/driver"
)

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
	syncAck           bool   // DoubleAck each delivery (ack=sync)
	syncFlush         bool   // core mode: a flush per Publish (flush=sync)
	pendingMsgs       int    // core mode: messages a subscription holds in the client
	pendingBytes      int    // core mode: bytes a subscription holds in the client
	name              string // the client name; Options.Source when empty
	tlsCert           string // PEM files of the URL's tls_cert and tls_key
	tlsKey            string
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
		duplicates:        defaultDuplicates,
		inactiveThreshold: 10 * time.Minute,
		pendingMsgs:       DefaultPendingMsgs,
		pendingBytes:      DefaultPendingBytes,
	}
}

// defaultDuplicates is the default duplicate window.
const defaultDuplicates = 2 * time.Minute

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
// drop a retried publish (default 2 minutes, or MaxAge when that is
// shorter); at most MaxAge. URL: "duplicates".
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

// SyncFlush makes a core-mode Publish return once the server has read the
// events: a flush (a PING/PONG round trip) per call. Use it where the
// caller must know the events left the process (before it exits without
// Shutdown, say) or that a subscription made after Publish returned, from
// another connection, cannot see them. Without it (the default, as raw
// nats.go and Watermill do) Publish returns once nats.go has taken the
// events: nats.go writes them out at once, keeps them through a reconnect,
// and Shutdown flushes what is left. Core mode is at-most-once either way.
// JetStream mode always waits for the PubAck. URL: "flush=sync".
func SyncFlush() Option { return func(c *config) { c.syncFlush = true } }

// AsyncFlush makes a core-mode Publish return once nats.go has taken the
// events: the default. It undoes SyncFlush. URL: "flush=async".
func AsyncFlush() Option { return func(c *config) { c.syncFlush = false } }

// DefaultPendingMsgs and DefaultPendingBytes bound what a core-mode
// subscription holds in the client, waiting for its handlers, by default:
// nats.go's own defaults.
const (
	DefaultPendingMsgs  = natsgo.DefaultSubPendingMsgsLimit  // 500,000 messages
	DefaultPendingBytes = natsgo.DefaultSubPendingBytesLimit // 64 MiB
)

// PendingMsgs bounds the messages a core-mode subscription holds in the
// client waiting for its handlers (default DefaultPendingMsgs, 500,000, as
// nats.go), besides the BufferSize deliveries queued in front of them;
// PendingBytes bounds their memory. What arrives beyond either bound is
// dropped (core NATS is at-most-once), counted in Subscription.Dropped and
// logged. URL: "pending_msgs".
func PendingMsgs(n int) Option { return func(c *config) { c.pendingMsgs = n } }

// PendingBytes bounds the bytes of messages a core-mode subscription holds
// in the client waiting for its handlers (default DefaultPendingBytes, 64
// MiB); see PendingMsgs. URL: "pending_bytes".
func PendingBytes(n int) Option { return func(c *config) { c.pendingBytes = n } }

// NATSOptions are passed to nats.Connect when the driver opens the
// connection itself (Open). Use them for NKeys, credentials, TLS and
// callbacks.
func NATSOptions(opts ...natsgo.Option) Option {
	return func(c *config) { c.natsOptions = append(c.natsOptions, opts...) }
}

// ErrBadOption is wrapped by Open's, Connect's and New's errors about a
// setting out of its range (see the table in docs/drivers/nats.md).
var ErrBadOption = errors.New("nats: bad option")

// maxReplicas is JetStream's largest replica count.
const maxReplicas = 5

// ranges checks each numeric setting against its documented range; the
// error names the URL parameter (which the typed Option of the same meaning
// shares) and the range.
func (c *config) ranges() error {
	bad := func(name string, v any, want string) error {
		return fmt.Errorf("%w: %s=%v is out of range: want %s", ErrBadOption, name, v, want)
	}
	switch {
	case c.replicas < 1 || c.replicas > maxReplicas:
		return bad("replicas", c.replicas, "1 to 5")
	case c.maxAge < 0:
		return bad("max_age", c.maxAge, "0 (forever) or a positive duration")
	case c.maxBytes == 0 || c.maxBytes < -1:
		return bad("max_bytes", c.maxBytes, "-1 (unlimited) or at least 1")
	case c.maxMsgs == 0 || c.maxMsgs < -1:
		return bad("max_msgs", c.maxMsgs, "-1 (unlimited) or at least 1")
	case c.duplicates <= 0:
		return bad("duplicates", c.duplicates, "a positive duration")
	case c.maxAge > 0 && c.duplicates > c.maxAge:
		return bad("duplicates", c.duplicates, fmt.Sprintf("at most max_age (%v)", c.maxAge))
	case c.maxAckPending < -1:
		return bad("max_ack_pending", c.maxAckPending, "-1 (unlimited), 0 (the server's default) or at least 1")
	case c.inactiveThreshold <= 0:
		return bad("inactive_threshold", c.inactiveThreshold, "a positive duration")
	case c.pendingMsgs < 1:
		return bad("pending_msgs", c.pendingMsgs, "at least 1")
	case c.pendingBytes < 1:
		return bad("pending_bytes", c.pendingBytes, "at least 1")
	}
	return nil
}

// validate checks the settings and fills in the derived ones (the stream
// name, the logger).
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
	if c.maxAge > 0 && c.maxAge < c.duplicates && c.duplicates == defaultDuplicates {
		c.duplicates = c.maxAge // JetStream's window may not outlast the events
	}
	if err := c.ranges(); err != nil {
		return err
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	return nil
}

// ErrBadURL is wrapped by Open's errors about the URL's form or parameters.
var ErrBadURL = errors.New("nats: bad URL")

// setter applies the value of one URL parameter to a config.
type setter func(c *config, v string) error

// params are the URL's query parameters, each setting what the Option of the
// same meaning sets (see Driver.Open).
var params = map[string]setter{
	"mode": oneOf(map[string]Option{"jetstream": WithMode(ModeJetStream), "js": WithMode(ModeJetStream),
		"": WithMode(ModeJetStream), "core": WithMode(ModeCore)}),
	"prefix":             parsed(asIs, StreamPrefix),
	"stream_prefix":      parsed(asIs, StreamPrefix),
	"stream":             parsed(asIs, StreamName),
	"create_stream":      parsed(strconv.ParseBool, CreateStreams),
	"replicas":           parsed(strconv.Atoi, Replicas),
	"max_ack_pending":    parsed(strconv.Atoi, MaxAckPending),
	"storage":            oneOf(map[string]Option{"file": func(c *config) { c.storage = jetstream.FileStorage }, "memory": MemoryStorage()}),
	"max_age":            parsed(time.ParseDuration, MaxAge),
	"duplicates":         parsed(time.ParseDuration, DuplicateWindow),
	"inactive_threshold": parsed(time.ParseDuration, InactiveThreshold),
	"max_bytes":          parsed(parseInt64, MaxBytes),
	"max_msgs":           parsed(parseInt64, MaxMsgs),
	"pending_msgs":       parsed(strconv.Atoi, PendingMsgs),
	"pending_bytes":      parsed(strconv.Atoi, PendingBytes),
	"ack":                oneOf(map[string]Option{"sync": SyncAck(), "async": AsyncAck()}),
	"flush":              oneOf(map[string]Option{"sync": SyncFlush(), "async": AsyncFlush()}),
	"name":               parsed(asIs, func(v string) Option { return func(c *config) { c.name = v } }),
	"tls_cert":           parsed(asIs, func(v string) Option { return func(c *config) { c.tlsCert = v } }),
	"tls_key":            parsed(asIs, func(v string) Option { return func(c *config) { c.tlsKey = v } }),
	"tls_ca":             parsed(asIs, func(v string) Option { return NATSOptions(natsgo.RootCAs(v)) }),
	"creds":              parsed(asIs, func(v string) Option { return NATSOptions(natsgo.UserCredentials(v)) }),
	"nkey":               parsed(natsgo.NkeyOptionFromSeed, func(o natsgo.Option) Option { return NATSOptions(o) }),
}

// parsed applies the Option made of what parse makes of the value.
func parsed[T any](parse func(string) (T, error), option func(T) Option) setter {
	return func(c *config, v string) error {
		x, err := parse(v)
		if err == nil {
			option(x)(c)
		}
		return err
	}
}

// oneOf applies one of choices, by its name in any case.
func oneOf(choices map[string]Option) setter {
	want := strings.Join(slices.DeleteFunc(slices.Sorted(maps.Keys(choices)), func(k string) bool { return k == "" }), ", ")
	return func(c *config, v string) error {
		option, ok := choices[strings.ToLower(v)]
		if !ok {
			return fmt.Errorf("want one of %s", want)
		}
		option(c)
		return nil
	}
}

func asIs(s string) (string, error) { return s, nil }

func parseInt64(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }

// encodeHint says how to write a password that does not parse.
const encodeHint = "a password must have '/', '#', '?', '%', ',' and '@' percent-encoded"

// parseURL applies the settings of dsn's query to cfg and returns the server
// list nats.Connect takes.
func parseURL(dsn string, cfg *config) (servers string, err error) {
	if dsn == "nats" || dsn == "" {
		return DefaultURL, nil
	}
	servers, query, _ := strings.Cut(dsn, "?")
	if strings.Contains(query, "@") {
		// A password with an unencoded '?' put the rest of it in the query.
		return "", fmt.Errorf("%w %q: an '@' after the '?' (%s; a query value its '@')", ErrBadURL, driver.Redact(dsn), encodeHint)
	}
	servers = strings.TrimSuffix(servers, "/")
	if servers == "" || strings.HasSuffix(servers, "://") {
		servers = DefaultURL
	}
	for s := range strings.SplitSeq(servers, ",") {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		u, err := url.Parse(s)
		if err != nil {
			// A password may hold an unencoded ',' that cut the list in the
			// middle of it: what may quote the URL is decided on the whole.
			return "", fmt.Errorf("%w %q: %s", ErrBadURL, driver.Redact(servers), driver.RedactError(servers, errors.Unwrap(err)))
		}
		if u.Path != "" && u.Path != "/" || u.Fragment != "" {
			// "u:1234/x@host" parses as host "u:1234": the password went
			// into the host; never quote it.
			return "", fmt.Errorf("%w %q: a NATS server URL has no path or fragment (%s)", ErrBadURL, driver.Redact(servers), encodeHint)
		}
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("%w %q: query: %v", ErrBadURL, driver.Redact(servers), err)
	}
	for k, vs := range q {
		set, ok := params[k]
		if !ok {
			return "", fmt.Errorf("%w %q: unknown parameter %q (known: %s)",
				ErrBadURL, driver.Redact(servers), k, strings.Join(slices.Sorted(maps.Keys(params)), ", "))
		}
		if err := set(cfg, vs[len(vs)-1]); err != nil {
			return "", fmt.Errorf("%w %q: parameter %s=%q: %v", ErrBadURL, driver.Redact(servers), k, vs[len(vs)-1], err)
		}
	}
	if cfg.tlsCert != "" || cfg.tlsKey != "" {
		cfg.natsOptions = append(cfg.natsOptions, natsgo.ClientCert(cfg.tlsCert, cfg.tlsKey))
	}
	return servers, nil
}
