package gossip

import (
	"log/slog"
	"time"

	"github.com/gossipbus/gossip/gossip/driver"
)

// Config configures an EventBus. The zero value works: an in-process bus
// with JSON payloads, 10 workers and 1000 buffered events per subscription.
type Config struct {
	// Driver picks the transport: "memory" (the default), "redis", "nats",
	// or a URL whose scheme a driver registered: "memory://orders" (a named
	// in-process broker every bus in the process that opens it shares),
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
	// (default 10). Workers(n) overrides it for one subscription.
	Workers int

	// BufferSize is the number of events buffered (memory) or prefetched
	// (Redis, NATS) per subscription (default 1000). On memory a full buffer
	// makes Publish wait.
	BufferSize int

	// MaxDeliveries is the default number of delivery attempts before an
	// event is dead-lettered (default 5). MaxDeliveries(n) overrides it for
	// one subscription.
	MaxDeliveries int

	// RetryBackoff is the delay before the first redelivery of a failed
	// event (default 100ms); it doubles on each attempt, with ±20% jitter,
	// up to MaxRetryBackoff (default 10s).
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration

	// AckWait is how long a durable transport waits for a delivery's ack
	// before it gives the event to another member of the group (default 30s).
	// Deliveries still being handled are kept alive.
	AckWait time.Duration

	// MaxEventSize is the largest encoded event Publish accepts, data and
	// headers together (default 1 MiB). The memory transport encodes
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
	// (default 10s).
	DialTimeout time.Duration
}

const (
	defaultWorkers       = 10
	defaultBufferSize    = 1000
	defaultMaxDeliveries = 5
	defaultMaxEventSize  = 1 << 20
)

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
