// Package driver defines the interfaces a gossip transport implements and the
// registry that gossip.NewEventBus opens transports through.
//
// It plays the part database/sql/driver plays for database/sql: users never
// touch it; transport authors implement Driver, Conn and Subscription and
// register the driver from an init function:
//
//	func init() { driver.Register("nats", natsDriver{}, "nats") }
//
// The gossip package owns everything that is the same on every transport:
// validation, encoding, worker pools, the handler chain, retry backoff,
// MaxDeliveries and dead letters. A driver only moves messages and remembers
// what has been acknowledged. Capabilities a transport may lack are small
// optional interfaces (Acknowledger, ValueCarrier) found by type assertion;
// gossip fills the gap when they are missing.
//
// Drivers must not import package gossip.
package driver

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Message is one event as a transport carries it. The attribute names follow
// CloudEvents 1.0: ID, Type, Source and Time are the required attributes,
// ContentType is datacontenttype, and Metadata holds everything else
// (extensions, W3C trace context, user metadata).
type Message struct {
	ID          string
	Type        string
	Source      string
	Time        time.Time
	ContentType string

	// Data is the encoded payload. It is nil when the Conn is a
	// ValueCarrier: then Value holds the publisher's value as it was passed.
	Data  []byte
	Value any

	// Metadata travels as transport headers. Keys are non-empty UTF-8
	// strings, values UTF-8 strings; a driver must round-trip any of them
	// (escaping what its wire cannot carry as is).
	Metadata map[string]string
}

// Size is the number of bytes the message occupies on a wire, as the size
// limit counts them: data plus attribute and metadata keys and values.
func (m *Message) Size() int {
	n := len(m.Data) + len(m.ID) + len(m.Type) + len(m.Source) + len(m.ContentType) + 32
	for k, v := range m.Metadata {
		n += len(k) + len(v)
	}
	return n
}

// Delivery is a message handed to a subscription, once per delivery attempt.
type Delivery struct {
	*Message

	// Attempt counts deliveries of this message to this subscription's
	// group, starting at 1. Durable drivers take it from the server.
	Attempt int

	// Err is set when the driver received something it could not turn into
	// a Message (no CloudEvents attributes, a corrupt entry: wrap
	// ErrUnreadable), or has given up on for a reason of its own. gossip
	// dead-letters such a delivery at once with Err as the reason, then acks
	// it. Message is still set, with whatever could be read (at least Type
	// when the subject or stream names it, and Data holding the raw body).
	Err error

	// Token is private to the driver: what it needs to ack or nack the
	// delivery (a stream entry ID, a JetStream message, ...).
	Token any
}

// Options are what gossip tells a driver when it opens a connection.
type Options struct {
	// Source is the publishing service's name (gossip.Config.Source); drivers
	// use it to name consumers.
	Source string
	// Logger receives the driver's own diagnostics. Never nil.
	Logger *slog.Logger
}

// Driver opens connections. It is registered under a name and URL schemes.
type Driver interface {
	// Open connects to the transport named by dsn: the registered name alone
	// ("nats") or a URL with a registered scheme ("nats://a:4222,b:4222").
	// It must return within ctx's deadline; an unreachable server is an
	// error naming the address and never the password.
	Open(ctx context.Context, dsn string, opts Options) (Conn, error)
}

// Conn is an open connection to a transport. Its methods may be called
// concurrently.
type Conn interface {
	// Publish hands msgs to the transport and returns once it holds all of
	// them (JetStream PubAck, XADD reply, a place in a memory queue). A
	// driver sends a batch in one round trip where it can. When ctx ends
	// first, Publish returns ctx.Err(); some messages may then have been
	// stored. Publish never returns nil for a message it did not store.
	// Publish must not keep the msgs slice after it returns (gossip reuses
	// it); it may keep the Messages.
	Publish(ctx context.Context, msgs []*Message) error

	// Subscribe starts a subscription and returns once it is live: a message
	// published after Subscribe returns is delivered to it.
	Subscribe(ctx context.Context, spec SubscribeSpec) (Subscription, error)

	// Close releases the connection. gossip closes every subscription first.
	Close(ctx context.Context) error
}

// Start says where a new group begins reading.
type Start int

const (
	// StartNew: the group sees events published after it was first created.
	StartNew Start = iota
	// StartOldest: the group sees every event the transport still holds.
	StartOldest
)

// SubscribeSpec describes a subscription.
type SubscribeSpec struct {
	// Pattern is a validated event type or pattern: dot-separated tokens,
	// "*" for one token, ">" as the last token for one or more tokens.
	Pattern string
	// Group is empty for a broadcast listener (every subscription gets every
	// event, from now on). Otherwise members of the same Group and Pattern
	// share the events; durable drivers keep the group's position.
	Group string
	// BufferSize bounds the deliveries fetched ahead of the handlers.
	BufferSize int
	// Workers is the number of goroutines gossip runs to handle deliveries.
	Workers int
	// MaxDeliveries is the number of attempts after which gossip dead-letters
	// a message. Drivers may use it to size server-side limits, but gossip
	// itself enforces it; a driver must not drop a message on its own.
	MaxDeliveries int
	// AckWait is how long a delivery may stay unacknowledged before a
	// durable driver hands it to another member. Drivers keep deliveries
	// that are still being handled alive (JetStream InProgress).
	AckWait time.Duration
	// Start applies to a group created by this subscription.
	Start Start
}

// Subscription delivers messages to gossip.
type Subscription interface {
	// Deliveries returns the channel gossip's workers read. The driver closes
	// it after Close, once it will send nothing more.
	Deliveries() <-chan Delivery

	// Close stops fetching new messages and makes the driver close the
	// Deliveries channel. Deliveries already sent may still be acked or
	// nacked after Close returns, until the Conn is closed.
	Close(ctx context.Context) error
}

// Acknowledger is implemented by subscriptions whose transport keeps
// unacknowledged messages and redelivers them (JetStream, Redis Streams).
// Without it gossip redelivers a nacked message itself, in process.
type Acknowledger interface {
	// Ack marks the delivery as done.
	Ack(ctx context.Context, d Delivery) error
	// Nack asks for a redelivery, no sooner than delay, with Attempt
	// incremented.
	Nack(ctx context.Context, d Delivery, delay time.Duration) error
}

// ValueCarrier is implemented by in-process connections that hand the
// publisher's value to subscribers as it is. gossip then fills Message.Value
// instead of encoding Message.Data.
type ValueCarrier interface {
	CarriesValues() bool
}

// ErrGroupsUnsupported is what a Conn's Subscribe returns (wrapped or as is)
// for a Group subscription on a transport without consumer groups (Redis
// Pub/Sub). gossip.ErrGroupsUnsupported is the same value.
var ErrGroupsUnsupported = errors.New("gossip: this transport has no consumer groups")

// ErrUnreadable is what drivers wrap in Delivery.Err for bytes on the wire
// that are not a readable event. gossip.ErrDecode is the same value, so
// errors.Is(err, gossip.ErrDecode) holds for them as for data that does not
// decode into a handler's type.
var ErrUnreadable = errors.New("gossip: cannot decode event data")

// ErrSubscriptionClosed is returned by Ack or Nack when the subscription's
// transport resources are gone.
var ErrSubscriptionClosed = errors.New("gossip: subscription closed")
