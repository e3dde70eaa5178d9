package gossip

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
)

// Config configures an EventBus. The zero value works: an in-process bus
// with JSON payloads, 10 workers and 1000 buffered events per subscription.
//
// Every numeric field has a range, checked by NewEventBus: zero means the
// default; a negative value or one outside the range is an error wrapping
// ErrInvalidOption that names the field and its range.
type Config struct {
	// Driver picks the transport: "memory" (the default: a broker of this
	// bus's own, which no other bus sees), "redis", "nats", or a URL whose
	// scheme a driver registered: "memory://orders" (a named in-process
	// broker every bus in the process that opens it shares: what services
	// sharing one process use),
	// "redis://user:pass@host:6379/0?mode=pubsub", "rediss://...",
	// "nats://a:4222,b:4222?mode=core". The Redis and NATS drivers register
	// themselves when their packages are imported. Ignored when Conn is set.
	Driver string

	// Conn is a ready transport connection, for when the application built
	// the client itself (the Redis and NATS packages make one from an
	// existing *redis.Client or *nats.Conn). The bus closes it on Shutdown.
	Conn driver.Conn

	// Source names this service; it is every published event's Source when
	// the event has none. Default: the program's name.
	Source string

	// Workers is the number of handler goroutines per subscription
	// (default 10; 1 to 10,000). Workers(n) overrides it for one
	// subscription.
	Workers int

	// BufferSize is the number of events buffered (memory) or prefetched
	// (Redis, NATS) per subscription (default 1000; 1 to 1,000,000). On
	// memory a full buffer makes Publish wait. Each subscription allocates
	// its buffer when it starts: the bound keeps that allocation sane.
	BufferSize int

	// MaxDeliveries is the default number of delivery attempts before an
	// event is dead-lettered (default 5; 1 to 1,000,000). MaxDeliveries(n)
	// overrides it for one subscription.
	MaxDeliveries int

	// RetryBackoff is the delay before the first redelivery of a failed
	// event (default 100ms); it doubles on each attempt, with ±20% jitter,
	// up to MaxRetryBackoff (default 10s, or RetryBackoff when that is
	// longer). Range: 0 < RetryBackoff <= MaxRetryBackoff <= 24h.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration

	// AckWait is how long a durable transport waits for a delivery's ack
	// before it gives the event to another member of the group (default 30s;
	// 100ms to 24h). Deliveries still being handled are kept alive.
	AckWait time.Duration

	// MaxEventSize is the largest encoded event Publish accepts, data and
	// headers together (default 1 MiB; 4 KiB to 64 MiB: below that a dead
	// letter's own metadata would not fit). The memory transport encodes
	// nothing, so no limit applies there.
	MaxEventSize int

	// Codec encodes payloads (default JSON). ExtraCodecs are further codecs
	// for decoding events other publishers encoded.
	Codec       Codec
	ExtraCodecs []Codec

	// Logger receives the bus's own diagnostics (default slog.Default()).
	Logger *slog.Logger

	// Middleware wraps every handler, first outermost, inside the bus's own
	// panic recovery. EventBus.Use adds more.
	Middleware []Middleware

	// PublishMiddleware wraps every Publish, first outermost.
	// EventBus.UsePublish adds more.
	PublishMiddleware []PublishMiddleware

	// DialTimeout bounds NewEventBus's connection to the transport
	// (default 10s; up to 10 minutes).
	DialTimeout time.Duration
}

const (
	defaultWorkers       = 10
	defaultBufferSize    = 1000
	defaultMaxDeliveries = 5
	defaultMaxEventSize  = 1 << 20
)

// The ranges of Config's numeric fields (Workers, MaxDeliveries and the
// retry backoff share the SubscribeOptions' ranges).
const (
	maxBufferSize   = 1_000_000
	minAckWait      = 100 * time.Millisecond
	maxAckWait      = 24 * time.Hour
	minMaxEventSize = 4 << 10
	maxMaxEventSize = 64 << 20
	maxDialTimeout  = 10 * time.Minute
)

// validate checks every numeric field against its range; zero is the
// default and always valid.
func (c *Config) validate() error {
	type intRange struct {
		name      string
		v, lo, hi int
	}
	for _, f := range []intRange{
		{"Workers", c.Workers, 1, maxWorkers},
		{"BufferSize", c.BufferSize, 1, maxBufferSize},
		{"MaxDeliveries", c.MaxDeliveries, 1, maxMaxDeliveries},
		{"MaxEventSize", c.MaxEventSize, minMaxEventSize, maxMaxEventSize},
	} {
		if f.v != 0 && (f.v < f.lo || f.v > f.hi) {
			return fmt.Errorf("%w: Config.%s %d is outside its range %d to %d (0 is the default)", ErrInvalidOption, f.name, f.v, f.lo, f.hi)
		}
	}
	type durRange struct {
		name      string
		v, lo, hi time.Duration
	}
	for _, f := range []durRange{
		{"RetryBackoff", c.RetryBackoff, 1, maxRetryBackoff},
		{"MaxRetryBackoff", c.MaxRetryBackoff, 1, maxRetryBackoff},
		{"AckWait", c.AckWait, minAckWait, maxAckWait},
		{"DialTimeout", c.DialTimeout, 1, maxDialTimeout},
	} {
		if f.v != 0 && (f.v < f.lo || f.v > f.hi) {
			return fmt.Errorf("%w: Config.%s %v is outside its range %v to %v (0 is the default)", ErrInvalidOption, f.name, f.v, f.lo, f.hi)
		}
	}
	if c.RetryBackoff != 0 && c.MaxRetryBackoff != 0 && c.MaxRetryBackoff < c.RetryBackoff {
		return fmt.Errorf("%w: Config.MaxRetryBackoff %v is below Config.RetryBackoff %v", ErrInvalidOption, c.MaxRetryBackoff, c.RetryBackoff)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Driver == "" {
		c.Driver = "memory"
	}
	if c.Workers <= 0 {
		c.Workers = defaultWorkers
	}
	if c.BufferSize <= 0 {
		c.BufferSize = defaultBufferSize
	}
	if c.MaxDeliveries <= 0 {
		c.MaxDeliveries = defaultMaxDeliveries
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 100 * time.Millisecond
		if c.MaxRetryBackoff > 0 {
			c.RetryBackoff = min(c.RetryBackoff, c.MaxRetryBackoff)
		}
	}
	if c.MaxRetryBackoff <= 0 {
		c.MaxRetryBackoff = 10 * time.Second
	}
	if c.MaxRetryBackoff < c.RetryBackoff {
		c.MaxRetryBackoff = c.RetryBackoff
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxEventSize <= 0 {
		c.MaxEventSize = defaultMaxEventSize
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	return c
}
