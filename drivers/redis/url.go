package redis

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
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
	logger          *slog.Logger
	source          string
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
	o.block = max(o.block, time.Millisecond)
	if o.refreshInterval <= 0 {
		o.refreshInterval = DefaultRefreshInterval
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	return nil
}

// params are gossip's own query parameters, each with the setter of its
// option; the other parameters go to go-redis.
var params = map[string]func(o *options, v string) error{
	"mode":             func(o *options, v string) error { o.mode = Mode(strings.ToLower(v)); return nil },
	"prefix":           func(o *options, v string) error { o.prefix = v; return nil },
	"maxlen":           func(o *options, v string) (err error) { o.maxLen, err = strconv.ParseInt(v, 10, 64); return err },
	"maxage":           func(o *options, v string) (err error) { o.maxAge, err = time.ParseDuration(v); return err },
	"claim_interval":   func(o *options, v string) (err error) { o.claimInterval, err = time.ParseDuration(v); return err },
	"block":            func(o *options, v string) (err error) { o.block, err = time.ParseDuration(v); return err },
	"refresh_interval": func(o *options, v string) (err error) { o.refreshInterval, err = time.ParseDuration(v); return err },
	"cluster":          func(o *options, v string) (err error) { o.cluster, err = strconv.ParseBool(v); return err },
}

// parseURL takes gossip's parameters out of dsn into o and builds the
// go-redis client for the rest. addr names the server(s) for errors.
func parseURL(dsn string, o *options) (goredis.UniversalClient, string, error) {
	redacted := driver.Redact(dsn)
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
		return goredis.NewFailoverClient(fo), "sentinels " + strings.Join(fo.SentinelAddrs, ",") + " master " + fo.MasterName, nil
	case cluster:
		co, err := goredis.ParseClusterURL(clean)
		if err != nil {
			return nil, "", fmt.Errorf("redis: bad Cluster URL %s: %v", redacted, driver.RedactError(dsn, err))
		}
		return goredis.NewClusterClient(co), "cluster " + strings.Join(co.Addrs, ","), nil
	default:
		so, err := goredis.ParseURL(clean)
		if err != nil {
			return nil, "", fmt.Errorf("redis: bad URL %s: %v", redacted, driver.RedactError(dsn, err))
		}
		return goredis.NewClient(so), so.Addr, nil
	}
}
