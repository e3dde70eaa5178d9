package redis

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/gossipbus/gossip/gossip/driver"
)

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
	cluster         bool // URL only: a Cluster client even with one seed
	// URL only: PEM files of the CA that signs the server's certificate,
	// and of the client's certificate and key.
	tlsCA, tlsCert, tlsKey string
	// dialTimeout is the URL's dial_timeout: with gossip.Config.DialTimeout
	// it bounds Open.
	dialTimeout time.Duration
	dedupWindow time.Duration // DedupWindow (dedup.go)
	syncAck     bool          // SyncAck (streams_acks.go)
	logger      *slog.Logger
	source      string
}

// defaultOptions are the options before any is set; validate fills in the
// other defaults for zero values.
func defaultOptions() options {
	return options{prefix: DefaultPrefix, source: filepath.Base(os.Args[0])}
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

// ClaimInterval is how often a group member takes over entries other
// members handed back (a member leaving) or left unacknowledged for longer
// than gossip.Config.AckWait (URL: claim_interval=1s; default AckWait/2, at
// most 1s, at least 100ms). It bounds how long entries a leaving member
// handed back wait for another member.
func ClaimInterval(d time.Duration) Option { return func(o *options) { o.claimInterval = d } }

// Block is how long one XREAD / XREADGROUP waits for entries (URL:
// block=1s; default 1s). A shorter block costs more idle round trips.
func Block(d time.Duration) Option { return func(o *options) { o.block = d } }

// RefreshInterval is how often a wildcard subscription re-reads the
// registry of event types, besides the notifications it receives when a
// type is first published (URL: refresh_interval=10s; default 10s).
func RefreshInterval(d time.Duration) Option { return func(o *options) { o.refreshInterval = d } }

// SyncAck makes a group member's Ack wait for Redis to answer its XACK
// (URL: ack=sync): a round trip per batch gossip acknowledges, which one
// event at a time is one per event. By default an ack is queued and sent
// within a millisecond, in one XACK with the others acknowledged meanwhile,
// and the queue is sent before the subscription's Close returns: an ack
// lost on the way (a broken connection, a crash) means a redelivery after
// AckWait, which at-least-once allows. As the NATS driver's ack=async.
func SyncAck() Option { return func(o *options) { o.syncAck = true } }

// AsyncAck queues acknowledgements and sends them in batches: the default.
// It undoes SyncAck (URL: ack=async).
func AsyncAck() Option { return func(o *options) { o.syncAck = false } }

// Logger receives the driver's diagnostics (default slog.Default(); Open
// uses gossip.Config.Logger).
func Logger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Source names the service in consumer names (default the program's name;
// Open uses gossip.Config.Source).
func Source(s string) Option { return func(o *options) { o.source = s } }

// Ranges of the options. Zero values of the Option functions mean the
// default; a URL parameter must be in range (maxlen also -1).
const (
	maxMaxLen       = 1_000_000_000
	maxPrefixLen    = 256
	minBlock        = time.Millisecond
	maxBlock        = time.Minute
	minInterval     = 10 * time.Millisecond
	maxClaim        = time.Hour
	maxRefresh      = 24 * time.Hour
	minMaxAge       = time.Second
	maxMaxAge       = 10 * 365 * 24 * time.Hour
	maxDialTimeout  = 5 * time.Minute
	maxPoolSize     = 10_000
	maxRetriesLimit = 100
)

func (o *options) validate() error {
	if o.prefix == "" {
		return errors.New("redis: empty key prefix")
	}
	if len(o.prefix) > maxPrefixLen {
		return fmt.Errorf("redis: key prefix of %d bytes (1 to %d)", len(o.prefix), maxPrefixLen)
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
	if o.block == 0 {
		o.block = DefaultBlock
	}
	if o.refreshInterval == 0 {
		o.refreshInterval = DefaultRefreshInterval
	}
	for _, c := range []struct {
		name     string
		v        time.Duration
		min, max time.Duration
		zero     bool // 0 allowed
	}{
		{"block", o.block, minBlock, maxBlock, false},
		{"claim_interval", o.claimInterval, minInterval, maxClaim, true},
		{"refresh_interval", o.refreshInterval, minInterval, maxRefresh, false},
		{"maxage", o.maxAge, minMaxAge, maxMaxAge, true},
		{"dedup_window", o.dedupWindow, minDedupWindow, maxDedupWindow, true},
	} {
		if c.zero && c.v == 0 {
			continue
		}
		if c.v < c.min || c.v > c.max {
			return fmt.Errorf("redis: %s %v out of range (%v to %v)", c.name, c.v, c.min, c.max)
		}
	}
	if o.dedupWindow != 0 && o.mode != Streams {
		return errors.New("redis: dedup_window works in Streams mode only (Pub/Sub keeps nothing to deduplicate)")
	}
	if o.maxLen > maxMaxLen || o.maxLen < -1 {
		return fmt.Errorf("redis: maxlen %d out of range (-1 to keep everything, or 1 to %d)", o.maxLen, maxMaxLen)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	return nil
}

// params are gossip's own query parameters, each with the setter of its
// option; the other parameters go to go-redis. The ranges are validate's.
var params = map[string]func(o *options, v string) error{
	"mode":             func(o *options, v string) error { o.mode = Mode(strings.ToLower(v)); return nil },
	"ack":              parseAck,
	"prefix":           func(o *options, v string) error { o.prefix = v; return nil },
	"maxlen":           func(o *options, v string) (err error) { o.maxLen, err = parseNonZero(v); return err },
	"maxage":           func(o *options, v string) (err error) { o.maxAge, err = parseDuration(v); return err },
	"claim_interval":   func(o *options, v string) (err error) { o.claimInterval, err = parseDuration(v); return err },
	"block":            func(o *options, v string) (err error) { o.block, err = parseDuration(v); return err },
	"dedup_window":     func(o *options, v string) (err error) { o.dedupWindow, err = parseDuration(v); return err },
	"refresh_interval": func(o *options, v string) (err error) { o.refreshInterval, err = parseDuration(v); return err },
	"cluster":          func(o *options, v string) (err error) { o.cluster, err = strconv.ParseBool(v); return err },
	"tls_ca":           func(o *options, v string) error { o.tlsCA = v; return nil },
	"tls_cert":         func(o *options, v string) error { o.tlsCert = v; return nil },
	"tls_key":          func(o *options, v string) error { o.tlsKey = v; return nil },
}

// parseAck sets SyncAck for ack=sync, AsyncAck for ack=async.
func parseAck(o *options, v string) error {
	switch strings.ToLower(v) {
	case "sync":
		o.syncAck = true
	case "async":
		o.syncAck = false
	default:
		return fmt.Errorf("%q is neither sync nor async", v)
	}
	return nil
}

// parseNonZero parses a count of a URL, where 0 (the Options' "default")
// is out of range.
func parseNonZero(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err == nil && n == 0 {
		err = errors.New("0 is out of range")
	}
	return n, err
}

// parseDuration parses a duration of a URL, where 0 is out of range.
func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err == nil && d <= 0 {
		err = errors.New("not positive")
	}
	return d, err
}

// goRedisRanges are the ranges of go-redis's numeric query parameters
// (checked before go-redis sees them: pool_size=1e12 would allocate at
// NewClient). Durations are Go durations or seconds; -1 means none where
// go-redis allows it.
var goRedisRanges = map[string]struct {
	min, max int64 // counts, or durations in nanoseconds
	dur      bool
	none     string // the negative values allowed, as text
}{
	"protocol":           {2, 3, false, ""},
	"max_retries":        {0, maxRetriesLimit, false, "-1"},
	"pool_size":          {1, maxPoolSize, false, ""},
	"min_idle_conns":     {0, maxPoolSize, false, ""},
	"max_idle_conns":     {0, maxPoolSize, false, ""},
	"max_active_conns":   {0, maxPoolSize, false, ""},
	"dial_timeout":       {int64(time.Millisecond), int64(maxDialTimeout), true, ""},
	"read_timeout":       {int64(time.Millisecond), int64(time.Hour), true, "-1 -2"},
	"write_timeout":      {int64(time.Millisecond), int64(time.Hour), true, "-1 -2"},
	"pool_timeout":       {int64(time.Millisecond), int64(time.Hour), true, ""},
	"conn_max_idle_time": {int64(time.Millisecond), int64(365 * 24 * time.Hour), true, "-1"},
	"conn_max_lifetime":  {int64(time.Millisecond), int64(365 * 24 * time.Hour), true, "-1"},
	"min_retry_backoff":  {int64(time.Millisecond), int64(time.Minute), true, "-1"},
	"max_retry_backoff":  {int64(time.Millisecond), int64(time.Minute), true, "-1"},
}

// checkGoRedisParam checks the value of one of go-redis's numeric query
// parameters against its range.
func checkGoRedisParam(name, v string) error {
	r, ok := goRedisRanges[name]
	if !ok {
		return nil
	}
	if r.none != "" && slices.Contains(strings.Fields(r.none), v) {
		return nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if r.dur {
		if err == nil {
			if n > 1<<32 || n < -1<<32 {
				err = errors.New("overflow")
			}
			n *= int64(time.Second) // go-redis: a number is seconds
		} else {
			var d time.Duration
			d, err = time.ParseDuration(v)
			n = int64(d)
		}
	}
	rangeText := func(x int64) string {
		if r.dur {
			return time.Duration(x).String()
		}
		return strconv.FormatInt(x, 10)
	}
	if err != nil || n < r.min || n > r.max {
		also := ""
		if r.none != "" {
			also = ", or " + strings.ReplaceAll(r.none, " ", " or ")
		}
		return fmt.Errorf("out of range (%s to %s%s)", rangeText(r.min), rangeText(r.max), also)
	}
	return nil
}

// parseURL takes gossip's parameters out of dsn into o and builds the
// go-redis client for the rest. addr names the server(s) for errors.
func parseURL(dsn string, o *options) (goredis.UniversalClient, string, error) {
	redacted := driver.Redact(dsn)
	scheme, rest, _ := strings.Cut(dsn, "://")
	// Several hosts separated by commas: the first is the URL's host, the
	// others become addr parameters (Cluster seeds or Sentinels).
	// A password may hold an unencoded '/', '?' or '#' (url.Parse then
	// fails, and the error is redacted): the authority ends after the last
	// '@', as driver.Redact reads it.
	at := max(strings.LastIndexByte(rest, '@'), 0)
	authEnd := strings.IndexAny(rest[at:], "/?#")
	if authEnd < 0 {
		authEnd = len(rest)
	} else {
		authEnd += at
	}
	authority, tail := rest[:authEnd], rest[authEnd:]
	userinfo, hosts := "", authority
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo, hosts = authority[:at+1], authority[at+1:]
	}
	hostList := strings.Split(hosts, ",")
	u, err := url.Parse(scheme + "://" + userinfo + hostList[0] + tail)
	if err != nil {
		return nil, "", fmt.Errorf("redis: bad URL %s: %v", redacted, driver.RedactError(dsn, err))
	}
	q := u.Query()
	for _, h := range hostList[1:] {
		if h != "" {
			q.Add("addr", h)
		}
	}
	for k, set := range params {
		if vs, ok := q[k]; ok {
			if err := set(o, vs[len(vs)-1]); err != nil {
				return nil, "", fmt.Errorf("redis: bad %s=%q in %s: %v", k, vs[len(vs)-1], redacted, err)
			}
			q.Del(k)
		}
	}
	for k, vs := range q {
		if err := checkGoRedisParam(k, vs[len(vs)-1]); err != nil {
			return nil, "", fmt.Errorf("redis: bad %s=%q in %s: %v", k, vs[len(vs)-1], redacted, err)
		}
	}
	if (o.tlsCA != "" || o.tlsCert != "" || o.tlsKey != "") && scheme != "rediss" {
		return nil, "", errors.New("redis: tls_ca, tls_cert and tls_key need a rediss:// URL")
	}
	tlsConfig, err := o.tlsConfig()
	if err != nil {
		return nil, "", err
	}
	// go-redis bounds a command by the ctx's deadline only when told to:
	// Open's ctx must bound the dial, the handshake and the first command.
	ctxTimeouts := !q.Has("context_timeout_enabled")
	sentinel := q.Has("master_name")
	cluster := o.cluster || len(q["addr"]) > 0 && !sentinel
	u.RawQuery = q.Encode()
	clean := u.String()

	switch {
	case sentinel:
		fo, err := goredis.ParseFailoverURL(clean)
		if err != nil {
			return nil, "", fmt.Errorf("redis: bad Sentinel URL %s: %v", redacted, driver.RedactError(dsn, err))
		}
		fo.ContextTimeoutEnabled = fo.ContextTimeoutEnabled || ctxTimeouts
		o.dialTimeout = fo.DialTimeout
		if tlsConfig != nil {
			fo.TLSConfig = tlsConfig(fo.TLSConfig)
		}
		return goredis.NewFailoverClient(fo), "sentinels " + strings.Join(fo.SentinelAddrs, ",") + " master " + fo.MasterName, nil
	case cluster:
		co, err := goredis.ParseClusterURL(clean)
		if err != nil {
			return nil, "", fmt.Errorf("redis: bad Cluster URL %s: %v", redacted, driver.RedactError(dsn, err))
		}
		co.ContextTimeoutEnabled = co.ContextTimeoutEnabled || ctxTimeouts
		o.dialTimeout = co.DialTimeout
		if tlsConfig != nil {
			co.TLSConfig = tlsConfig(co.TLSConfig)
		}
		return goredis.NewClusterClient(co), "cluster " + strings.Join(co.Addrs, ","), nil
	default:
		so, err := goredis.ParseURL(clean)
		if err != nil {
			return nil, "", fmt.Errorf("redis: bad URL %s: %v", redacted, driver.RedactError(dsn, err))
		}
		so.ContextTimeoutEnabled = so.ContextTimeoutEnabled || ctxTimeouts
		o.dialTimeout = so.DialTimeout
		if tlsConfig != nil {
			so.TLSConfig = tlsConfig(so.TLSConfig)
		}
		return goredis.NewClient(so), so.Addr, nil
	}
}

// tlsConfig reads the TLS files of the URL. It returns nil without any, or
// a function that adds them to the TLS configuration go-redis made for the
// rediss:// URL (which names the server).
func (o *options) tlsConfig() (func(*tls.Config) *tls.Config, error) {
	if o.tlsCA == "" && o.tlsCert == "" && o.tlsKey == "" {
		return nil, nil
	}
	var pool *x509.CertPool
	if o.tlsCA != "" {
		pem, err := os.ReadFile(o.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("redis: tls_ca: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis: tls_ca: no PEM certificate in %s", o.tlsCA)
		}
	}
	var certs []tls.Certificate
	if o.tlsCert != "" || o.tlsKey != "" {
		if o.tlsCert == "" || o.tlsKey == "" {
			return nil, errors.New("redis: tls_cert and tls_key go together")
		}
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			// The error names the files, never their content.
			return nil, fmt.Errorf("redis: tls_cert %s, tls_key %s: %w", o.tlsCert, o.tlsKey, err)
		}
		certs = []tls.Certificate{cert}
	}
	return func(c *tls.Config) *tls.Config {
		if c == nil {
			c = &tls.Config{MinVersion: tls.VersionTLS12}
		} else {
			c = c.Clone()
		}
		if pool != nil {
			c.RootCAs = pool
		}
		if certs != nil {
			c.Certificates = certs
		}
		return c
	}, nil
}
